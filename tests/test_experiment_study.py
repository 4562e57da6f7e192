"""scripts/experiment_pretraining.py: the seed study runs its grid, writes its tables and plot, reuses finished
runs, and refuses what it cannot reuse (a tiny grid: 2 seeds, 2 starts, 1 budget, a few steps)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "experiment_pretraining.py"
TINY = ["--seeds", "0", "1", "--starts", "synthetic", "freereal", "--budgets", "4", "--pretrain-steps", "3",
        "--finetune-steps", "2", "--image-size", "64", "--crop-size", "64", "--eval-images", "2",
        "--synthetic-images", "4", "--real-images", "4", "--jobs", "2"]


def _study(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


def test_the_study_runs_its_grid_reports_paired_differences_and_continues(tmp_path):
    out = tmp_path / "study"
    # killed in the middle of a pre-training, then run again: that run continues from its checkpoint
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *TINY, "--output-dir", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    killed = out / "pretrain" / "freereal" / "seed0"
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint_1" / "checkpoint_complete").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists()
    done = _study(*TINY, "--output-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in (killed / "log.txt").read_text() and not (killed / "checkpoints").exists()
    runs = json.loads((out / "results.json").read_text())
    assert sorted((r["kind"], r["start"], r["seed"]) for r in runs) == sorted(
        [("pretrain", s, seed) for s in ("synthetic", "freereal") for seed in (0, 1)]
        + [("finetune", s, seed) for s in ("synthetic", "freereal") for seed in (0, 1)])
    table = (out / "results.md").read_text()
    hmeans = {(r["start"], r["seed"]): r["metrics"]["hmean"] for r in runs if r["kind"] == "finetune"}
    mean = (hmeans[("freereal", 0)] + hmeans[("freereal", 1)]) / 2
    assert f"| FreeReal | {mean:.3f} +- " in table  # the mean over seeds, from the runs themselves
    diff = (hmeans[("freereal", 0)] - hmeans[("synthetic", 0)] + hmeans[("freereal", 1)] - hmeans[("synthetic", 1)]) / 2
    assert f"| FreeReal | {diff:+.3f} [" in table.split("Paired difference")[1]
    zero = {r["start"]: [] for r in runs}
    for r in sorted(runs, key=lambda r: r["seed"]):
        if r["kind"] == "pretrain":
            zero[r["start"]].append(r["zero_shot"])
    for start, label in (("synthetic", "synthetic only"), ("freereal", "FreeReal")):
        assert all(0 <= v <= 1 for v in zero[start])
        assert f"| {label} | {sum(zero[start]) / 2:.3f} +- " in table  # zero-shot, from the pre-trained models
    zero_diff = (zero["freereal"][0] - zero["synthetic"][0] + zero["freereal"][1] - zero["synthetic"][1]) / 2
    assert f"| FreeReal | {zero_diff:+.3f} [" in table.split("Paired difference")[1]
    assert "teacher's pseudo-labels" in table  # FreeReal measured its teacher against the real labels
    for seed in (0, 1):
        curve = (out / "pretrain" / "freereal" / f"seed{seed}" / "teacher_eval.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in curve] == [1, 2, 3]  # each step once, the resumed run's too
    assert (out / "study.png").stat().st_size > 1000 and (out / "paired.png").stat().st_size > 1000
    assert (out / "teacher.png").stat().st_size > 1000 and "teacher.png" in done.stdout

    # a pre-training finished before the zero-shot column existed: measured again, not trained again
    old = out / "pretrain" / "freereal" / "seed1"
    record = json.loads((old / "result.json").read_text())
    weights = (old / "final" / "model.safetensors").read_bytes()
    (old / "result.json").write_text(json.dumps({k: v for k, v in record.items() if k != "zero_shot"}))
    again = _study(*TINY, "--seeds", "0", "1", "2", "--output-dir", str(out))  # one more seed: only its runs
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 pretrain runs reused, 2 to run, 1 to measure zero-shot" in again.stdout
    assert "4 finetune runs reused, 2 to run" in again.stdout
    assert (old / "final" / "model.safetensors").read_bytes() == weights
    assert json.loads((old / "result.json").read_text())["zero_shot"] == record["zero_shot"]
    assert len(json.loads((out / "results.json").read_text())) == 12

    # a study carried over from its small files (docs/studies keeps no models): a pre-training whose model is gone
    # is trained again, to the same weights, only where a fine-tuning still has to start from it
    carried = out / "pretrain" / "freereal" / "seed2"
    weights = (carried / "final" / "model.safetensors").read_bytes()
    for folder in (carried, out / "pretrain" / "synthetic" / "seed2"):
        shutil.rmtree(folder / "final")
    (out / "finetune" / "freereal" / "n4" / "seed2" / "result.json").unlink()
    again = _study(*TINY, "--seeds", "0", "1", "2", "--output-dir", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "5 pretrain runs reused, 1 to run" in again.stdout and "5 finetune runs reused, 1 to run" in again.stdout
    assert (carried / "final" / "model.safetensors").read_bytes() == weights
    assert not (out / "pretrain" / "synthetic" / "seed2" / "final").exists()  # its fine-tuning is done

    # a second fine-tuning per seed and start, on the same images with its own seed: only those run, and each
    # seed's fine-tuned h-mean is the mean of its two
    again = _study(*TINY, "--seeds", "0", "1", "2", "--finetune-repeats", "2", "--output-dir", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    # synthetic-only seed 2's model was removed above: its new repeat needs it, so it is trained again
    assert "5 pretrain runs reused, 1 to run" in again.stdout and "6 finetune runs reused, 6 to run" in again.stdout
    runs = json.loads((out / "results.json").read_text())
    hmeans = {(r["start"], r["seed"], r["repeat"]): r["metrics"]["hmean"] for r in runs if r["kind"] == "finetune"}
    assert len(hmeans) == 12 and (out / "finetune" / "freereal" / "n4" / "seed2-repeat1" / "result.json").exists()
    for repeat, folder in ((0, "seed2"), (1, "seed2-repeat1")):  # its own seed, the same images
        args = json.loads((out / "finetune" / "freereal" / "n4" / folder / "final" / "training_args.json").read_text())
        assert args["seed"] == 2 + 1000 * repeat and args["train_dataset"] == "demo:real-like:4:102"
    table = (out / "results.md").read_text()
    per_seed = [(hmeans[("freereal", seed, 0)] + hmeans[("freereal", seed, 1)]) / 2 for seed in (0, 1, 2)]
    assert f"| FreeReal | {sum(per_seed) / 3:.3f} +- " in table
    assert "2 times per seed and start" in table and "| FreeReal | 4 | " in table.split("spread comes from")[1]


def test_the_study_hands_its_a_t_box_sizes_to_pre_training(tmp_path):
    out = tmp_path / "study"
    one = ["--seeds", "0", "--starts", "freereal", *TINY[TINY.index("--budgets"):]]  # one FreeReal pre-training
    done = _study(*one, "--at-area", "0.3", "0.8", "--output-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    args = json.loads((out / "pretrain" / "freereal" / "seed0" / "final" / "training_args.json").read_text())
    assert (args["min_area"], args["max_area"]) == (0.3, 0.8)
    assert "A^T boxes of 0.3 to 0.8 of the image" in (out / "results.md").read_text()
    assert json.loads((out / "study.json").read_text())["at_area"] == [0.3, 0.8]


@pytest.mark.parametrize("args,message", [
    (["--finetune-steps", "3"], "other settings (finetune_steps)"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--finetune-repeats", "0"], "--finetune-repeats must be at least 1"),
    (["--crop-size", "48"], "multiple of 32"),
    (["--stage1-steps", "5"], "--stage1-steps must be in [0, --pretrain-steps]"),
    (["--pseudo-confidence", "0.3"], "--pseudo-confidence must be in [0.5, 1)"),
    (["--char-mode", "false"], "other settings (char_mode)"),  # a study.json from before the key: its default
    (["--label-mask", "ignore"], "other settings (label_mask)"),
    (["--synthetic-loss-weight", "1"], "other settings (synthetic_loss_weight)"),
    (["--synthetic-loss-weight", "-1"], "--synthetic-loss-weight must be 0 or more"),
    (["--max-pseudo-text", "0.4"], "other settings (max_pseudo_text)"),
    (["--max-pseudo-text", "0"], "--max-pseudo-text must be in (0, 1]"),
    (["--learning-rate", "-1"], "--learning-rate must be positive"),  # else found after every pre-training
    (["--at-area", "0.3", "0.8"], "other settings (at_area)"),
    (["--at-area", "0.6", "0.2"], "--at-area must be MIN MAX with 0 < MIN <= MAX <= 1"),
    (["--at-area", "0", "0.5"], "--at-area must be MIN MAX with 0 < MIN <= MAX <= 1"),
])
def test_the_study_refuses_what_it_cannot_reuse_or_run(tmp_path, args, message):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"model": "dbnet_r18", "pretrain_steps": 3, "finetune_steps": 2,
                                                "image_size": 64, "crop_size": 64, "eval_images": 2,
                                                "synthetic_images": 4, "real_images": 4, "ema_momentum": 0.99,
                                                "learning_rate": 2e-3}))
    done = _study(*TINY, *args, "--output-dir", str(out))
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["study.json"]  # nothing run, nothing written


def test_the_study_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    done = _study(*TINY, "--output-dir", str(tmp_path))
    assert done.returncode == 2 and "holds no study" in done.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep" and not (tmp_path / "study.json").exists()
    file = tmp_path / "mine.txt"
    done = _study(*TINY, "--output-dir", str(file))
    assert done.returncode == 2 and "is a file" in done.stderr


def test_the_study_refuses_an_unknown_model_or_text_free_labeled_images_before_writing_anything(tmp_path):
    done = _study(*TINY, "--model", "dbnet_r19", "--output-dir", str(tmp_path / "study"))
    assert done.returncode == 2 and "--model must be a detector preset (dbnet_r18, " in done.stderr, done.stderr[-2000:]
    # seed 0's first two labeled real-like images at 64 px hold no word: fine-tuning would fail after pre-training
    done = _study(*TINY, "--budgets", "2", "--output-dir", str(tmp_path / "study"))
    assert done.returncode == 2 and "seed 0: its 2 labeled real-like images at 64 px hold no text" in done.stderr
    assert not (tmp_path / "study").exists()
