"""FreeReal pre-training: the demo main job, exact resume after SIGKILL, two processes, arguments, EMA."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from freereal_hf.cli.args import parse_dataclass
from freereal_hf.cli.pretrain import main as pretrain_main
from freereal_hf.training.pretrain import PretrainArguments, ema_update, keep_measurements_until, real_dataset

SMALL = ["--synthetic_dataset", "demo:synthetic:8", "--real_datasets", "demo:real-like:8:1", "--crop_size", "96",
         "--batch_size", "2", "--num_workers", "0", "--report_to", "none", "--ema_momentum", "0.9",
         "--record_samples", "true"]


@pytest.fixture(scope="module")
def demo_run(module_tmp_path) -> Path:
    """The main job with the flags outside checks use (and publishing options), on the demo data."""
    out = module_tmp_path / "pretrain"
    assert pretrain_main(["--output_dir", str(out), "--max_steps", "9", "--seed", "0", "--save_steps", "3",
                          "--logging_steps", "3", "--image_log_steps", "3", "--push_to_hub", "me/dbnet-freereal",
                          "--dry_run", "true", "--export_mmocr", "true"]) == 0
    return out


def test_demo_pretraining_saves_a_loadable_teacher_with_a_card(demo_run, capsys):
    model = AutoModel.from_pretrained(demo_run / "final")
    assert type(model).__name__ == "DBNetForTextDetection"
    args = json.loads((demo_run / "final" / "training_args.json").read_text())
    assert args["synthetic_dataset"].startswith("demo:synthetic") and args["stage1_steps"] == 3
    card = (demo_run / "final" / "README.md").read_text()
    assert "pre-training" in card and "GlyphMix" in card and "| steps_trained | 9 |" in card and "| saved | teacher (EMA) |" in card
    assert (demo_run / "mmocr.pth").is_file()
    from freereal_hf.hub import push_folder

    upload = push_folder(demo_run / "final", "me/dbnet-freereal", dry_run=True)  # what --push_to_hub sends
    assert upload == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json",
                      "training_args.json"]
    assert "me/dbnet-freereal" in card  # the card's usage lines name the repo
    assert sorted(p.name for p in (demo_run / "checkpoints").iterdir()) == ["checkpoint_1", "checkpoint_2"]
    teacher = torch.load(demo_run / "checkpoints" / "checkpoint_2" / "custom_checkpoint_2.pkl", weights_only=True)
    saved = load_file(demo_run / "final" / "model.safetensors")
    student = load_file(demo_run / "checkpoints" / "checkpoint_2" / "model.safetensors")
    assert all(torch.equal(saved[k], teacher[k]) for k in saved)  # the teacher is what is published
    assert not all(torch.equal(saved[k], student[k]) for k in saved)


def test_demo_pretraining_logs_losses_ignored_pixels_and_glyphmix_grids(demo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = list((demo_run / "logs").rglob("events.out.tfevents*"))[:1]
    acc = EventAccumulator(str(events.parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/loss_prob", "train/loss_thr", "train/loss_db", "train/lr",
            "train/ignored_fraction", "train/samples_per_s"} <= scalars
    ignored = [e.value for e in acc.Scalars("train/ignored_fraction")]
    assert all(0 <= v <= 1 for v in ignored)
    text = [e.value for e in acc.Scalars("train/pseudo_text_fraction")]  # the teacher's text share, stage 2 only
    assert [e.step for e in acc.Scalars("train/pseudo_text_fraction")] == [6, 9] and all(0 <= v <= 1 for v in text)
    assert [e.step for e in acc.Images("glyphmix/grid")] == [6, 9]  # stage 2 only (stage 1 is steps 1-3)


def _run(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "freereal_hf.cli.pretrain", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _steps(path: Path) -> dict[int, dict]:
    """The last record of each step in a samples log (a resumed run repeats the steps after its checkpoint)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r for r in rows if "step" in r}


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    common = SMALL + ["--max_steps", "16", "--stage1_steps", "3", "--save_steps", "2", "--save_total_limit", "3",
                      "--eval_steps", "1", "--eval_images", "2", "--eval_long_side", "64"]
    assert pretrain_main(["--output_dir", str(tmp_path / "whole")] + common) == 0

    killed = tmp_path / "killed"
    proc = _run(["--output_dir", str(killed)] + common)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint_1" / "checkpoint_complete").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "final").exists()  # it really died mid-run
    assert pretrain_main(["--output_dir", str(killed), "--resume", "true"] + common) == 0

    a = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    b = load_file(killed / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole, resumed = _steps(tmp_path / "whole" / "samples" / "rank_0.jsonl"), _steps(killed / "samples" / "rank_0.jsonl")
    assert whole == resumed and len(whole) == 16  # the same data, in the same order, after resuming
    # the teacher's window: each step once, as measured without the kill (the steps after the checkpoint again)
    assert (killed / "teacher_eval.jsonl").read_text() == (tmp_path / "whole" / "teacher_eval.jsonl").read_text()


def test_resuming_keeps_the_teacher_measurements_up_to_its_checkpoint(tmp_path):
    path = tmp_path / "teacher_eval.jsonl"
    lines = [json.dumps({"step": s, "stage": 2, "hmean": s / 10}) for s in (2, 4, 6)]
    path.write_text("\n".join(lines) + '\n{"step": 8, "sta')  # a killed run's half-written line
    keep_measurements_until(path, 4)
    assert path.read_text() == lines[0] + "\n" + lines[1] + "\n"
    keep_measurements_until(path, 4)  # nothing to drop: unchanged
    assert path.read_text() == lines[0] + "\n" + lines[1] + "\n"
    keep_measurements_until(tmp_path / "missing.jsonl", 4)
    assert not (tmp_path / "missing.jsonl").exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_two_processes_on_cpu_stay_identical_and_share_the_real_data_exactly_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           "-m", "freereal_hf.cli.pretrain", "--output_dir", str(out), "--max_steps", "6", "--stage1_steps", "2"] + SMALL
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = [(out / "samples" / f"rank_{r}.jsonl").read_text().splitlines() for r in (0, 1)]
    finals = [json.loads(lines[-1])["final"] for lines in logs]
    assert finals[0] == finals[1]  # student and teacher identical on both ranks
    steps = [_steps(out / "samples" / f"rank_{r}.jsonl") for r in (0, 1)]
    # 8 real images, 2 per process per step: stage-2 steps 2 and 3 are the first real epoch
    epoch = [k for r in (0, 1) for s in (2, 3) for k in steps[r][s]["real"]]
    assert sorted(epoch) == sorted(f"demo-real-like-1-{i:05d}.png" for i in range(8))
    assert AutoModel.from_pretrained(out / "final") is not None


def test_arguments_from_yaml_and_several_weighted_real_sets(tmp_path):
    (tmp_path / "pt.yaml").write_text("max_steps: 30\nlabel_mask: stroke\nreal_datasets: [demo:real-like:4:1, "
                                      "demo:real-like:4:2]\nreal_weights: [1.0, 3.0]\n")
    args = parse_dataclass(PretrainArguments, [str(tmp_path / "pt.yaml"), "--box_selection", "random"], "x")
    assert (args.max_steps, args.stage1_steps, args.label_mask, args.box_selection) == (30, 10, "stroke", "random")
    assert args.glyphmix_config().label_mask == "stroke"
    mixed = real_dataset(args)
    assert mixed.column_names == ["key", "image"]
    sources = [k.split("-")[3] for k in mixed["key"]]
    assert set(sources) == {"1", "2"} and sources.count("2") > sources.count("1")
    with pytest.raises(ValueError, match="real_weights"):
        real_dataset(PretrainArguments(real_datasets=["demo:real-like:2:1"] * 2, real_weights=[1.0]))


def test_ema_update():
    torch.manual_seed(0)
    student, teacher = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)), None
    teacher = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    student[1].running_mean.fill_(0.5)
    before = [p.detach().clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.9)
    for t0, t, s in zip(before, teacher.parameters(), student.parameters()):
        assert torch.allclose(t, 0.9 * t0 + 0.1 * s)
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)


def test_streaming_weighted_real_sets_with_accumulation_and_clipping(tmp_path):
    out = tmp_path / "stream"
    args = [a for a in SMALL if a not in ("--real_datasets", "demo:real-like:8:1")]
    assert pretrain_main(["--output_dir", str(out), "--streaming", "true", "--max_steps", "4", "--stage1_steps", "1",
                          "--real_datasets", "demo:real-like:6:1", "demo:real-like:6:2", "--real_weights", "1", "2",
                          "--gradient_accumulation_steps", "2", "--max_grad_norm", "1.0"] + args) == 0
    rows = [json.loads(line) for line in (out / "samples" / "rank_0.jsonl").read_text().splitlines()]
    micro = [r for r in rows if "step" in r]
    assert [r["step"] for r in micro] == [0, 0, 1, 1, 2, 2, 3, 3]  # 4 optimiser steps of 2 micro-batches
    real = [k for r in micro for k in r["real"]]
    assert len(real) == 12 and {k.split("-")[3] for k in real} == {"1", "2"}
    assert AutoModel.from_pretrained(out / "final") is not None


def test_bf16_mixed_precision_runs_on_cpu(tmp_path):
    from freereal_hf.training.pretrain import pretrain

    def run(precision: str) -> dict:
        return pretrain(PretrainArguments(
            # 64-pixel images: bfloat16 convolutions have no fast kernel on an AVX2 CPU (about 20x slower than
            # float32), and the teacher window evaluates whole images
            output_dir=str(tmp_path / precision), max_steps=3, stage1_steps=1, mixed_precision=precision,
            crop_size=64, image_size=64, batch_size=2, num_workers=0, report_to="none", synthetic_dataset="demo:synthetic:4",
            real_datasets=["demo:real-like:4:1"], save_steps=0))

    fp32, bf16 = run("no"), run("bf16")
    assert all(math.isfinite(v) for v in bf16["losses"]) and len(bf16["losses"]) == 3
    assert bf16["losses"] != fp32["losses"]  # the forward passes really ran in bfloat16
    saved = load_file(tmp_path / "bf16" / "final" / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in saved.values() if t.is_floating_point())


def test_compiled_and_channels_last_pre_training_take_the_same_steps(tmp_path):
    """``--torch_compile`` compiles the student (accelerate) and the teacher that writes the pseudo-labels
    (aot_eager here: traced as inductor would, no code generation): the losses of both stages equal the plain
    run's. ``--channels_last``: the same first losses to float rounding, every view of the batch converted."""
    from torch._dynamo.utils import counters

    from freereal_hf.training.pretrain import pretrain

    def run(name: str, **flags) -> dict:
        return pretrain(PretrainArguments(
            output_dir=str(tmp_path / name), max_steps=3, stage1_steps=1, crop_size=64, image_size=64, batch_size=2,
            num_workers=0, report_to="none", synthetic_dataset="demo:synthetic:4", real_datasets=["demo:real-like:4:1"],
            save_steps=0, eval_steps=0, **flags))

    plain = run("plain")
    torch._dynamo.reset()  # an earlier test may have compiled the same code: trace anew, so it counts
    graphs = counters["stats"]["unique_graphs"]
    compiled = run("compiled", torch_compile=True, torch_compile_backend="aot_eager", profile=True)
    assert counters["stats"]["unique_graphs"] >= graphs + 2  # the student and the teacher were traced
    assert compiled["losses"] == pytest.approx(plain["losses"], rel=1e-6)
    assert "teacher forward" in compiled["profile"]
    last = run("last", channels_last=True)
    assert last["losses"][:2] == pytest.approx(plain["losses"][:2], rel=1e-4)  # stage 1, and stage 2's first step
    assert len(last["losses"]) == 3 and all(math.isfinite(v) for v in last["losses"])


def test_a_weighted_synthetic_loss_joins_the_mixed_loss_in_stage_2(tmp_path):
    """``synthetic_loss_weight``: stage 2's loss is the mixed batch's plus w times the synthetic batch's, the mixed
    part unchanged (same student, same batches, same GlyphMix draws), and the added term reaches the weights.
    ``max_pseudo_text`` < 1 logs the share of real images it silenced (batches of 2)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from freereal_hf.training.pretrain import pretrain

    def run(weight: float, max_text: float = 1.0) -> dict:
        out = tmp_path / f"w{weight}_{max_text}"
        result = pretrain(PretrainArguments(
            output_dir=str(out), max_steps=3, stage1_steps=1, synthetic_loss_weight=weight, max_pseudo_text=max_text,
            crop_size=64, image_size=64,
            batch_size=2, num_workers=0, synthetic_dataset="demo:synthetic:4", real_datasets=["demo:real-like:4:1"],
            save_steps=0, eval_steps=0, logging_steps=1, image_log_steps=0))
        acc = EventAccumulator(str(next((out / "logs").rglob("events.out.tfevents*")).parent), size_guidance={"scalars": 0})
        acc.Reload()
        result["scalars"] = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
        result["weights"] = load_file(out / "final" / "model.safetensors")
        return result

    plain, anchored = run(0.0), run(2.0)
    assert "train/loss_synthetic" not in plain["scalars"]
    mixed, synthetic = anchored["scalars"]["train/loss_mixed"], anchored["scalars"]["train/loss_synthetic"]
    assert sorted(mixed) == sorted(synthetic) == [2, 3]  # stage 2 only
    for step in (2, 3):
        assert anchored["losses"][step - 1] == pytest.approx(mixed[step] + 2.0 * synthetic[step], rel=1e-5)
        assert synthetic[step] > 0
    assert anchored["losses"][0] == plain["losses"][0]  # stage 1 is untouched
    assert mixed[2] == pytest.approx(plain["losses"][1], rel=1e-6)  # the first mixed loss is the plain run's
    assert any(not torch.equal(anchored["weights"][k], plain["weights"][k]) for k in plain["weights"])
    assert "train/pseudo_text_dropped" not in plain["scalars"]
    dropped = run(0.0, max_text=0.5)["scalars"]["train/pseudo_text_dropped"]  # the share of real images silenced
    assert sorted(dropped) == [2, 3] and all(v in (0.0, 0.5, 1.0) for v in dropped.values())


def _labeled_folder(path: Path, shift: int) -> str:
    """The demo's 4 real-like images as a Hub-like folder, each carrying the labels of the image ``shift`` places on."""
    from freereal_hf.data.demo import demo_dataset

    ds = demo_dataset("real-like", 4, seed=1)
    labels = {name: ds[name] for name in ("polygons", "ignore", "texts")}
    ds = ds.map(lambda _, i: {name: labels[name][(i + shift) % len(ds)] for name in labels} | {
        "char_polygons": [], "char_word": []}, with_indices=True)
    ds.to_parquet(str(path / "data" / "train-00000-of-00001.parquet"))
    return str(path)


def test_a_new_run_does_not_append_to_an_earlier_runs_teacher_measurements(tmp_path, capsys):
    """A run killed before its first checkpoint leaves ``teacher_eval.jsonl`` (and ``--record_samples`` logs) and no
    checkpoint; a new run there used to append to them (the seed study's curve once read steps 1, 1, 2, 3). Such a
    folder is refused before any work, naming the logs, unless ``--resume`` (which keeps the curve up to its
    checkpoint) or ``--overwrite_output_dir`` (which starts our logs again and leaves other files alone)."""
    common = ["--synthetic_dataset", "demo:synthetic:4", "--real_datasets", "demo:real-like:4:1", "--crop_size",
              "64", "--batch_size", "2", "--num_workers", "0", "--report_to", "none", "--max_steps", "2",
              "--stage1_steps", "1", "--save_steps", "0", "--eval_steps", "1", "--eval_images", "2",
              "--eval_long_side", "64"]
    out = tmp_path / "run"
    (out / "samples").mkdir(parents=True)
    stale = json.dumps({"step": 1, "stage": 1, "hmean": 0.5}) + "\n"
    (out / "teacher_eval.jsonl").write_text(stale)
    (out / "samples" / "rank_0.jsonl").write_text(json.dumps({"step": 0, "stage": 1, "synthetic": ["x"]}) + "\n")
    (out / "samples" / "notes.txt").write_text("mine")  # not a log of ours: left alone
    for logs in (["teacher_eval.jsonl", "samples/rank_0.jsonl"], ["samples/rank_0.jsonl"]):
        assert pretrain_main(["--output_dir", str(out)] + common) == 2
        assert f"earlier run's logs ({', '.join(logs)})" in capsys.readouterr().err
        assert not (out / "final").exists()
        if "teacher_eval.jsonl" in logs:
            assert (out / "teacher_eval.jsonl").read_text() == stale
            (out / "teacher_eval.jsonl").rename(tmp_path / "kept.jsonl")
    (tmp_path / "kept.jsonl").rename(out / "teacher_eval.jsonl")
    assert pretrain_main(["--output_dir", str(out), "--overwrite_output_dir", "true", "--record_samples", "true"]
                         + common) == 0
    curve = [json.loads(line) for line in (out / "teacher_eval.jsonl").read_text().splitlines()]
    assert [(r["step"], r["stage"]) for r in curve] == [(1, 2), (2, 2)]
    assert len(curve[0]) > 3  # a measurement of this run (precision, recall...), not the stale line
    samples = [json.loads(line) for line in (out / "samples" / "rank_0.jsonl").read_text().splitlines()]
    steps = [r for r in samples if "step" in r]  # (besides the run's own header lines)
    assert [r["step"] for r in steps] == [0, 1] and steps[0]["synthetic"] != ["x"]
    assert (out / "samples" / "notes.txt").read_text() == "mine"


def test_the_teacher_is_measured_on_real_labels_that_never_reach_the_loss(tmp_path):
    """Pre-training measures its teacher (in stage 1 the student) against the real data's labels; with every image
    carrying another image's labels the measurements change and the weights do not, and without measuring they are
    the same again: the labels reach no loss, and measuring draws no random number and changes no statistic."""
    common = ["--synthetic_dataset", "demo:synthetic:4", "--crop_size", "64", "--batch_size", "2", "--num_workers",
              "0", "--report_to", "none", "--max_steps", "5", "--stage1_steps", "3", "--ema_momentum", "0.5",
              "--save_steps", "0", "--eval_steps", "2", "--eval_long_side", "128"]
    runs = {}
    for name, shift, extra in (("true", 0, []), ("shuffled", 1, []), ("unmeasured", 0, ["--eval_steps", "0"])):
        data = _labeled_folder(tmp_path / f"data_{name}", shift)
        assert pretrain_main(["--output_dir", str(tmp_path / name), "--real_datasets", data] + common + extra) == 0
        runs[name] = load_file(tmp_path / name / "final" / "model.safetensors")
    for name in ("shuffled", "unmeasured"):
        assert all(torch.equal(runs["true"][k], runs[name][k]) for k in runs["true"]), name
    true, shuffled = ([json.loads(line) for line in (tmp_path / name / "teacher_eval.jsonl").read_text().splitlines()]
                      for name in ("true", "shuffled"))
    # every 2 steps (in stage 1 the student), stage 2's start, the end
    assert [(r["step"], r["stage"]) for r in true] == [(r["step"], r["stage"]) for r in shuffled] == [
        (2, 1), (3, 2), (4, 2), (5, 2)]
    assert not (tmp_path / "unmeasured" / "teacher_eval.jsonl").exists()
    for t, s in zip(true, shuffled):
        assert t["ignored_fraction"] == s["ignored_fraction"]  # the teacher's own: the same
        assert all(0 <= t[k] <= 1 for k in ("pixel_precision", "pixel_recall", "hmean", "ignored_fraction"))
    assert any(t["pixel_recall"] != s["pixel_recall"] for t, s in zip(true, shuffled))  # the labels are read


def test_the_teacher_window_measures_what_it_says():
    """A teacher that outputs the labels' own targets gets pixel precision and recall 1 and h-mean 1, nothing
    ignored; a teacher that sees no text gets pixel recall 0 and h-mean 0."""
    from freereal_hf.data.demo import demo_dataset
    from freereal_hf.image_processing import TextDetectionImageProcessor
    from freereal_hf.training.common import load_model
    from freereal_hf.training.evaluation import evaluate_teacher

    data = demo_dataset("real-like", 3, seed=2)
    processor = TextDetectionImageProcessor(scale=None, long_side=256)  # the demo's own size
    model = load_model("dbnet_r18", seed=0, allow_fresh=True).eval()

    class Oracle(torch.nn.Module):  # the model's protocol, with outputs made from the labels of each image
        def __init__(self, blind: bool) -> None:
            super().__init__()
            self.model, self.blind, self.weight = model, blind, torch.nn.Parameter(torch.zeros(()))
            self.target_spec, self.config = model.target_spec, model.config
            self.pseudo_targets, self.post_process, self.build_targets = (
                model.pseudo_targets, model.post_process, model.build_targets)
            self.labels: list = []

        def forward(self, pixel_values):
            from freereal_hf.data.transforms import load_sample

            maps = []
            for i in range(pixel_values.shape[0]):
                s = load_sample(data[len(self.labels)])
                _, h, w = pixel_values.shape[1:]
                sx, sy = processor([s["image"]], return_tensors="pt")["scale_factors"][0].tolist()
                polygons = [] if self.blind else [q * np.array([sx, sy], np.float32) for q in s["polygons"]]
                maps.append(model.build_targets(polygons, [False] * len(polygons), (h, w)))
                self.labels.append(s["key"])
            stacked = {k: torch.as_tensor(np.stack([m[k] for m in maps])) for k in maps[0]}
            return model.outputs_from_targets(stacked)

    seen = evaluate_teacher(Oracle(False), data, processor, batch_size=1)
    assert seen["pixel_precision"] == 1.0 and seen["pixel_recall"] == 1.0 and seen["ignored_fraction"] == 0.0
    assert seen["hmean"] > 0.95, seen
    blind = evaluate_teacher(Oracle(True), data, processor, batch_size=1)
    assert blind["pixel_recall"] == 0.0 and blind["hmean"] == 0.0

    # labels the targets refuse (PANet's, with more instances than int16 ids hold) leave that image out of the
    # pixel counts, named and counted; the run and the other images' figures go on
    from freereal_hf.data.records import Report

    picky, calls, report = Oracle(False), [], Report()

    def refuse_the_first(*args):
        calls.append(args)
        if len(calls) == 1:
            raise ValueError("40000 polygons in one image: instance ids are int16, at most 32767")
        return model.build_targets(*args)

    picky.build_targets = refuse_the_first
    picked = evaluate_teacher(picky, data, processor, batch_size=1, report=report)
    assert report.counts["images left out of the pixel counts"] == 1 and len(calls) == len(data)
    assert picked["pixel_precision"] == 1.0 and picked["pixel_recall"] == 1.0 and picked["hmean"] > 0.95


def test_the_step_benchmark_times_both_loops_per_setting(capsys):
    """scripts/benchmark_steps.py, the table for a GPU, on this CPU at 64 pixels: one row per model and setting,
    each with both loops' step times, rates and data-wait shares; bad sizes refused before any run."""
    import re

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        from benchmark_steps import main as bench
    finally:
        sys.path.pop(0)
    for bad in (["--batch-size", "0"], ["--crop-size", "50"], ["--steps", "-1"], ["--num-workers", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            bench(bad)
        assert exit_info.value.code == 2, bad
    capsys.readouterr()
    assert bench(["--models", "dbnet_r18", "--settings", "fp32", "bf16-cl", "--batch-size", "2", "--crop-size",
                  "64", "--steps", "1", "--num-workers", "0"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| dbnet_r18 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["fp32", "bf16-cl"]
    for row in rows:
        ms, rate, wait, ms_ft, rate_ft, wait_ft = row.split("|")[3:9]
        assert float(ms) > 0 and float(ms_ft) > 0
        assert float(rate) == pytest.approx(2000 / float(ms), rel=0.01)
        assert float(rate_ft) == pytest.approx(2000 / float(ms_ft), rel=0.01)
        assert all(re.fullmatch(r" \d+\.\d% ", w) for w in (wait, wait_ft))
