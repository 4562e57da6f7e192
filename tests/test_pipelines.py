"""transformers pipelines: ``object-detection`` (boxes) and ``text-detection`` (polygons) for every registered
detector, batched, from a Hub cache offline, and as remote code where freereal_hf is not installed. Each result
is checked against the direct path: image processor -> model -> the config's post-processing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hub_cache import populate_hub_cache, run_without_package
from PIL import Image
from transformers import pipeline

from freereal_hf import DETECTORS, TextDetectionImageProcessor, config_from_preset
from freereal_hf.training.evaluation import detect

# the first preset of every detector, tested at a small test size
PRESETS = [spec.presets[0] for spec in DETECTORS.values()]


def _saved(preset: str, folder, seed: int = 0, **overrides):
    """A random detector of ``preset`` with a small test resize, saved with its image processor."""
    size = {"test_short_side": 96} if "panet" in preset else {"test_scale": [128, 96]}
    config = config_from_preset(preset, **size, **overrides)
    torch.manual_seed(seed)
    model = DETECTORS[config.model_type].model_class(config).eval()
    if preset.startswith("psenet"):  # a random PSENet's logits are in the hundreds: no kernels pass; tame them
        with torch.no_grad():
            model.det_head.conv2.weight.mul_(1e-3)
            model.det_head.conv2.bias.fill_(0.5)
    model.save_pretrained(folder)
    TextDetectionImageProcessor.for_config(config).save_pretrained(folder)
    return model


def _images(seed: int = 0, sizes=((72, 96), (96, 80), (60, 60))) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for h, w in sizes:  # dark strokes on a light ground: a few blobs a random detector still answers to
        image = np.full((h, w, 3), 220, np.uint8)
        for _ in range(3):
            y, x = rng.integers(5, h - 15), rng.integers(5, w - 30)
            image[y:y + 8, x:x + 25] = rng.integers(0, 60, 3)
        images.append(np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8))
    return images


def _padded_batches(model, images, batch_size):
    """What the model gives for ``images`` in batches the image processor pads to their largest member."""
    from freereal_hf.training.evaluation import _forward

    processor = TextDetectionImageProcessor.for_config(model.config)
    results = []
    for start in range(0, len(images), batch_size):
        with torch.no_grad():
            inputs, outputs = _forward(model, images[start:start + batch_size], processor, torch.device("cpu"))
        results += model.post_process(outputs, inputs["scale_factors"].tolist())
    return results


def _direct(model, images, batch_size=1, **params):
    """Polygons and scores the library's own path gives (the config's post-processing, ``params`` over it)."""
    processor = TextDetectionImageProcessor.for_config(model.config)
    if not params:
        return detect(model, images, processor, batch_size=batch_size)
    results = []
    for image in images:
        inputs = processor(image, return_tensors="pt")
        with torch.no_grad():
            out = model(inputs["pixel_values"])
        results += processor.post_process_text_detection(out, [image.shape[:2]], config=model.config, **params)
    return results


def _as_lists(found):
    return [[(round(d["score"], 5), np.round(np.asarray(d["polygon"]), 3).tolist()) for d in image] for image in found]


def _expected_lists(results):
    return [[(round(float(s), 5), np.round(np.asarray(p, np.float64), 3).tolist()) for p, s in zip(r["polygons"], r["scores"])]
            for r in results]


@pytest.mark.parametrize("preset", PRESETS)
def test_object_detection_pipeline_gives_the_boxes_of_the_polygons(preset, tmp_path, capfd):
    model = _saved(preset, tmp_path)
    detector = pipeline("object-detection", model=str(tmp_path))
    assert "not supported for object-detection" not in capfd.readouterr().err  # transformers' false alarm
    images = _images()
    expected = _direct(model, images)
    assert sum(len(r["scores"]) for r in expected) > 0, "no detections: nothing would be compared"
    threshold = float(np.median(np.concatenate([r["scores"] for r in expected if len(r["scores"])])))
    for image, want in zip(images, expected):
        got = detector(Image.fromarray(image), threshold=threshold)
        keep = [i for i, s in enumerate(want["scores"]) if s >= threshold]
        assert len(got) == len(keep)
        for found, i in zip(got, keep):
            polygon = want["polygons"][i]
            assert found["label"] == "text"
            assert found["score"] == pytest.approx(float(want["scores"][i]), abs=1e-5)
            assert found["box"] == {"xmin": int(polygon[:, 0].min()), "ymin": int(polygon[:, 1].min()),
                                    "xmax": int(polygon[:, 0].max()), "ymax": int(polygon[:, 1].max())}
    same = _images(1, sizes=((64, 80),) * 2)
    if any(isinstance(v, tuple) for v in model(torch.zeros(1, 3, 64, 64)).values()):  # per-level outputs (FCENet)
        with pytest.raises(ValueError, match="cannot pass transformers' batch splitting"):
            detector([Image.fromarray(i) for i in same], batch_size=2, threshold=0.0)
        return
    # batched as transformers batches (images of one size): the library's batch of two, box for box
    got = detector([Image.fromarray(i) for i in same], batch_size=2, threshold=0.0)
    want = _direct(model, same, batch_size=2)
    assert [len(image) for image in got] == [len(r["scores"]) for r in want]
    assert [b["score"] for image in got for b in image] == pytest.approx(
        [float(s) for r in want for s in r["scores"]], abs=1e-5)


@pytest.mark.parametrize("preset", PRESETS)
def test_text_detection_pipeline_equals_the_direct_path_one_by_one_and_batched(preset, tmp_path):
    model = _saved(preset, tmp_path)
    detector = pipeline("text-detection", model=str(tmp_path))
    images = _images()
    pictures = [Image.fromarray(i) for i in images]
    one_by_one = detector(pictures)
    assert _as_lists(one_by_one) == _expected_lists(_direct(model, images))
    assert sum(map(len, one_by_one)) > 0
    # mixed sizes batched: padded as the image processor pads a batch (the library's detect would not pad them)
    batched = detector(pictures, batch_size=2)
    assert _as_lists(batched) == _expected_lists(_padded_batches(model, images, batch_size=2))
    # a batch of one size (no padding) and a generator of images
    same = _images(1, sizes=((64, 80),) * 3)
    expected = _expected_lists(_direct(model, same, batch_size=3))
    assert _as_lists(detector([Image.fromarray(i) for i in same], batch_size=3)) == expected
    assert _as_lists(detector((Image.fromarray(i) for i in same), batch_size=3)) == expected


def test_text_detection_pipeline_takes_post_processing_parameters(tmp_path):
    model = _saved("dbnet_r18", tmp_path)
    detector = pipeline("text-detection", model=str(tmp_path))
    image = _images()[0]
    field = model.config.score_field
    strict = {field: 0.6, "text_repr_type": "poly"}
    assert _as_lists([detector(Image.fromarray(image), **strict)]) == _expected_lists(_direct(model, [image], **strict))
    assert len(detector(Image.fromarray(image), **{field: 0.99})) <= len(detector(Image.fromarray(image)))
    with pytest.raises(ValueError, match="not post-processing parameters"):
        detector(Image.fromarray(image), score=0.5)


def test_text_detection_pipeline_from_the_hub_cache_offline(tmp_path):
    model = _saved("dbnet_r18", tmp_path / "repo", seed=2)
    populate_hub_cache(tmp_path / "cache", "freereal/dbnet-pipeline", tmp_path / "repo")
    image = _images()[1]
    np.save(tmp_path / "image.npy", image)
    (tmp_path / "expected.json").write_text(json.dumps(_expected_lists(_direct(model, [image]))))
    code = textwrap.dedent(f"""
        import json, numpy as np, freereal_hf
        from PIL import Image
        from transformers import pipeline
        found = pipeline("text-detection", model="freereal/dbnet-pipeline")(
            Image.fromarray(np.load({str(tmp_path / 'image.npy')!r})))
        got = [[(round(d["score"], 5), np.round(np.asarray(d["polygon"]), 3).tolist()) for d in found]]
        assert json.loads(json.dumps(got)) == json.loads(open({str(tmp_path / 'expected.json')!r}).read())
        print("ok", len(found))
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


@pytest.mark.parametrize("processor_first", [False, True])
def test_text_detection_pipeline_as_remote_code_without_the_package(processor_first, tmp_path):
    """Model and processor saved in either order: the repo carries the pipeline, the processor and the model."""
    config = config_from_preset("fcenet_r50", test_scale=[128, 96])
    torch.manual_seed(1)
    model = DETECTORS[config.model_type].model_class(config).eval()
    repo = tmp_path / "repo"
    type(model).register_for_auto_class("AutoModel")
    try:
        if processor_first:
            repo.mkdir()
            TextDetectionImageProcessor.for_config(config).save_pretrained(repo)
        model.save_pretrained(repo)
        if not processor_first:
            TextDetectionImageProcessor.for_config(config).save_pretrained(repo)
    finally:
        type(model)._auto_class = None
    saved = json.loads((repo / "config.json").read_text())
    assert saved["custom_pipelines"]["text-detection"]["impl"] == "pipelines.TextDetectionPipeline"
    assert json.loads((repo / "preprocessor_config.json").read_text())["auto_map"] == {
        "AutoImageProcessor": "image_processing.TextDetectionImageProcessor"}
    images = _images(3)
    np.save(tmp_path / "images.npy", np.stack([np.resize(i, (72, 96, 3)) for i in images]))
    stacked = list(np.load(tmp_path / "images.npy"))
    (tmp_path / "expected.json").write_text(json.dumps(_expected_lists(_direct(model, stacked, batch_size=2))))
    code = textwrap.dedent(f"""
        import json, numpy as np
        from PIL import Image
        from transformers import pipeline
        detector = pipeline("text-detection", model={str(repo)!r}, trust_remote_code=True)
        assert "freereal_hf" not in type(detector).__module__ + type(detector.model).__module__
        assert "freereal_hf" not in type(detector.image_processor).__module__
        images = [Image.fromarray(i) for i in np.load({str(tmp_path / 'images.npy')!r})]
        found = detector(images, batch_size=2)
        got = [[(round(d["score"], 5), np.round(np.asarray(d["polygon"]), 3).tolist()) for d in f] for f in found]
        assert json.loads(json.dumps(got)) == json.loads(open({str(tmp_path / 'expected.json')!r}).read())
        print("ok", sum(map(len, found)))
    """)
    proc = run_without_package(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_pad_size_lets_mixed_sizes_batch_in_the_object_detection_pipeline(tmp_path):
    """README's advice for object-detection batches of mixed sizes: a processor with a fixed pad_size."""
    model = _saved("dbnet_r18", tmp_path)
    processor = TextDetectionImageProcessor.for_config(model.config)
    padded = TextDetectionImageProcessor(**{**processor.to_dict(), "pad_size": [128, 128]})
    images = _images()  # 72 x 96, 96 x 80, 60 x 60: three different input sizes
    assert padded(images, return_tensors="pt")["pixel_values"].shape == (3, 3, 128, 128)
    with pytest.raises(ValueError, match="does not fit pad_size"):
        TextDetectionImageProcessor(**{**processor.to_dict(), "pad_size": [64, 64]})(images[0])
    with pytest.raises(ValueError, match="positive multiples of 32"):
        TextDetectionImageProcessor(pad_size=[100, 128])
    padded.save_pretrained(tmp_path)
    detector = pipeline("object-detection", model=str(tmp_path))
    got = detector([Image.fromarray(i) for i in images], batch_size=3, threshold=0.0)
    want = detect(model, images, padded, batch_size=3)  # the same fixed-size batch, through the library
    assert [len(image) for image in got] == [len(r["scores"]) for r in want]
    assert [b["score"] for image in got for b in image] == pytest.approx(
        [float(s) for r in want for s in r["scores"]], abs=1e-5)
