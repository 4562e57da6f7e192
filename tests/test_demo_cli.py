"""The README's first command: freereal-demo fits a DBNet-R18 to a generated image and finds its text."""

from __future__ import annotations

import json


from freereal_hf.cli.demo import generated_image, main
from freereal_hf.metrics import hmean_iou


def test_demo_finds_the_generated_text_lines(tmp_path, capsys):
    assert main(["--output-dir", str(tmp_path)]) == 0
    assert "fitted 80 steps" in capsys.readouterr().out
    result = json.loads((tmp_path / "detections.json").read_text())
    _, boxes = generated_image()
    score = hmean_iou([{"polygons": result["polygons"], "scores": result["scores"]}],
                      [{"polygons": [b.tolist() for b in boxes], "ignore": [False] * len(boxes)}])
    assert score["hmean"] >= 0.8, score
    for name in ("detections.png", "text_map.png", "input.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_demo_reports_unreadable_image(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["--image", str(tmp_path / "broken.png"), "--output-dir", str(tmp_path / "out")]) == 1
    assert "cannot read image" in capsys.readouterr().err
