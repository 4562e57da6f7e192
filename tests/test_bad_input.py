"""Bad input as a hostile user gives it: a clear one-line error before any work, or a counted skip; nothing
deleted that the command did not write; no wrong result with exit code 0."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from freereal_hf import DBNetForTextDetection, config_from_preset
from freereal_hf.cli.detect import main as detect_main
from freereal_hf.cli.evaluate import main as evaluate_main
from freereal_hf.cli.finetune import main as finetune_main
from freereal_hf.cli.prepare import main as prepare_main
from freereal_hf.cli.pretrain import main as pretrain_main
from freereal_hf.convert.cli import main as convert_main
from freereal_hf.metrics import hmean_iou
from freereal_hf.training.common import UsageError, load_model

TINY = ["--synthetic_dataset", "demo:synthetic:4", "--real_datasets", "demo:real-like:4:1", "--crop_size", "64",
        "--image_size", "64", "--batch_size", "2", "--num_workers", "0", "--report_to", "none"]


def write_release(src: Path, num_images: int) -> None:
    """A tiny ICDAR2015-layout release: train/img_i.jpg and gt/gt_img_i.txt."""
    import cv2

    (src / "train").mkdir(parents=True)
    (src / "gt").mkdir(parents=True)
    for i in range(num_images):
        cv2.imwrite(str(src / "train" / f"img_{i}.jpg"), np.full((60, 80, 3), 100 + i, np.uint8))
        (src / "gt" / f"gt_img_{i}.txt").write_text("10,10,40,10,40,30,10,30,word\n")


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no message"
    return err[-1]


@pytest.fixture(scope="module")
def saved_dbnet(module_tmp_path) -> Path:
    out = module_tmp_path / "dbnet"
    torch.manual_seed(0)
    DBNetForTextDetection(config_from_preset("dbnet_r18")).save_pretrained(out)
    return out


# -- output folders -----------------------------------------------------------------------------------------------

def test_evaluate_and_demo_keep_an_earlier_output_unless_told(saved_dbnet, tmp_path, capsys):
    from freereal_hf.cli.demo import main as demo_main

    report = tmp_path / "report.json"
    report.write_text("earlier")
    args = ["--model", str(saved_dbnet), "--dataset", "demo:synthetic:2", "--image-size", "64", "--report", str(report)]
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(args)
    assert exit_info.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert report.read_text() == "earlier"
    assert evaluate_main(args + ["--overwrite"]) == 0
    assert json.loads(report.read_text())["dataset"] == "demo:synthetic:2" and not list(tmp_path.glob(".*partial"))
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(args[:-1] + [str(tmp_path)])
    assert exit_info.value.code == 2 and "is a folder" in capsys.readouterr().err
    used = tmp_path / "demo"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    for out, message in ((used, "is not empty; pass --overwrite"), (report, "is a file")):
        with pytest.raises(SystemExit) as exit_info:
            demo_main(["--output-dir", str(out)])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert (used / "mine.txt").read_text() == "keep"


def test_convert_keeps_an_earlier_output_unless_told(saved_dbnet, tmp_path, capsys):
    ckpt = tmp_path / "ours.pth"
    ckpt.write_bytes(b"earlier")
    with pytest.raises(SystemExit) as exit_info:
        convert_main(["to-mmocr", str(saved_dbnet), str(ckpt)])
    assert exit_info.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert ckpt.read_bytes() == b"earlier"
    assert convert_main(["to-mmocr", str(saved_dbnet), str(ckpt), "--overwrite"]) == 0
    assert ckpt.stat().st_size > 1000 and not list(tmp_path.glob(".*partial*"))
    used = tmp_path / "hf"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as exit_info:
        convert_main(["to-hf", str(ckpt), str(used), "--model", "dbnet_r18"])
    assert exit_info.value.code == 2 and "is not empty; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in used.iterdir()) == ["mine.txt"]
    assert convert_main(["to-hf", str(ckpt), str(used), "--model", "dbnet_r18", "--overwrite"]) == 0
    assert (used / "mine.txt").read_text() == "keep" and (used / "model.safetensors").is_file()
    assert load_file(used / "model.safetensors").keys() == load_file(saved_dbnet / "model.safetensors").keys()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize("main", [pretrain_main, finetune_main])
def test_a_used_output_folder_is_refused_and_kept(main, tmp_path, capsys):
    (tmp_path / "checkpoints" / "checkpoint_2").mkdir(parents=True)
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "model.safetensors").write_bytes(b"trained weights")
    assert main(["--output_dir", str(tmp_path), "--max_steps", "2", *TINY[:0]]) == 2
    message = _error(capsys)
    assert "already holds a run" in message and "--resume" in message and "--overwrite_output_dir" in message
    assert (tmp_path / "final" / "model.safetensors").read_bytes() == b"trained weights"
    assert (tmp_path / "checkpoints" / "checkpoint_2").is_dir()


@pytest.mark.parametrize("flags,expected", [
    (["--max_steps", "0"], "--max_steps must be at least 1"),
    (["--max_steps", "-3"], "--max_steps must be at least 1"),
    (["--batch_size", "0"], "--batch_size must be at least 1"),
    (["--crop_size", "90"], "--crop_size must be a positive multiple of 32"),
    (["--crop_size", "0"], "--crop_size must be a positive multiple of 32"),
    (["--learning_rate", "0"], "--learning_rate must be positive"),
    (["--eval_images", "0"], "--eval_images must be at least 1"),
    (["--eval_steps", "-1"], "--eval_steps must be 0 or more"),
    (["--eval_long_side", "16"], "--eval_long_side must be at least 32"),
    # would train with exit 0 and teach nothing: no stage 2, every pseudo-label ignored, a diverging teacher
    (["--max_steps", "4", "--stage1_steps", "5"], "--stage1_steps must be in [0, --max_steps = 4]"),
    (["--pseudo_confidence", "1.5"], "--pseudo_confidence must be in [0.5, 1)"),
    (["--ema_momentum", "1.5"], "--ema_momentum must be in [0, 1]"),
    (["--synthetic_loss_weight", "-1"], "--synthetic_loss_weight must be 0 or more"),
    (["--synthetic_loss_weight", "nan"], "--synthetic_loss_weight must be 0 or more"),
    (["--max_pseudo_text", "0"], "--max_pseudo_text must be in (0, 1]"),
    (["--max_pseudo_text", "1.5"], "--max_pseudo_text must be in (0, 1]"),
    (["--min_area", "0"], "GlyphMix: need 0 < min_area <= max_area <= 1"),
    (["--torch_compile", "true", "--torch_compile_backend", "fastest"], "--torch_compile_backend must be one of"),
    (["--torch_compile", "true", "--torch_compile_mode", "fast"], "--torch_compile_mode must be one of"),
])
def test_bad_numbers_fail_before_any_work(flags, expected, tmp_path, capsys):
    assert pretrain_main(["--output_dir", str(tmp_path / "out"), *flags]) == 2
    assert expected in _error(capsys)
    assert not (tmp_path / "out" / "final").exists()


@pytest.mark.parametrize("main,flags,expected", [
    ("finetune", ["--train_dataset", "demo:curved:0"], "--train_dataset: a demo dataset needs at least 1 image"),
    ("finetune", ["--eval_dataset", "demo:bogus"], "--eval_dataset: cannot read demo dataset spec 'demo:bogus'"),
    ("pretrain", ["--real_datasets", "demo:real-like:0"], "--real_datasets: a demo dataset needs at least 1 image"),
    ("finetune", ["--torch_compile_backend", "jit"], "--torch_compile_backend must be one of"),
])
def test_bad_demo_specs_are_one_line_errors_before_any_work(main, flags, expected, tmp_path, capsys):
    run = finetune_main if main == "finetune" else pretrain_main
    assert run(["--output_dir", str(tmp_path / "out"), *flags]) == 2
    assert expected in _error(capsys)
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_an_output_dir_that_is_a_file_fails_before_the_first_step(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert finetune_main(["--output_dir", str(tmp_path / "file"), "--max_steps", "1"]) == 2
    assert "is a file" in _error(capsys) and (tmp_path / "file").read_text() == "keep me"


def test_unknown_yaml_keys_and_a_missing_file_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("max_steps: 3\nmax_step: 4\n")
    assert pretrain_main([str(tmp_path / "a.yaml")]) == 2
    assert "max_step" in _error(capsys)
    assert pretrain_main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in _error(capsys)


def test_synthetic_data_without_character_boxes_is_refused(tmp_path, capsys):
    from freereal_hf.data.demo import demo_dataset

    ds = demo_dataset("synthetic", 4).map(lambda r: {"char_polygons": [], "char_word": []})
    (tmp_path / "nochars" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "nochars" / "data" / "train-00000-of-00001.parquet"))
    args = ["--output_dir", str(tmp_path / "out"), "--max_steps", "2", *TINY]
    args[args.index("--synthetic_dataset") + 1] = str(tmp_path / "nochars")
    assert pretrain_main(args) == 2
    message = _error(capsys)
    assert "nochars" in message and "character boxes" in message
    assert not (tmp_path / "out" / "final").exists()


def test_fine_tuning_on_data_without_labels_or_too_few_images_is_refused(tmp_path, capsys):
    from freereal_hf.data.demo import demo_dataset
    from freereal_hf.data.schema import LABEL_COLUMNS

    ds = demo_dataset("real-like", 4, seed=1).map(lambda r: dict.fromkeys(LABEL_COLUMNS, []))
    (tmp_path / "unlabeled" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "unlabeled" / "data" / "train-00000-of-00001.parquet"))
    common = ["--model", "dbnet_r18", "--max_steps", "2", "--crop_size", "64", "--num_workers", "0",
              "--report_to", "none", "--eval_steps", "0", "--save_steps", "0"]
    assert finetune_main(["--output_dir", str(tmp_path / "out"), "--train_dataset", str(tmp_path / "unlabeled"),
                          "--train_split", "train", *common]) == 2
    assert "training dataset" in (message := _error(capsys)) and "no word polygons" in message
    assert finetune_main(["--output_dir", str(tmp_path / "out2"), "--train_dataset", "demo:synthetic:3",
                          "--batch_size", "4", *common]) == 2  # fewer images than one batch
    assert "gives 0 batches of 4" in _error(capsys)
    assert not (tmp_path / "out" / "final").exists() and not (tmp_path / "out2" / "final").exists()


def test_a_teacher_evaluation_set_without_labels_is_refused_before_the_first_step(tmp_path, capsys):
    from freereal_hf.data.demo import demo_dataset
    from freereal_hf.data.schema import LABEL_COLUMNS

    ds = demo_dataset("real-like", 4, seed=1).map(lambda r: dict.fromkeys(LABEL_COLUMNS, []))
    (tmp_path / "unlabeled" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "unlabeled" / "data" / "train-00000-of-00001.parquet"))
    args = ["--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--eval_dataset", str(tmp_path / "unlabeled"),
            "--eval_split", "train", *TINY]
    assert pretrain_main(args) == 2
    message = _error(capsys)
    assert "unlabeled" in message and "no polygons" in message
    assert not (tmp_path / "out" / "final").exists() and not (tmp_path / "out" / "checkpoints").exists()
    # unlabeled real data and no --eval_dataset: no teacher window, and the run goes on
    args = ["--output_dir", str(tmp_path / "out2"), "--max_steps", "2", "--stage1_steps", "1", *TINY]
    args[args.index("--real_datasets") + 1] = str(tmp_path / "unlabeled")
    assert pretrain_main(args) == 0
    assert (tmp_path / "out2" / "final").is_dir() and not (tmp_path / "out2" / "teacher_eval.jsonl").exists()


def test_missing_dataset_and_missing_split_are_named(tmp_path, saved_dbnet, capsys):
    assert evaluate_main(["--model", str(saved_dbnet), "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in _error(capsys)
    from freereal_hf.data.demo import demo_dataset

    (tmp_path / "ds" / "data").mkdir(parents=True)
    demo_dataset("synthetic", 2).to_parquet(str(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet"))
    assert evaluate_main(["--model", str(saved_dbnet), "--dataset", str(tmp_path / "ds"), "--split", "test"]) == 2
    message = _error(capsys)
    assert "'test'" in message and "ds" in message


# -- models -------------------------------------------------------------------------------------------------------

def test_a_model_missing_weights_is_refused_everywhere(saved_dbnet, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(saved_dbnet, broken)
    weights = load_file(broken / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("det_head.threshold")}, broken / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(UsageError, match="missing weights: det_head.threshold"):
        load_model(str(broken))
    image = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    assert detect_main([str(image), "--model", str(broken), "--output-dir", str(tmp_path / "det")]) == 2
    assert "missing weights" in _error(capsys) and not (tmp_path / "det" / "detections.json").exists()
    assert convert_main(["to-mmocr", str(broken), str(tmp_path / "out.pth")]) == 1
    assert "missing weights" in _error(capsys) and not (tmp_path / "out.pth").exists()


def test_a_preset_is_refused_where_trained_weights_are_needed(tmp_path, capsys):
    """A preset name builds random weights: fine where training follows, refused where the model would detect,
    be scored or be converted (random detections with exit 0 would look like a result)."""
    from freereal_hf.cli.demo import main as demo_main
    import cv2

    with pytest.raises(UsageError, match="'dbnet_r18' is a preset"):
        load_model("dbnet_r18")
    assert type(load_model("dbnet_r18", allow_fresh=True)).__name__ == "DBNetForTextDetection"
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 200, np.uint8))
    assert detect_main([str(image), "--model", "dbnet_r18", "--output-dir", str(tmp_path / "det")]) == 2
    assert "is a preset" in _error(capsys) and not (tmp_path / "det").exists()
    assert evaluate_main(["--model", "psenet_r50", "--dataset", "demo:synthetic:2", "--report",
                          str(tmp_path / "report.json")]) == 2
    assert "is a preset" in _error(capsys) and not (tmp_path / "report.json").exists()
    for command in ("to-onnx", "to-mmocr"):
        out = tmp_path / f"out.{'onnx' if command == 'to-onnx' else 'pth'}"
        assert convert_main([command, "dbnet_r18", str(out)]) != 0
        assert "is a preset" in _error(capsys) and not out.exists()
    for args in (["--image", str(image)], ["--fit-steps", "0"]):  # a preset the demo would not fit
        assert demo_main([*args, "--output-dir", str(tmp_path / "demo")]) == 2
        assert "is a preset, with random weights" in _error(capsys) and not (tmp_path / "demo").exists()


def test_truncated_garbage_foreign_and_missing_models_are_named(saved_dbnet, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(saved_dbnet, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="truncated/model.safetensors does not load"):
        load_model(str(truncated))
    garbage = tmp_path / "garbage"
    shutil.copytree(saved_dbnet, garbage)
    (garbage / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="garbage"):
        load_model(str(garbage))
    foreign = tmp_path / "foreign"
    shutil.copytree(saved_dbnet, foreign)
    config = json.loads((foreign / "config.json").read_text())
    config["model_type"] = "bert"
    (foreign / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="foreign"):
        load_model(str(foreign))
    with pytest.raises(UsageError, match="no such folder"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="is a file"):
        load_model(str(saved_dbnet / "config.json"))


# -- results that must not look fine ------------------------------------------------------------------------------

def test_no_labels_is_no_score_and_nan_scores_do_not_count():
    box = [[0, 0], [10, 0], [10, 10], [0, 10]]
    with pytest.warns(UserWarning, match="no"):
        empty = hmean_iou([{"polygons": [], "scores": []}], [{"polygons": [], "ignore": []}])
    assert math.isnan(empty["hmean"])
    with pytest.warns(UserWarning):
        assert math.isnan(hmean_iou([], [])["hmean"])
    nan_score = hmean_iou([{"polygons": [box], "scores": [float("nan")]}], [{"polygons": [box], "ignore": [False]}])
    assert nan_score["hmean"] == 0.0


def test_evaluate_on_unlabeled_data_is_an_error(saved_dbnet, tmp_path, capsys):
    from freereal_hf.data.demo import demo_dataset

    ds = demo_dataset("real-like", 2).map(lambda r: {"polygons": [], "ignore": [], "texts": []})
    (tmp_path / "unlabeled" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "unlabeled" / "data" / "train-00000-of-00001.parquet"))
    assert evaluate_main(["--model", str(saved_dbnet), "--dataset", str(tmp_path / "unlabeled"), "--split", "train",
                          "--report", str(tmp_path / "r.json")]) == 2
    assert "no labeled text" in _error(capsys)


def test_detect_keeps_both_pictures_of_two_files_with_one_name(saved_dbnet, tmp_path, capsys):
    import cv2

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "photo.png"), np.full((64, 64, 3), 40 if folder == "a" else 200, np.uint8))
    assert detect_main([str(tmp_path / "a" / "photo.png"), str(tmp_path / "b" / "photo.png"), "--model",
                        str(saved_dbnet), "--output-dir", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "detections.json").read_text())["images"]
    assert [r["name"] for r in report] == ["photo", "photo_2"]
    assert (tmp_path / "out" / "photo.png").is_file() and (tmp_path / "out" / "photo_2.png").is_file()
    with pytest.raises(SystemExit) as exit_info:
        detect_main([str(tmp_path / "a" / "photo.png"), "--model", str(saved_dbnet), "--long-side", "0"])
    assert exit_info.value.code == 2 and "--long-side must be at least 32" in capsys.readouterr().err


# -- prepare ------------------------------------------------------------------------------------------------------

def test_prepare_never_destroys_the_release_or_a_foreign_folder(tmp_path, capsys):
    release = tmp_path / "proj" / "data" / "icdar2015"
    write_release(release, 2)
    before = sorted(p.name for p in release.rglob("*"))
    assert prepare_main(["icdar2015", str(release), "--out", str(tmp_path / "proj")]) == 2
    assert "contains the release" in _error(capsys)
    assert sorted(p.name for p in release.rglob("*")) == before
    assert prepare_main(["icdar2015", str(release), "--out", str(release / "out")]) == 2
    assert "inside the release" in _error(capsys)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert prepare_main(["icdar2015", str(release), "--out", str(foreign)]) == 2
    assert "--overwrite" in _error(capsys) and (foreign / "notes.txt").read_text() == "mine"
    assert prepare_main(["icdar2015", str(release), "--out", str(foreign), "--overwrite"]) == 0
    assert (foreign / "notes.txt").read_text() == "mine" and list((foreign / "data").glob("*.parquet"))
    # an earlier output: another release's split there is a dataset this run did not write
    test_release = tmp_path / "test_release"
    write_release(test_release, 1)
    before = {p.name: p.read_bytes() for p in (foreign / "data").iterdir()}
    assert prepare_main(["icdar2015", str(test_release), "--out", str(foreign), "--split", "test"]) == 2
    assert "holds a dataset freereal-prepare wrote; pass --overwrite" in _error(capsys)
    assert {p.name: p.read_bytes() for p in (foreign / "data").iterdir()} == before
    (tmp_path / "afile").write_text("x")
    assert prepare_main(["icdar2015", str(release), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in _error(capsys)


def test_prepare_shards_are_planned_from_file_sizes_and_written_in_row_groups(tmp_path):
    """Shards are cut from the files' sizes before anything is read (so any process writes the same shard), a
    shard whose every record is skipped is dropped and the rest renumbered, and each file is written in row
    groups of ROW_GROUP records (what a worker holds at a time), in 1 and 3 processes alike."""
    import pyarrow.parquet as pq

    from freereal_hf.data.formats import get_format
    from freereal_hf.data.prepare import ROW_GROUP, plan_shards, write_shards
    from freereal_hf.data.records import Report

    src = tmp_path / "release"
    write_release(src, ROW_GROUP + 6)
    entries = get_format("icdar2015").entries(src)
    size = (src / "train" / "img_0.jpg").stat().st_size
    shards = plan_shards(entries, max_bytes=int(size * 2.5))  # a shard closes on the entry that reaches the bound
    sizes = [sum(Path(e.image).stat().st_size for e in shard) for shard in shards]
    assert sum(len(s) for s in shards) == len(entries) and [e for s in shards for e in s] == entries
    assert all(s >= size * 2.5 for s in sizes[:-1]) and all(s - size < size * 2.5 for s in sizes)
    # every record of shard 1 unreadable: that shard is dropped and named around
    for entry in shards[1]:
        Path(entry.image).write_bytes(b"not an image")
    results = {}
    for n in (1, 3):
        (tmp_path / f"o{n}").mkdir()
        report = Report()
        files = write_shards("icdar2015", shards, tmp_path / f"o{n}", "train", report, num_proc=n)
        results[n] = [(p.name, count, p.read_bytes()) for p, count in files], report.counts
    assert results[1] == results[3]
    names = [name for name, _, _ in results[1][0]]
    assert len(names) == len(shards) - 1 and names[-1] == f"train-{len(names) - 1:05d}-of-{len(names):05d}.parquet"
    assert results[1][1]["records skipped"] == len(shards[1])
    assert sum(count for _, count, _ in results[1][0]) == len(entries) - len(shards[1])
    good = [e for e in entries if e not in shards[1]]
    assert len(good) > ROW_GROUP
    (tmp_path / "one").mkdir()
    [(path, count)] = write_shards("icdar2015", [good], tmp_path / "one", "train", Report())
    meta = pq.ParquetFile(path).metadata
    assert count == meta.num_rows == len(good) and meta.num_row_groups == 2
    assert meta.row_group(0).num_rows == ROW_GROUP


def test_prepare_refuses_a_release_where_no_record_can_be_read(tmp_path, capsys, caplog):
    """Every image unreadable: an error naming the count and exit status 2, not an empty dataset with status 0;
    nothing is written, in one process or several."""
    src = tmp_path / "release"
    write_release(src, 3)
    for image in (src / "train").iterdir():
        image.write_bytes(b"not an image")
    for n in ("1", "3"):
        assert prepare_main(["icdar2015", str(src), "--out", str(tmp_path / "out"), "--num-proc", n]) == 2
        err = capsys.readouterr().err
        assert "none of the 3 images" in err and "records skipped: 3" in err and "train/img_1.jpg" in caplog.text
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_a_failing_re_prepare_keeps_the_previous_dataset(tmp_path, monkeypatch, capsys):
    from datasets import load_dataset

    import importlib

    prepare_module = importlib.import_module("freereal_hf.data.prepare")

    release = tmp_path / "release"
    write_release(release, 3)
    out = tmp_path / "out"
    assert prepare_main(["icdar2015", str(release), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in (out / "data").iterdir()}

    def explode(*args, **kwargs):
        raise RuntimeError("malformed row")

    monkeypatch.setattr(prepare_module, "_write_shard", explode)
    with pytest.raises(RuntimeError):
        prepare_main(["icdar2015", str(release), "--out", str(out), "--overwrite"])
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert len(load_dataset(str(out), split="train")) == 3


def test_resume_skips_a_corrupted_newest_checkpoint_naming_the_file(tmp_path, caplog):
    import logging

    out = tmp_path / "run"
    base = ["--output_dir", str(out), *TINY, "--save_steps", "2", "--save_total_limit", "3"]
    assert pretrain_main([*base, "--max_steps", "4"]) == 0
    newest = out / "checkpoints" / "checkpoint_1" / "model.safetensors"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING, logger="freereal_hf.training"):
        assert pretrain_main([*base, "--max_steps", "6", "--resume", "true"]) == 0
    assert "checkpoint_1/model.safetensors" in caplog.text and "does not load" in caplog.text
    assert (out / "checkpoints" / "checkpoint_1.broken").is_dir()  # set aside, not deleted
    assert json.loads((out / "final" / "training_args.json").read_text())["steps_trained"] == 6


def test_cmyk_and_gray_alpha_images_decode_with_the_right_colours():
    import io

    from PIL import Image

    from freereal_hf.data.records import decode_image

    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)  # pure red in CMYK
    rgb, converted = decode_image(buf.getvalue(), "cmyk.jpg")
    assert converted and rgb[4, 4, 0] > 200 and rgb[4, 4, 1] < 60 and rgb[4, 4, 2] < 60
    buf = io.BytesIO()
    Image.new("LA", (8, 8), (120, 200)).save(buf, "PNG")
    assert decode_image(buf.getvalue(), "gray_alpha.png")[0][0, 0].tolist() == [120, 120, 120]


def test_prepare_counts_non_utf8_texts_and_missing_images_and_its_card_loads_quietly(tmp_path, caplog):
    import logging

    from datasets import load_dataset

    from freereal_hf.data import prepare

    release = tmp_path / "release"
    write_release(release, 2)
    (release / "gt" / "gt_img_1.txt").write_bytes(b"10,10,40,10,40,30,10,30,caf\xe9\n")  # Latin-1, not UTF-8
    (release / "gt" / "gt_img_2.txt").write_text("10,10,40,10,40,30,10,30,lost\n")  # its image is missing
    entries = __import__("freereal_hf.data.formats", fromlist=["get_format"]).get_format("icdar2015").entries(release)
    from freereal_hf.data.formats import Entry

    entries.append(Entry("train/img_2.jpg", str(release / "train" / "img_2.jpg"), str(release / "gt" / "gt_img_2.txt"),
                         "train"))
    with caplog.at_level(logging.WARNING):
        _, report = prepare("icdar2015", release, tmp_path / "out", progress=False, entries=entries)
        ds = load_dataset(str(tmp_path / "out"), split="train")
    assert report.counts["texts with bytes that are not UTF-8 (replaced by U+FFFD)"] == 1
    assert report.counts["records skipped"] == 1 and "train/img_2.jpg" in caplog.text
    assert "train/img_1.jpg" in caplog.text and len(ds) == 2
    assert "malformed" not in caplog.text  # the card's YAML passes datasets' own validation


def test_prepare_in_several_processes_writes_the_same_bytes_and_counts_the_same(tmp_path, capsys):
    """--num-proc 2 reads and checks records in two processes; shards, card and report are byte for byte those
    of one process, bad records (a truncated image, a malformed annotation, a missing one) included."""
    from freereal_hf.cli.prepare import main as prepare_main

    src = tmp_path / "release"
    write_release(src, 24)
    good = (src / "train" / "img_3.jpg").read_bytes()
    (src / "train" / "img_3.jpg").write_bytes(good[: len(good) // 2])
    (src / "gt" / "gt_img_5.txt").write_text("10,10,nonsense\n")
    (src / "gt" / "gt_img_7.txt").unlink()
    outputs = {}
    for n in (1, 2):
        assert prepare_main(["icdar2015", str(src), "--out", str(tmp_path / f"out{n}"), "--num-proc", str(n), "--name", "r",
                             "--max-shard-mb", "1"]) == 0
        outputs[n] = capsys.readouterr().out
    one = sorted(p.relative_to(tmp_path / "out1") for p in (tmp_path / "out1").rglob("*") if p.is_file())
    two = sorted(p.relative_to(tmp_path / "out2") for p in (tmp_path / "out2").rglob("*") if p.is_file())
    assert one == two and len(one) >= 2
    for rel in one:
        assert (tmp_path / "out1" / rel).read_bytes() == (tmp_path / "out2" / rel).read_bytes(), rel
    assert outputs[1].replace("out1", "out") == outputs[2].replace("out2", "out") and "skipped" in outputs[1]
    with pytest.raises(SystemExit) as exit_info:
        prepare_main(["icdar2015", str(src), "--out", str(tmp_path / "o"), "--num-proc", "0"])
    assert exit_info.value.code == 2 and "--num-proc must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        prepare_main(["icdar2015", str(src), "--out", str(tmp_path / "o"), "--max-shard-mb", "0"])
    assert exit_info.value.code == 2 and "--max-shard-mb must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
