"""One post-processing path: the parameters in a saved config are what freereal-detect, the image processor and
evaluation use."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from freereal_hf import DBNetForTextDetection, TextDetectionImageProcessor, config_from_preset
from freereal_hf.cli.detect import main as detect_main


def _saved_model(tmp_path):
    torch.manual_seed(0)
    model = DBNetForTextDetection(config_from_preset("dbnet_r18", test_scale=[256, 256])).eval()
    with torch.no_grad():  # a head that fires on bright pixels, so that there is text to find
        model.det_head.binarize[6].bias.fill_(-2.0)
    model.save_pretrained(tmp_path / "model")
    image = np.zeros((160, 224, 3), np.uint8)
    cv2.ellipse(image, (112, 80), (80, 40), 20, 0, 360, (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "ellipse.png"), image)
    return model, image


def _detect(tmp_path, name: str) -> list[list]:
    assert detect_main([str(tmp_path / "ellipse.png"), "--model", str(tmp_path / "model"),
                        "--output-dir", str(tmp_path / name)]) == 0
    return json.loads((tmp_path / name / "detections.json").read_text())["images"][0]["polygons"]


def test_editing_text_repr_type_in_a_saved_config_changes_what_detect_writes(tmp_path):
    _saved_model(tmp_path)
    quads = _detect(tmp_path, "quad")
    assert len(quads) >= 1 and all(len(p) == 4 for p in quads)
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["text_repr_type"] == "quad"
    config["text_repr_type"] = "poly"
    config_path.write_text(json.dumps(config))
    polys = _detect(tmp_path, "poly")
    assert len(polys) >= 1 and max(len(p) for p in polys) > 4  # polygons now, where quads were written


def test_processor_uses_the_config_it_is_given(tmp_path):
    model, image = _saved_model(tmp_path)
    processor = TextDetectionImageProcessor.for_config(model.config)
    inputs = processor(image)
    with torch.no_grad():
        out = model(inputs["pixel_values"])
    via_model = model.post_process(out, inputs["scale_factors"].tolist())[0]
    model.config.min_text_score = 0.99  # nothing scores that high
    via_processor = processor.post_process_text_detection(out, target_sizes=[image.shape[:2]], config=model.config)
    assert len(via_model["polygons"]) >= 1 and via_processor[0]["polygons"] == []
    assert model.post_process(out, inputs["scale_factors"].tolist())[0]["polygons"] == []


@pytest.mark.parametrize("preset", ["psenet_r50_ctw1500", "panet_r18_ctw1500"])
def test_ctw1500_presets_give_curved_polygons_and_draw_them(preset):
    """What freereal-detect writes and draws for the CTW1500 presets: a curved band comes back as a polygon that
    follows it (from perfect outputs, through the config's post-processing), not as its bounding quad."""
    from shapely.geometry import Polygon
    from transformers import AutoModel

    from freereal_hf.visualize import draw_polygons

    model = AutoModel.from_config(config_from_preset(preset)).eval()
    xs = np.linspace(20, 236, 12)
    ys = 96 + 50 * np.sin(np.linspace(0, np.pi, 12))
    band = np.concatenate([np.stack([xs, ys - 18], 1), np.stack([xs[::-1], ys[::-1] + 18], 1)]).astype(np.float32)
    targets = model.build_targets([band], [False], (192, 256))
    stacked = {k: torch.from_numpy(v)[None] for k, v in targets.items()}
    result = model.post_process(model.outputs_from_targets(stacked), [(1.0, 1.0)])[0]
    assert len(result["polygons"]) == 1 and len(result["polygons"][0]) > 8
    found = Polygon(result["polygons"][0]).buffer(0)
    assert found.intersection(Polygon(band)).area / found.union(Polygon(band)).area > 0.8
    canvas = np.zeros((192, 256, 3), np.uint8)
    drawn = draw_polygons(canvas, result["polygons"], result["scores"])
    assert drawn.any() and not drawn[146, 128].any()  # the outline is drawn, the middle of the band is not filled
