"""Fine-tuning really learns, resumes exactly, logs and saves; freereal-detect and freereal-evaluate work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from freereal_hf.cli.detect import main as detect_main
from freereal_hf.cli.evaluate import main as evaluate_main
from freereal_hf.cli.finetune import main as finetune_main
from freereal_hf.training import FinetuneArguments, finetune


SIZE = 128  # demo images, crops and evaluation: a quarter of the pixels of 256, the same 120 steps learn them


@pytest.fixture(scope="module")
def finetuned(module_tmp_path) -> tuple[Path, dict]:
    out = module_tmp_path / "finetune"
    result = finetune(FinetuneArguments(
        output_dir=str(out), train_dataset="demo:synthetic:16", image_size=SIZE, max_steps=120, learning_rate=2e-3,
        warmup_steps=10, crop_size=SIZE, scale_min=0.8, scale_max=1.25, eval_steps=0, save_steps=60,
        eval_long_side=SIZE, num_workers=2, log_images=2,
        push_to_hub="me/dbnet-demo", dry_run=True, export_mmocr=True))
    return out, result


def test_dbnet_r18_learns_the_demo_images(finetuned, capsys):
    out, result = finetuned
    assert result["global_step"] == 120
    assert result["metrics"]["hmean"] >= 0.8, result["metrics"]
    model = AutoModel.from_pretrained(out / "final")
    assert type(model).__name__ == "DBNetForTextDetection"
    card = (out / "final" / "README.md").read_text()
    assert "model-index" in card and f"value: {result['metrics']['hmean']}" in card and "demo:synthetic:16" in card
    assert (out / "mmocr.pth").is_file() and not (out / "final" / "mmocr.pth").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    report = json.loads((out / "eval" / "step_120.json").read_text())
    assert len(report["per_image"]) == 16 and report["metrics"] == result["metrics"]


def test_tensorboard_has_losses_lr_and_drawn_eval_images(finetuned):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = finetuned
    (events,) = list((out / "logs").rglob("events.out.tfevents*"))[:1]
    acc = EventAccumulator(str(events.parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/loss_prob", "train/lr", "eval/hmean"} <= set(tags["scalars"])
    assert len(acc.Scalars("train/loss")) == 12
    assert {"eval/detections_0", "eval/detections_1"} <= set(tags["images"])


def test_detect_and_evaluate_cli(finetuned, tmp_path, capsys):
    out, result = finetuned
    from freereal_hf.data.demo import demo_records
    import io
    from PIL import Image

    paths = []
    records = demo_records("synthetic", 16, seed=0, size=(SIZE, SIZE))  # the images the model was trained on
    for i, r in enumerate(records):
        paths.append(str(tmp_path / f"img{i}.png"))
        Image.open(io.BytesIO(r["image"]["bytes"])).save(paths[-1])
    assert detect_main(paths + ["missing.png", "--model", str(out / "final"), "--long-side", str(SIZE),
                                "--output-dir", str(tmp_path / "det")]) == 0
    det = json.loads((tmp_path / "det" / "detections.json").read_text())
    from freereal_hf.metrics import hmean_iou

    # the words are found where they are, in the images' own pixels read from files: what evaluation found
    scored = hmean_iou([{"polygons": d["polygons"], "scores": d["scores"]} for d in det["images"]],
                       [{"polygons": r["polygons"], "ignore": [False] * len(r["polygons"])} for r in records])
    assert scored == result["metrics"] and scored["hmean"] >= 0.8, (scored, result["metrics"])
    assert (tmp_path / "det" / "img0.png").is_file()
    assert evaluate_main(["--model", str(out / "final"), "--dataset", "demo:synthetic:16", "--long-side", str(SIZE),
                          "--image-size", str(SIZE),
                          "--report", str(tmp_path / "report.json")]) == 0
    printed = capsys.readouterr().out
    assert f"h-mean {result['metrics']['hmean']:.4f}" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["per_image"]) == 16 and report["per_image"][0]["hmean"] <= report["per_image"][-1]["hmean"]


def test_resume_from_a_checkpoint_ends_with_the_same_weights(tmp_path, caplog):
    common = ["--train_dataset", "demo:synthetic:8", "--max_steps", "6", "--save_steps", "3", "--crop_size", "128",
              "--batch_size", "2", "--eval_steps", "0", "--eval_long_side", "128", "--num_workers", "0",
              "--report_to", "none", "--optimizer", "sgd", "--learning_rate", "0.007"]
    assert finetune_main(["--output_dir", str(tmp_path / "a")] + common) == 0
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "a" / "checkpoints" / "checkpoint_0", tmp_path / "b" / "checkpoints" / "checkpoint_0")
    assert finetune_main(["--output_dir", str(tmp_path / "b"), "--resume", "true"] + common) == 0
    a = load_file(tmp_path / "a" / "final" / "model.safetensors")
    b = load_file(tmp_path / "b" / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    scratch = load_file(tmp_path / "a" / "checkpoints" / "checkpoint_0" / "model.safetensors")
    assert not all(torch.equal(a[k], scratch[k]) for k in a)  # steps 4-6 did change the weights


def test_yaml_arguments(tmp_path):
    from freereal_hf.cli.args import parse_dataclass

    (tmp_path / "ft.yaml").write_text("max_steps: 7\noptimizer: sgd\ntrain_dataset: demo:real-like:4\n")
    args = parse_dataclass(FinetuneArguments, [str(tmp_path / "ft.yaml"), "--max_steps", "9"], "x")
    assert (args.max_steps, args.optimizer, args.train_dataset) == (9, "sgd", "demo:real-like:4")


def test_compiled_and_channels_last_fine_tuning_take_the_same_steps(tmp_path):
    """``--torch_compile`` (accelerate's dynamo plugin; here the aot_eager backend, which traces the model as
    inductor does but runs its ops without code generation) and ``--channels_last`` change the speed, not what is
    learned. Compiled: the final weights equal the plain run's; its checkpoint holds the plain module's names and
    resumes without compiling; ``--profile`` times its steps. Channels-last: the first step's update equals the
    plain one to float rounding (other convolution kernels; later steps drift apart as any rounding does)."""
    from torch._dynamo.utils import counters

    from freereal_hf.training.common import load_model

    common = ["--train_dataset", "demo:synthetic:4", "--image_size", "64", "--crop_size", "64", "--save_steps", "2",
              "--batch_size", "2", "--eval_steps", "0", "--eval_long_side", "64", "--num_workers", "0",
              "--report_to", "none", "--optimizer", "sgd", "--learning_rate", "0.007", "--warmup_steps", "0"]
    assert finetune_main(["--output_dir", str(tmp_path / "plain"), "--max_steps", "3"] + common) == 0
    torch._dynamo.reset()  # an earlier test may have compiled the same code: trace anew, so it counts
    graphs = counters["stats"]["unique_graphs"]
    result = finetune(FinetuneArguments(
        output_dir=str(tmp_path / "compiled"), train_dataset="demo:synthetic:4", image_size=64, crop_size=64,
        max_steps=3, save_steps=2, batch_size=2, eval_steps=0, eval_long_side=64, num_workers=0, report_to="none",
        optimizer="sgd", learning_rate=0.007, warmup_steps=0, torch_compile=True, torch_compile_backend="aot_eager",
        profile=True))
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo really traced the model
    assert result["profiled_steps"] == 2 and "forward/backward" in result["profile"]  # the first step warms up
    plain = load_file(tmp_path / "plain" / "final" / "model.safetensors")
    compiled = load_file(tmp_path / "compiled" / "final" / "model.safetensors")
    assert compiled.keys() == plain.keys()
    for k in plain:
        torch.testing.assert_close(compiled[k], plain[k], rtol=1e-6, atol=1e-6, msg=k)
    checkpoint = tmp_path / "compiled" / "checkpoints" / "checkpoint_0"
    assert load_file(checkpoint / "model.safetensors").keys() == plain.keys()  # no _orig_mod. prefix
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(checkpoint, tmp_path / "resumed" / "checkpoints" / checkpoint.name)
    assert finetune_main(["--output_dir", str(tmp_path / "resumed"), "--resume", "true", "--max_steps", "3"]
                         + common) == 0
    resumed = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert all(torch.allclose(resumed[k].float(), plain[k].float(), atol=1e-6) for k in plain)

    for run in ("one", "one_last"):
        flags = ["--channels_last", "true"] if run == "one_last" else []
        assert finetune_main(["--output_dir", str(tmp_path / run), "--max_steps", "1"] + flags + common) == 0
    start = load_model("dbnet_r18", seed=0, allow_fresh=True).state_dict()
    one, last = (load_file(tmp_path / run / "final" / "model.safetensors") for run in ("one", "one_last"))
    floats = [k for k in one if one[k].is_floating_point()]
    step = torch.cat([(one[k] - start[k]).flatten() for k in floats])
    step_last = torch.cat([(last[k] - start[k]).flatten() for k in floats])
    assert step.norm() > 1e-2  # the step moved the weights: the comparison means something
    assert (step_last - step).norm() < 1e-3 * step.norm()


def test_the_profile_says_how_to_feed_a_step_that_waits_for_data():
    """``--profile``'s table: parts in ms per step with shares; a line on feeding the step when it waits for data
    more than a fifth of the time, none when it does not."""
    import re
    import time

    from freereal_hf.training.common import StepTimer

    def table(wait: float, work: float) -> str:
        timer = StepTimer(("data wait", "forward/backward"), torch.device("cpu"), sync=True)
        for _ in range(3):  # the first step is left out as warm-up
            timer.last = time.perf_counter()
            time.sleep(wait)
            timer.mark("data wait")
            time.sleep(work)
            timer.mark("forward/backward")
            timer.step_done(more_follow=True)
        assert timer.steps == 2
        return timer.table(timer.steps)

    starved = table(0.06, 0.01)
    share = float(starved.splitlines()[1].split()[-1].rstrip("%"))
    said = re.search(r"waits for data (\d+)% of the time", starved)
    assert share > 70 and said and abs(int(said.group(1)) - share) <= 0.6 and "--num_workers" in starved
    assert float(starved.splitlines()[1].split()[-2]) >= 60  # ms per step of the data wait
    fed = table(0.001, 0.05)
    assert "waits for data" not in fed and fed.splitlines()[-1].startswith("step")
