#!/usr/bin/env python
"""Does FreeReal pre-training help, beyond the seed noise? A study on the demo data (a report, not a test).

For every seed, every starting point and every label budget, one detector (``--model``, DBNet-R18 by default,
fresh initialisation) is fine-tuned on a few labeled real-like images and evaluated (h-mean, IoU 0.5) on held-out
real-like images. The starting points:

  none        no pre-training;
  synthetic   conventional pre-training on synthetic data only (supervised on word polygons, all steps);
  freereal    FreeReal: a third of the steps supervised on synthetic data (character regions), then
              student/teacher with GlyphMix (A^G(A^T(real), synthetic)) on unlabeled real-like images;
  A^T only    the same without the inter-domain glyph mixing (real-real text-balanced mixing only);
  A^G only    the same without the intra-domain mixing (glyphs pasted on the real batch only).

What changes with the seed: the initialisation, every random draw of pre-training and fine-tuning, and which
labeled real-like images fine-tuning gets (the budgets of one seed are nested: its 8 images are the first 8 of
its 32). Within a seed every start fine-tunes on the same images, so the difference between two starts is
paired. What does not: the synthetic set, the unlabeled real-like set, the held-out set (four disjoint demo
sets). The real-like set of pre-training carries labels, so every FreeReal run also measures its teacher's
pseudo-labels against them (they reach no loss): ``teacher_eval.jsonl`` in each pre-training folder. Every
pre-trained model is also evaluated zero-shot on the held-out set, before fine-tuning (the tables' zero-shot
column), which tells whether pre-training already transfers to the real-like domain.

Writes to ``--output-dir``: ``results.md`` (the tables), ``results.json`` (every run), ``study.png`` (h-mean
against labeled images, one line per start, mean and standard deviation over seeds), ``teacher.png`` (the
teacher's h-mean on the unlabeled real-like images against the pre-training step, the student's in stage 1, so
synthetic-only pre-training has a curve too), ``paired.png`` (each seed's starts joined by a line, zero-shot and per
budget: the paired differences the tables summarise). Every run keeps its own
folder; runs already finished (a ``result.json``) are reused, so an interrupted study continues where it
stopped (an interrupted pre-training from its last checkpoint, taken every eighth of its steps and removed when
it finishes), and adding seeds or budgets runs only the new cells (a pre-training finished before the zero-shot
column existed is only evaluated, not run again). ``--jobs`` runs that many at once (one thread each).

``--finetune-repeats K`` fine-tunes every start K times per seed on the same labeled images, repeat ``r`` with
the fine-tuning seed ``seed + 1000 r`` (its order of batches and its augmentation; folder ``seedN-repeatR`` for
r >= 1), and every fine-tuned cell is the mean of its repeats: averaging shrinks the share of the paired
difference's variance that fine-tuning adds, not the share that pre-training adds. The report says how large each
share is (the spread of one seed's repeats against the spread between seeds). Raising K on a finished study runs
only the new repeats.

The default grid (5 seeds x 5 starts x budgets 8 and 32; 20 pre-trainings of 150 steps, 50 fine-tunings of
150 steps, all on 128 x 128 demo images with 128 x 128 crops) takes about an hour on 2 CPU cores with
``--jobs 2``; at 256 x 256 (``--image-size 256 --crop-size 256``) it takes about four times as long.

  python scripts/experiment_pretraining.py [--model dbnet_r18] [--seeds 0 1 2 3 4] [--budgets 8 32] [--jobs 2]
      [--starts none synthetic freereal at_only ag_only] [--output-dir outputs/study]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STARTS = {  # folder name -> (label, PretrainArguments overrides; None: no pre-training)
    "none": ("none", None),
    "synthetic": ("synthetic only", {"char_mode": False, "stage1_steps": "all", "save_student": True}),
    "freereal": ("FreeReal", {}),
    "at_only": ("A^T only", {"inter_domain": False}),
    "ag_only": ("A^G only", {"intra_domain": False}),
}
SETTINGS = ("model", "pretrain_steps", "stage1_steps", "pseudo_confidence", "char_mode", "label_mask",
            "synthetic_loss_weight", "max_pseudo_text", "finetune_steps", "image_size", "crop_size", "eval_images",
            "synthetic_images", "real_images", "ema_momentum", "learning_rate", "at_area")
AT_AREA = [0.1, 0.5]  # freereal-pretrain's --min_area / --max_area


@dataclass(frozen=True)
class Run:
    kind: str  # "pretrain" or "finetune"
    start: str
    seed: int
    budget: int = 0
    repeat: int = 0  # fine-tuning: the repeat on the same images (its seed: seed + 1000 * repeat)

    @property
    def folder(self) -> str:
        return f"pretrain/{self.start}/seed{self.seed}" if self.kind == "pretrain" else \
            f"finetune/{self.start}/n{self.budget}/seed{self.seed}" + (f"-repeat{self.repeat}" if self.repeat else "")


def repeat_hmeans(records: dict[Run, dict], start: str, seed: int, budget: int, repeats: int) -> list[float]:
    """The h-mean of each of one seed's ``repeats`` fine-tunings of ``start`` at ``budget``."""
    return [records[Run("finetune", start, seed, budget, r)]["metrics"]["hmean"] for r in range(repeats)]


def finetuned(records: dict[Run, dict], start: str, seed: int, budget: int, repeats: int) -> float:
    """One seed's fine-tuned h-mean of ``start`` at ``budget``: the mean over its ``repeats`` fine-tunings."""
    return sum(repeat_hmeans(records, start, seed, budget, repeats)) / repeats


def to_run(phase: list[Run], finetunes: list[Run], root: Path, records: dict[Run, dict]) -> list[Run]:
    """The runs of ``phase`` still to run; the records of the finished ones go into ``records``.

    A run is finished when its folder holds a ``result.json`` (a pre-training's with its zero-shot h-mean: one
    without it is run to measure it). A finished pre-training whose ``final/`` model is gone (a study carried over
    from its small files, docs/studies) is run again, from the start, if a fine-tuning of ``finetunes`` still has
    to start from it; it gives the same model (same seed, same data)."""
    def finished(run: Run) -> dict | None:
        done = root / run.folder / "result.json"
        return json.loads(done.read_text()) if done.exists() else None

    todo = []
    for run in phase:
        record = finished(run)
        if record is not None and run.kind == "pretrain" and "zero_shot" in record \
                and not (root / run.folder / "final").is_dir() \
                and any(f.start == run.start and f.seed == run.seed and finished(f) is None for f in finetunes):
            (root / run.folder / "result.json").unlink()  # its fine-tunings need the model: train it again
            record = None
        if record is not None and (run.kind != "pretrain" or "zero_shot" in record):
            records[run] = record
        else:
            todo.append(run)  # not run yet, or a pre-training still to measure zero-shot (run_one)
    return todo


def zero_shot(final_dir: str, settings: dict[str, Any]) -> float:
    """H-mean of a pre-trained model on the held-out real-like images before any fine-tuning, evaluated as
    fine-tuning evaluates (same images, size and processor)."""
    from freereal_hf.image_processing import TextDetectionImageProcessor
    from freereal_hf.training.common import load_model, load_text_dataset
    from freereal_hf.training.evaluation import evaluate_detector

    size = settings["image_size"]
    model = load_model(final_dir).eval()
    held_out = load_text_dataset(f"demo:real-like:{settings['eval_images']}:9", "train", image_size=size)
    return evaluate_detector(model, held_out, TextDetectionImageProcessor.for_config(model.config, size)).metrics["hmean"]


def run_one(job: tuple[Run, dict[str, Any], str]) -> tuple[Run, dict[str, Any]]:
    """Runs one pre-training or fine-tuning in this (fresh) process, one thread, its output in its log file.

    A pre-training also measures its zero-shot h-mean on the held-out set; a pre-training finished by an
    earlier version of this script (a ``result.json`` without it) is not run again, only measured."""
    run, settings, root = job
    import torch

    torch.set_num_threads(1)
    from freereal_hf.training import FinetuneArguments, PretrainArguments, finetune, pretrain
    from freereal_hf.training.common import complete_checkpoints

    out = Path(root) / run.folder
    finished = out / "result.json"
    if run.kind == "pretrain" and finished.exists():
        record = json.loads(finished.read_text())
        with open(out / "log.txt", "a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            record["zero_shot"] = zero_shot(record["final_dir"], settings)
        finished.write_text(json.dumps(record))
        return run, record
    # an interrupted run of this study: a pre-training continues from its checkpoint, anything else starts again
    resume = run.kind == "pretrain" and bool(complete_checkpoints(out))
    redo = out.exists() and not resume
    out.mkdir(parents=True, exist_ok=True)
    size = settings["image_size"]
    with open(out / "log.txt", "a" if resume else "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        if run.kind == "pretrain":
            overrides = {"stage1_steps": settings.get("stage1_steps"), "pseudo_confidence": settings.get("pseudo_confidence"),
                         "char_mode": settings.get("char_mode", True),
                         **{k: settings[k] for k in ("label_mask", "synthetic_loss_weight", "max_pseudo_text")},
                         "min_area": settings["at_area"][0], "max_area": settings["at_area"][1],
                         **STARTS[run.start][1]}
            if overrides["stage1_steps"] == "all":
                overrides["stage1_steps"] = settings["pretrain_steps"]
            result = pretrain(PretrainArguments(
                output_dir=str(out), model=settings["model"], max_steps=settings["pretrain_steps"], seed=run.seed,
                synthetic_dataset=f"demo:synthetic:{settings['synthetic_images']}",
                real_datasets=[f"demo:real-like:{settings['real_images']}:3"], image_size=size,
                crop_size=settings["crop_size"], ema_momentum=settings["ema_momentum"], report_to="none",
                save_steps=max(1, settings["pretrain_steps"] // 8), save_total_limit=2, resume=resume,
                num_workers=0, overwrite_output_dir=redo, eval_steps=max(1, settings["pretrain_steps"] // 5),
                **overrides))
            # the checkpoints are this study's own, of a run now finished: only its final model is kept
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            record = {"final_dir": result["final_dir"], "teacher": result["teacher_metrics"],
                      "zero_shot": zero_shot(result["final_dir"], settings)}
        else:
            model = settings["model"] if run.start == "none" else str(Path(root) / Run("pretrain", run.start, run.seed).folder / "final")
            result = finetune(FinetuneArguments(
                output_dir=str(out), model=model, train_dataset=f"demo:real-like:{run.budget}:{100 + run.seed}",
                eval_dataset=f"demo:real-like:{settings['eval_images']}:9", max_steps=settings["finetune_steps"],
                learning_rate=settings["learning_rate"], warmup_steps=10, crop_size=settings["crop_size"],
                scale_min=0.8, scale_max=1.25, eval_steps=0, save_steps=0, eval_long_side=size, image_size=size,
                report_to="none", seed=run.seed + 1000 * run.repeat, num_workers=0, overwrite_output_dir=redo,
                batch_size=min(4, run.budget)))
            record = {"metrics": result["metrics"]}
    finished.write_text(json.dumps(record))
    return run, record


def t_quantile(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (a 95 % two-sided interval)."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def summarise(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean paired difference ``a - b`` and its 95 % t-interval."""
    diffs = [x - y for x, y in zip(a, b)]
    mean, sd = summarise(diffs)
    half = t_quantile(len(diffs) - 1) * sd / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return mean, mean - half, mean + half


def report(settings: dict[str, Any], starts: list[str], budgets: list[int], seeds: list[int], root: Path,
           records: dict[Run, dict], repeats: int = 1) -> str:
    hmean = {(s, b): [finetuned(records, s, seed, b, repeats) for seed in seeds] for s in starts for b in budgets}
    stage1 = "a third" if settings.get("stage1_steps") is None else f"{settings['stage1_steps']} steps"
    confidence = settings.get("pseudo_confidence") or "the model's"
    targets = "character targets" if settings.get("char_mode", True) else "word targets"
    if settings["label_mask"] != "region":
        targets += f", glyph labels {settings['label_mask']}"
    if settings["max_pseudo_text"] < 1:
        targets += f", images over {settings['max_pseudo_text']} pseudo-text ignored"
    if settings["at_area"] != AT_AREA:
        targets += ", A^T boxes of {:g} to {:g} of the image".format(*settings["at_area"])
    if settings["synthetic_loss_weight"]:
        targets += f", synthetic loss weight {settings['synthetic_loss_weight']} in stage 2"
    lines = [f"{settings['model']}; {len(seeds)} seeds ({', '.join(map(str, seeds))}); demo images and crops "
             f"{settings['image_size']} x {settings['image_size']} / {settings['crop_size']}; pre-training "
             f"{settings['pretrain_steps']} steps (FreeReal: stage 1 {stage1}, teacher confidence {confidence}, {targets}) on "
             f"{settings['synthetic_images']} synthetic + "
             f"{settings['real_images']} unlabeled real-like images; fine-tuning {settings['finetune_steps']} steps"
             + (f", {repeats} times per seed and start (the mean of the repeats is the seed's h-mean)"
                if repeats > 1 else "") + f"; h-mean on {settings['eval_images']} held-out real-like images", "",
             "h-mean, mean +- standard deviation over seeds; zero-shot: the pre-trained model before fine-tuning:",
             "", "| start | zero-shot | " + " | ".join(f"{b} labeled" for b in budgets) + " |",
             "|---|---:|" + "---:|" * len(budgets)]
    zero = {s: [records[Run("pretrain", s, seed)]["zero_shot"] for seed in seeds]  # the pre-trained starts
            for s in starts if STARTS[s][1] is not None}
    for s in starts:
        cells = ["{:.3f} +- {:.3f}".format(*summarise(zero[s])) if s in zero else "-"]
        cells += [f"{m:.3f} +- {sd:.3f}" for m, sd in (summarise(hmean[(s, b)]) for b in budgets)]
        lines.append(f"| {STARTS[s][0]} | " + " | ".join(cells) + " |")
    base = "synthetic" if "synthetic" in starts else None
    if base and len(seeds) > 1:
        lines += ["", "Paired difference in h-mean against synthetic only (same seed, same fine-tuning images), "
                      "mean [95 % interval]:", "",
                  "| start | zero-shot | " + " | ".join(f"{b} labeled" for b in budgets) + " |",
                  "|---|---:|" + "---:|" * len(budgets)]
        for s in starts:
            if s != base:
                pairs = [(zero[s], zero[base])] if s in zero else []
                pairs += [(hmean[(s, b)], hmean[(base, b)]) for b in budgets]
                cells = [f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in (paired(a, b) for a, b in pairs)]
                lines.append(f"| {STARTS[s][0]} | " + ("" if s in zero else "- | ") + " | ".join(cells) + " |")
        if repeats > 1:
            lines += ["", f"Where the paired difference's spread comes from ({repeats} fine-tunings per seed): the "
                          "standard deviation of one fine-tuning's paired difference between the repeats of a seed "
                          "(fine-tuning alone, pooled over seeds) and between seeds (one repeat each: pre-training "
                          "and fine-tuning together), and of the repeats' mean between seeds:", "",
                      "| start | budget | within a seed | between seeds, one repeat | between seeds, mean of "
                      "repeats |", "|---|---:|---:|---:|---:|"]
            for s in (s for s in starts if s != base):
                for b in budgets:
                    d = [[x - y for x, y in zip(repeat_hmeans(records, s, seed, b, repeats),
                                                repeat_hmeans(records, base, seed, b, repeats))] for seed in seeds]
                    within = math.sqrt(sum(summarise(row)[1] ** 2 for row in d) / len(d))
                    lines.append(f"| {STARTS[s][0]} | {b} | {within:.3f} | {summarise([row[0] for row in d])[1]:.3f} "
                                 f"| {summarise([sum(row) / repeats for row in d])[1]:.3f} |")
    teachers = [s for s in starts if STARTS[s][1] is not None and "stage1_steps" not in STARTS[s][1]]
    if teachers:
        lines += ["", "The teacher's pseudo-labels on the unlabeled real-like images, against their labels (never "
                      "in a loss), at the start of stage 2 and at the end, mean over seeds:", "",
                  "| start | h-mean at start | h-mean at end | pixel precision at end | pixel recall at end | "
                  "ignored at end |", "|---|---:|---:|---:|---:|---:|"]
        for s in teachers:
            curves = [[json.loads(line) for line in (root / Run("pretrain", s, seed).folder / "teacher_eval.jsonl")
                       .read_text().splitlines()] for seed in seeds]
            # the first measurement of stage 2 (lines without a stage come from before stage 1 was measured too)
            first = summarise([next(p for p in c if p.get("stage", 2) == 2)["hmean"] for c in curves])[0]
            last = {k: summarise([c[-1][k] for c in curves])[0]
                    for k in ("hmean", "pixel_precision", "pixel_recall", "ignored_fraction")}
            lines.append(f"| {STARTS[s][0]} | {first:.3f} | {last['hmean']:.3f} | {last['pixel_precision']:.3f} | "
                         f"{last['pixel_recall']:.3f} | {last['ignored_fraction']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(starts: list[str], budgets: list[int], seeds: list[int], records: dict[Run, dict], path: Path,
         title: str, repeats: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for k, s in enumerate(starts):
        stats = [summarise([finetuned(records, s, seed, b, repeats) for seed in seeds]) for b in budgets]
        offset = 1 + 0.03 * (k - (len(starts) - 1) / 2)  # side by side, so the error bars stay readable
        ax.errorbar([b * offset for b in budgets], [m for m, _ in stats], yerr=[sd for _, sd in stats], marker="o",
                    capsize=3, label=STARTS[s][0])
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("labeled real-like images for fine-tuning")
    ax.set_ylabel(f"h-mean (mean +- sd over {len(seeds)} seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_paired(starts: list[str], budgets: list[int], seeds: list[int], records: dict[Run, dict], path: Path,
                title: str, repeats: int = 1) -> None:
    """The pairing made visible: one panel for the pre-trained models before fine-tuning (zero-shot) and one per
    budget; in each, one thin line per seed through its starts' h-mean (a rising line: that start is better for
    that seed), and the mean over seeds as a thick black line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns: list[tuple[str, list[str], Any]] = []
    pretrained = [s for s in starts if STARTS[s][1] is not None]
    if pretrained:
        columns.append(("zero-shot (pre-trained, not fine-tuned)", pretrained,
                        lambda s, seed: records[Run("pretrain", s, seed)]["zero_shot"]))
    for b in budgets:
        columns.append((f"fine-tuned on {b} labeled", starts,
                        lambda s, seed, b=b: finetuned(records, s, seed, b, repeats)))
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.8), dpi=120, sharey=True, squeeze=False)
    colours = plt.get_cmap("tab10" if len(seeds) <= 10 else "tab20")  # a colour per seed
    for ax, (name, shown, value) in zip(axes[0], columns):
        xs = list(range(len(shown)))
        for i, seed in enumerate(seeds):
            ax.plot(xs, [value(s, seed) for s in shown], marker="o", lw=1, alpha=0.6, color=colours(i % colours.N),
                    label=f"seed {seed}")
        ax.plot(xs, [sum(value(s, seed) for seed in seeds) / len(seeds) for s in shown], color="black", lw=2.5,
                marker="s", label="mean")
        ax.set_xticks(xs, [STARTS[s][0] for s in shown], fontsize=8)
        ax.set_xlim(-0.4, len(shown) - 0.6)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("h-mean on the held-out real-like images")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the points, not on them
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def plot_teacher(starts: list[str], seeds: list[int], root: Path, path: Path, title: str) -> bool:
    """The pre-trained starts' teacher measurements (``teacher_eval.jsonl``: h-mean of the detections of the
    teacher, in stage 1 of the student, on the unlabeled real-like images, against labels that reach no loss)
    against the step, mean and standard deviation over seeds; a start measured once (synthetic-only runs from
    before stage 1 was measured: their final model) is one point. False when no run measured anything."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    drawn = False
    for s in starts:
        files = [root / Run("pretrain", s, seed).folder / "teacher_eval.jsonl" for seed in seeds]
        if STARTS[s][1] is None or not all(f.exists() for f in files):
            continue
        by_step: dict[int, list[float]] = {}
        for f in files:
            for line in f.read_text().splitlines():
                point = json.loads(line)
                by_step.setdefault(point["step"], []).append(point["hmean"])
        steps = sorted(k for k, v in by_step.items() if len(v) == len(seeds))  # steps every seed measured
        if not steps:
            continue
        stats = [summarise(by_step[k]) for k in steps]
        means, sds = [m for m, _ in stats], [sd for _, sd in stats]
        what = ("its final model" if len(steps) == 1 else "the model" if "stage1_steps" in STARTS[s][1]
                else "stage 1: the student, stage 2: the EMA teacher")
        ax.errorbar(steps, means, yerr=sds, marker="o", capsize=3, label=f"{STARTS[s][0]} ({what})")
        drawn = True
    ax.set_xlabel("pre-training step")
    ax.set_ylabel(f"h-mean on the unlabeled real-like images\n(mean +- sd over {len(seeds)} seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    plt.close(fig)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18", help="preset of the detector, freshly initialised (dbnet_r18)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--starts", nargs="+", default=list(STARTS), choices=list(STARTS))
    parser.add_argument("--budgets", type=int, nargs="+", default=[8, 32], help="labeled real-like images (8 32)")
    parser.add_argument("--pretrain-steps", type=int, default=150)
    parser.add_argument("--stage1-steps", type=int, default=None,
                        help="FreeReal's supervised warm-up steps (default: freereal-pretrain's, a third)")
    parser.add_argument("--pseudo-confidence", type=float, default=None,
                        help="FreeReal's teacher confidence threshold (default: the model config's)")
    parser.add_argument("--char-mode", choices=("true", "false"), default="true",
                        help="FreeReal's synthetic targets from character boxes (true, the default of freereal-pretrain)")
    parser.add_argument("--label-mask", choices=("region", "stroke", "ignore"), default="region",
                        help="FreeReal's labels of the pasted glyphs (region, the default of freereal-pretrain)")
    parser.add_argument("--synthetic-loss-weight", type=float, default=0.0,
                        help="FreeReal's stage 2: weight of a supervised loss on the synthetic batch beside the mixed "
                             "batch's (0, the paper's)")
    parser.add_argument("--max-pseudo-text", type=float, default=1.0,
                        help="FreeReal's stage 2: real images whose pseudo-targets are more text than this share teach "
                             "nothing (1: no bound, the default of freereal-pretrain)")
    parser.add_argument("--at-area", type=float, nargs=2, default=AT_AREA, metavar=("MIN", "MAX"),
                        help="FreeReal's A^T candidate boxes, their area as a share of the image (0.1 0.5, the "
                             "default of freereal-pretrain)")
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--finetune-repeats", type=int, default=1,
                        help="fine-tunings per seed and start on the same images, averaged (1)")
    parser.add_argument("--image-size", type=int, default=128, help="side of the demo images (128)")
    parser.add_argument("--crop-size", type=int, default=128, help="training crop of both phases (128)")
    parser.add_argument("--eval-images", type=int, default=64)
    parser.add_argument("--synthetic-images", type=int, default=64)
    parser.add_argument("--real-images", type=int, default=64, help="unlabeled real-like images of pre-training")
    parser.add_argument("--ema-momentum", type=float, default=0.99)
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="of fine-tuning")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (2)")
    parser.add_argument("--output-dir", default="outputs/study")
    args = parser.parse_args(argv)
    for name in ("pretrain_steps", "finetune_steps", "finetune_repeats", "eval_images", "synthetic_images",
                 "real_images", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.budgets) < 1 or min(args.seeds) < 0:
        parser.error("budgets must be at least 1 and seeds 0 or more")
    if args.crop_size < 32 or args.crop_size % 32 or args.image_size < 32:
        parser.error("--crop-size must be a multiple of 32 and --image-size at least 32")
    if not 0 <= args.ema_momentum < 1:
        parser.error("--ema-momentum must be in [0, 1)")
    if not 0 <= args.synthetic_loss_weight < math.inf:
        parser.error(f"--synthetic-loss-weight must be 0 or more, got {args.synthetic_loss_weight}")
    if not 0 < args.max_pseudo_text <= 1:
        parser.error(f"--max-pseudo-text must be in (0, 1], got {args.max_pseudo_text}")
    if not 0 < args.at_area[0] <= args.at_area[1] <= 1:
        parser.error(f"--at-area must be MIN MAX with 0 < MIN <= MAX <= 1, got {args.at_area}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")
    if args.stage1_steps is not None and not 0 <= args.stage1_steps <= args.pretrain_steps:
        parser.error(f"--stage1-steps must be in [0, --pretrain-steps], got {args.stage1_steps}")
    if args.pseudo_confidence is not None and not 0.5 <= args.pseudo_confidence < 1:
        parser.error(f"--pseudo-confidence must be in [0.5, 1), got {args.pseudo_confidence}")
    seeds, budgets = sorted(set(args.seeds)), sorted(set(args.budgets))
    starts = [s for s in STARTS if s in args.starts]
    root = Path(args.output_dir)
    if root.exists() and not root.is_dir():
        parser.error(f"--output-dir {root} is a file")
    args.char_mode = args.char_mode == "true"
    settings = {k: getattr(args, k) for k in SETTINGS}
    saved = root / "study.json"
    if saved.exists():
        previous = json.loads(saved.read_text())
        # keys added since: their defaults
        defaults = {"char_mode": True, "label_mask": "region", "synthetic_loss_weight": 0.0, "max_pseudo_text": 1.0,
                    "at_area": AT_AREA}
        if {k: previous.get(k, defaults.get(k)) for k in SETTINGS} != settings:
            changed = ", ".join(k for k in SETTINGS if previous.get(k, defaults.get(k)) != settings[k])
            parser.error(f"{root} holds a study with other settings ({changed}); its runs cannot be reused: give "
                         f"another --output-dir")
    elif root.exists() and any(root.iterdir()):
        parser.error(f"--output-dir {root} is not empty and holds no study (study.json); give another folder")
    from freereal_hf.models import PRESETS  # the last check before writing: this import takes seconds

    if args.model not in PRESETS:
        parser.error(f"--model must be a detector preset ({', '.join(sorted(PRESETS))}), got {args.model!r}")
    from freereal_hf.data.demo import demo_records

    for seed in seeds:  # the budgets of a seed are nested: its smallest set has text, or no fine-tuning can learn
        images = demo_records("real-like", budgets[0], seed=100 + seed, size=(args.image_size, args.image_size))
        if not any(len(r["polygons"]) for r in images):
            parser.error(f"seed {seed}: its {budgets[0]} labeled real-like images at {args.image_size} px hold no "
                         f"text (tiny images fit few words); give a larger smallest budget or --image-size")
    root.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(settings, indent=1))

    pretrains = [Run("pretrain", s, seed) for s in starts if STARTS[s][1] is not None for seed in seeds]
    finetunes = [Run("finetune", s, seed, b, r) for r in range(args.finetune_repeats) for s in starts for b in budgets
                 for seed in seeds]
    records: dict[Run, dict] = {}
    from tqdm.auto import tqdm

    for phase in (pretrains, finetunes):
        todo = to_run(phase, finetunes, root, records)
        measure = sum((root / run.folder / "result.json").exists() for run in todo)
        print(f"{len(phase) - len(todo)} {phase[0].kind if phase else ''} runs reused, {len(todo) - measure} to run"
              + (f", {measure} to measure zero-shot" if measure else "") + f" (logs in {root}/*/.../log.txt)", flush=True)
        # a fresh process per run (spawn): no state crosses runs, and a crash names its run
        with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            jobs = [(run, settings, str(root)) for run in todo]
            for run, record in tqdm(pool.imap_unordered(run_one, jobs), total=len(jobs), desc=f"{len(todo)} runs"):
                records[run] = record
    text = report(settings, starts, budgets, seeds, root, records, args.finetune_repeats)
    (root / "results.md").write_text(text)
    (root / "results.json").write_text(json.dumps(
        [{**asdict(run), **record} for run, record in sorted(records.items(), key=lambda kv: kv[0].folder)], indent=1))
    if len(budgets) > 0:
        plot(starts, budgets, seeds, records, root / "study.png",
             f"{args.model}: fine-tuned h-mean on {args.eval_images} held-out real-like demo images",
             args.finetune_repeats)
    plot_paired(starts, budgets, seeds, records, root / "paired.png",
                f"{args.model}: each seed's starts, paired (same seed, same fine-tuning images)", args.finetune_repeats)
    teacher = plot_teacher(starts, seeds, root, root / "teacher.png",
                           f"{args.model}: the teacher during pre-training, on its own unlabeled real-like images")
    print(text)
    print(f"tables in {root / 'results.md'}, plots in {root / 'study.png'}, {root / 'paired.png'}"
          + (f" and {root / 'teacher.png'}" if teacher else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
