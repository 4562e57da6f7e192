"""freereal-detect as the main inference tool: files, folders and globs; bad files named and skipped; every output
format; post-processing flags; a used output folder refused; the ONNX path gives the torch path's polygons."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest
import torch

from freereal_hf import DBNetForTextDetection, config_from_preset
from freereal_hf.cli.detect import clockwise_quad
from freereal_hf.cli.detect import main as detect_main
from freereal_hf.convert.cli import main as convert_main


@pytest.fixture(scope="module")
def photos(module_tmp_path):
    """A DBNet whose head fires on bright pixels, and a folder of photos with bright ellipses and bars, plus bad
    files: not an image, truncated, empty."""
    root = module_tmp_path
    torch.manual_seed(0)
    model = DBNetForTextDetection(config_from_preset("dbnet_r18", test_scale=[256, 256])).eval()
    with torch.no_grad():
        model.det_head.binarize[6].bias.fill_(-2.0)
    model.save_pretrained(root / "model")
    (root / "in" / "sub").mkdir(parents=True)
    for i, (h, w) in enumerate([(160, 224), (200, 150), (120, 120)]):
        image = np.zeros((h, w, 3), np.uint8)
        cv2.ellipse(image, (w // 2, h // 3), (w // 3, h // 8), 15 * i, 0, 360, (255, 255, 255), -1)
        cv2.rectangle(image, (10, 2 * h // 3), (w - 20, 2 * h // 3 + 14), (250, 250, 250), -1)
        cv2.imwrite(str(root / "in" / ("sub" if i == 2 else "") / f"img_{i + 1}.png"), image)
    (root / "in" / "notes.jpg").write_text("not an image")
    good = (root / "in" / "img_1.png").read_bytes()
    (root / "in" / "cut.png").write_bytes(good[: len(good) // 3])
    (root / "in" / "empty.png").write_bytes(b"")
    return root


def test_folders_globs_and_files_every_format_and_bad_files_skipped(photos, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(photos / "in"), str(photos / "in" / "img_1.png"), str(photos / "missing*.png"),
            "--model", str(photos / "model"), "--output-dir", str(out), "--save", "json,png,icdar,coco"]
    assert detect_main(argv) == 0
    captured = capsys.readouterr()
    for bad in ("notes.jpg", "cut.png", "empty.png", "missing*.png"):
        assert bad in captured.err
    assert "3 image(s)" in captured.out and "4 input(s) skipped" in captured.out
    index = json.loads((out / "detections.json").read_text())["images"]
    assert [r["name"] for r in index] == ["img_1", "img_2", "img_3"]  # img_1 named twice: detected once
    for record in index:
        assert json.loads((out / "json" / f"{record['name']}.json").read_text()) == record
        assert (out / f"{record['name']}.png").is_file() and len(record["polygons"]) >= 2
        assert all(0.0 < s <= 1.0 for s in record["scores"])
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"res_{r['name']}.txt" for r in index)
        for record in index:
            lines = archive.read(f"res_{record['name']}.txt").decode().splitlines()
            assert len(lines) == len(record["polygons"])
            for line in lines:
                quad = np.array([int(v) for v in line.split(",")], np.float64).reshape(4, 2)
                nxt = np.roll(quad, -1, axis=0)  # the ICDAR 2015 script's clockwise test
                assert np.sum((nxt[:, 0] - quad[:, 0]) * (nxt[:, 1] + quad[:, 1])) <= 0
    coco = json.loads((out / "coco.json").read_text())
    assert coco["categories"] == [{"id": 1, "name": "text"}] and len(coco["images"]) == 3
    assert len(coco["annotations"]) == sum(len(r["polygons"]) for r in index)
    first = coco["annotations"][0]
    x, y, w, h = first["bbox"]
    points = np.array(first["segmentation"][0]).reshape(-1, 2)
    assert np.allclose([x, y, x + w, y + h], [*points.min(0), *points.max(0)], atol=0.02) and first["area"] > 0
    assert not list(tmp_path.glob(".out.partial-*"))


def test_post_processing_flags_override_the_config(photos, tmp_path):
    def run(name, *flags):
        assert detect_main([str(photos / "in" / "img_1.png"), "--model", str(photos / "model"), "--output-dir",
                            str(tmp_path / name), *flags]) == 0
        return json.loads((tmp_path / name / "detections.json").read_text())["images"][0]

    default, poly = run("default"), run("poly", "--output-type", "poly")
    assert all(len(p) == 4 for p in default["polygons"]) and any(len(p) > 4 for p in poly["polygons"])
    strict = run("strict", "--score-threshold", str(max(default["scores"]) + 1e-3))
    assert strict["polygons"] == []
    wide = run("wide", "--unclip-ratio", "3.0")
    area = [sum(cv2.contourArea(np.float32(p)) for p in run["polygons"]) for run in (default, wide)]
    assert area[1] > 1.5 * area[0]


def test_hostile_arguments_and_a_used_output_folder(photos, tmp_path, capsys):
    image, model = str(photos / "in" / "img_1.png"), str(photos / "model")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "mine.txt").write_text("keep")
    (tmp_path / "file").write_text("x")
    cases = [([image, "--model", model, "--output-dir", str(tmp_path / "used")], "not empty; pass --overwrite"),
             ([image, "--model", model, "--output-dir", str(tmp_path / "file")], "is a file"),
             ([image, "--model", model, "--batch-size", "0"], "--batch-size must be at least 1"),
             ([image, "--model", model, "--score-threshold", "-0.1"], "--score-threshold must be in [0, 1]"),
             ([image, "--model", model, "--unclip-ratio", "0"], "--unclip-ratio must be positive"),
             ([image, "--model", model, "--save", "json,pdf"], "--save takes"),
             ([image, "--onnx", str(tmp_path / "none.onnx")], "no such file"),
             ([image, "--onnx", str(tmp_path)], "a folder"),
             ([image], "one of the arguments --model --onnx is required")]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            detect_main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, argv
    assert (tmp_path / "used" / "mine.txt").read_text() == "keep"
    assert detect_main([str(tmp_path / "nothing"), "--model", model, "--output-dir", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert detect_main([image, "--model", model, "--output-dir", str(tmp_path / "used"), "--overwrite"]) == 0
    assert not (tmp_path / "used" / "mine.txt").exists() and (tmp_path / "used" / "detections.json").is_file()
    config = config_from_preset("psenet_r50")
    torch.manual_seed(0)
    from freereal_hf import PSENetForTextDetection

    PSENetForTextDetection(config).save_pretrained(tmp_path / "pse")
    assert detect_main([image, "--model", str(tmp_path / "pse"), "--unclip-ratio", "2", "--output-dir",
                        str(tmp_path / "p")]) == 2
    assert "psenet has no unclip ratio" in capsys.readouterr().err.replace("freereal_psenet", "psenet")


def test_onnx_path_gives_the_torch_paths_polygons(photos, tmp_path):
    pytest.importorskip("onnxruntime")
    assert convert_main(["to-onnx", str(photos / "model"), str(tmp_path / "model.onnx")]) == 0
    common = [str(photos / "in" / "img_1.png"), str(photos / "in" / "img_2.png"), "--output-type", "poly"]
    assert detect_main(common + ["--model", str(photos / "model"), "--output-dir", str(tmp_path / "torch")]) == 0
    assert detect_main(common + ["--onnx", str(tmp_path / "model.onnx"), "--output-dir", str(tmp_path / "ort")]) == 0
    torch_run, onnx_run = (json.loads((tmp_path / n / "detections.json").read_text())["images"] for n in ("torch", "ort"))
    assert sum(len(r["polygons"]) for r in torch_run) > 0
    for a, b in zip(torch_run, onnx_run, strict=True):
        assert len(a["polygons"]) == len(b["polygons"])
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
        for p, q in zip(a["polygons"], b["polygons"]):
            assert np.shape(p) == np.shape(q) and np.abs(np.subtract(p, q)).max() <= 0.5


def test_clockwise_quad_orders_points_as_icdar_expects():
    counter = np.array([[0, 0], [0, 10], [20, 10], [20, 0]], np.float64)  # counter-clockwise on screen (y down)
    quad = clockwise_quad(counter)
    nxt = np.roll(quad, -1, axis=0)
    assert np.sum((nxt[:, 0] - quad[:, 0]) * (nxt[:, 1] + quad[:, 1])) < 0
    octagon = np.array([[5, 0], [15, 0], [20, 5], [20, 10], [15, 15], [5, 15], [0, 10], [0, 5]], np.float64)
    assert clockwise_quad(octagon).shape == (4, 2)


def test_an_images_result_does_not_depend_on_its_batch(photos, tmp_path):
    """Mixed sizes in one batch: each image gives what it gives alone (no padding to a neighbour's size)."""
    files = [str(photos / "in" / "img_1.png"), str(photos / "in" / "img_2.png"), str(photos / "in" / "sub")]
    runs = {}
    for batch in (1, 3):
        out = tmp_path / f"b{batch}"
        assert detect_main(files + ["--model", str(photos / "model"), "--output-dir", str(out), "--batch-size",
                                    str(batch), "--output-type", "poly"]) == 0
        runs[batch] = json.loads((out / "detections.json").read_text())["images"]
    assert sum(len(r["polygons"]) for r in runs[1]) >= 3
    for alone, together in zip(runs[1], runs[3], strict=True):
        assert len(alone["polygons"]) == len(together["polygons"])
        np.testing.assert_allclose(alone["scores"], together["scores"], atol=1e-5)


def test_overlapped_detection_writes_what_detect_returns_and_a_writing_error_leaves_nothing(photos, tmp_path,
                                                                                             monkeypatch):
    """freereal-detect decodes ahead in threads and post-processes and writes in another while the next forward
    runs: the files it writes hold, in input order, what ``detect`` returns for the readable images; an error in
    the writing thread ends the run with that error, and neither OUTPUT_DIR nor its staging folder is left."""
    import argparse

    from freereal_hf.cli import detect as cli
    from freereal_hf.data.records import decode_image
    from freereal_hf.training.evaluation import detect

    out = tmp_path / "out"
    argv = [str(photos / "in"), "--model", str(photos / "model"), "--output-dir", str(out), "--batch-size", "2",
            "--output-type", "poly"]
    assert detect_main(argv) == 0
    index = json.loads((out / "detections.json").read_text())["images"]
    files, _ = cli.collect_inputs([str(photos / "in")])
    readable = [f for f in files if f.name.startswith("img_")]
    assert [r["name"] for r in index] == [f.stem for f in readable]  # order kept, the three bad files skipped
    detector, processor = cli._load_detector(argparse.Namespace(
        onnx=None, model=str(photos / "model"), unclip_ratio=None, score_threshold=None, output_type="poly",
        long_side=None))
    expected = detect(detector, [decode_image(f.read_bytes(), f.name)[0] for f in readable], processor, 1)
    for record, want in zip(index, expected, strict=True):
        assert len(record["polygons"]) == len(want["polygons"]) >= 2
        np.testing.assert_allclose(record["scores"], want["scores"], atol=1e-5)

    calls = []

    def failing_add(self, path, image, result):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full")

    monkeypatch.setattr(cli._Writers, "add", failing_add)
    with pytest.raises(RuntimeError, match="disk full"):
        detect_main(argv[:-6] + ["--output-dir", str(tmp_path / "failed"), "--batch-size", "1"])
    assert not (tmp_path / "failed").exists() and not list(tmp_path.glob(".failed.partial-*"))


def test_detection_batches_group_consecutive_images_of_one_size():
    from freereal_hf.training.evaluation import detect

    shapes = []

    class Recorder(torch.nn.Module):
        """Stands in for a detector: records the batch shapes it is given, finds nothing."""

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, pixel_values, detect_only=False):
            assert detect_only  # detection asks only for what post-processing reads
            shapes.append(tuple(pixel_values.shape))
            return {"prob": pixel_values[:, 0]}

        def post_process(self, outputs, scale_factors):
            return [{"polygons": [], "scores": []} for _ in scale_factors]

    from freereal_hf import TextDetectionImageProcessor

    images = [np.zeros(s + (3,), np.uint8) for s in [(64, 96), (64, 96), (96, 64), (64, 96), (64, 96), (64, 96)]]
    results = detect(Recorder(), images, TextDetectionImageProcessor(scale=None, long_side=96), batch_size=4)
    assert len(results) == 6
    assert [s[0] for s in shapes] == [2, 1, 1, 2] and shapes[1][2:] == (96, 64)


@pytest.mark.parametrize("args,message", [(["--images", "0"], "must be at least 1"),
                                          (["--threads", "-2"], "must be at least 1"),
                                          ([], "was not written by this benchmark")])
def test_detect_benchmark_refuses_bad_arguments_and_a_foreign_folder(tmp_path, args, message):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "notes.txt").write_text("the user's")
    script = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_detect.py"
    done = subprocess.run([sys.executable, str(script), "--work-dir", str(tmp_path), *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written, nothing replaced
