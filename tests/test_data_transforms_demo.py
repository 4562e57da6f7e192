"""Polygon-aware transforms keep pixels and polygons aligned; the demo data is deterministic and usable."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from freereal_hf.data import FEATURES, AugmentConfig, TrainTransform, apply_geometry, sample_geometry, training_view
from freereal_hf.data.demo import demo_dataset, demo_records, render_sample
from freereal_hf.data.transforms import color_jitter, load_sample, normalize_batch, normalize_pixels, to_pixels
from freereal_hf.image_processing import MMOCR_MEAN, MMOCR_STD
from freereal_hf.models import kernels
from freereal_hf.models.dbnet.targets_dbnet import dbnet_targets
from freereal_hf.models.panet import panet_targets
from freereal_hf.models.psenet import psenet_targets


def _mask(polygons, h, w) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for p in polygons:
        # pixel centres inside the polygon: shift the corner-based coordinates by half a pixel
        cv2.fillPoly(m, [np.round((np.asarray(p) - 0.5) * 16).astype(np.int32)], 1, shift=4)
    return m.astype(bool)


@pytest.mark.parametrize("seed", range(8))
def test_geometry_moves_pixels_and_polygons_together(seed):
    rng = np.random.default_rng(seed)
    h, w = 180, 260
    polygons = [np.array([[20, 30], [120, 40], [110, 90], [25, 80]], np.float32),
                np.array([[150, 100], [240, 110], [230, 170], [160, 160], [140, 130]], np.float32)]
    image = np.repeat(_mask(polygons, h, w)[..., None] * np.uint8(255), 3, axis=2)
    cfg = AugmentConfig(size=192, scale_range=(0.5, 2.0), rotate_degrees=10, flip_prob=0.5)
    geometry = sample_geometry(rng, h, w, polygons, [False, False], cfg)
    out = apply_geometry({"image": image, "polygons": polygons, "ignore": [False, False],
                          "char_quads": np.asarray(polygons[0][None]), "char_word": np.array([0])}, geometry)
    assert out["image"].shape == (192, 192, 3)
    warped = out["image"][..., 0] > 127
    drawn = _mask(out["polygons"], 192, 192)
    assert drawn.sum() > 200  # the crop keeps text
    iou = (warped & drawn).sum() / (warped | drawn).sum()
    assert iou > 0.93, iou
    assert np.all((np.concatenate(out["polygons"]) >= -1e-3) & (np.concatenate(out["polygons"]) <= 192 + 1e-3))


def test_flip_and_crop_are_exact():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 5:15] = 255
    poly = np.array([[5, 10], [15, 10], [15, 20], [5, 20]], np.float32)
    cfg = AugmentConfig(size=64, scale_range=(1, 1), rotate_degrees=0, flip_prob=1.0, keep_text_prob=0)
    out = apply_geometry({"image": image, "polygons": [poly], "ignore": [False]},
                         sample_geometry(np.random.default_rng(0), 40, 60, [poly], None, cfg))
    p = out["polygons"][0]
    x0, y0 = p.min(0).astype(int)
    x1, y1 = p.max(0).astype(int)
    assert (x1 - x0, y1 - y0) == (10, 10)
    assert (out["image"][y0:y1, x0:x1] == 255).all() and out["image"].sum() == 255 * 3 * 100


def test_colour_jitter_changes_colours_only():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    out = color_jitter(img, np.random.default_rng(1), brightness=0.3, contrast=0.3, saturation=0.5, hue=0.1)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert np.array_equal(color_jitter(img, np.random.default_rng(1)), img)


@pytest.mark.parametrize("op", ["brightness", "contrast", "saturation"])
def test_colour_jitter_in_uint8_follows_the_float_formula(op):
    """Each step alone, in uint8 with lookup tables, is the float formula rounded (torchvision's meanings)."""
    img = np.random.default_rng(0).integers(0, 256, (24, 40, 3)).astype(np.uint8)
    for seed in range(4):
        out = color_jitter(img, np.random.default_rng(seed), **{op: 0.6}).astype(np.float64)
        f = np.random.default_rng(seed).uniform(0.4, 1.6)  # the factor color_jitter drew
        x = img.astype(np.float64)
        centre = {"brightness": 0.0, "contrast": x.mean(), "saturation": x.mean(axis=2, keepdims=True)}[op]
        expected = np.clip((x - centre) * f + centre, 0, 255)
        assert np.abs(out - expected).max() <= 1.5, (op, seed)


def test_colour_jitter_hue_turns_the_hue_wheel():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 200  # pure red
    out = color_jitter(img, np.random.default_rng(0), hue=0.5)
    shift = round(np.random.default_rng(0).uniform(-0.5, 0.5) * 180)
    hue = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)[..., 0].astype(int)
    assert (np.abs(hue - shift % 180) <= 1).all() and out.max() == 200


def test_strong_view_noise_is_gaussian_with_the_drawn_std():
    from freereal_hf.glyphmix.views import StrongAugment

    plain = dict(brightness=0, contrast=0, saturation=0, hue=0, blur_prob=0, grayscale_prob=0, jpeg_prob=0)
    img = np.full((96, 96, 3), 128, np.uint8)
    noise = StrongAugment(**plain, noise_prob=1, noise_std=(12, 12))(img, np.random.default_rng(0)).astype(float) - 128
    assert abs(noise.mean()) < 0.3 and abs(noise.std() - 12) < 0.3
    assert abs((np.abs(noise) <= 12).mean() - 0.683) < 0.02  # one sigma holds 68 %


def test_train_transform_is_deterministic_per_key_and_epoch_and_survives_corrupt_images():
    records = demo_records("synthetic", 3, seed=0, size=(128, 160))
    records[2]["image"] = {"bytes": b"\x89PNG broken", "path": None}
    ds = Dataset.from_list(records, features=FEATURES)
    transform = TrainTransform(lambda p, i, s: dbnet_targets(p, i, s), AugmentConfig(size=128), seed=3)
    view = training_view(ds, transform)
    a, b = view[0], view[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["shrink_map"].sum() > 0 and a["pixel_values"].shape == (3, 128, 128)
    assert a["pixel_values"].dtype == torch.uint8  # a quarter of float32's bytes through the loader's workers
    transform.epoch = 1
    assert not np.array_equal(view[0]["pixel_values"], a["pixel_values"])
    broken = view[2]
    assert broken["shrink_mask"].sum() == 0 and broken["threshold_mask"].sum() == 0
    assert broken["pixel_values"].sum() == 0
    assert transform.report.counts["training images skipped"] == 1
    assert all(broken[k].dtype == a[k].dtype for k in a)  # the stand-in collates with the images around it


def test_a_corrupt_image_after_a_good_one_collates_in_a_loader_worker():
    """A worker collates into shared memory of the first sample's dtypes: a stand-in of other dtypes (float32
    zeros once) made ``torch.cat`` fail there and ended the run."""
    records = demo_records("synthetic", 2, seed=0, size=(96, 128))
    records[1]["image"] = {"bytes": b"\x89PNG broken", "path": None}
    view = training_view(Dataset.from_list(records, features=FEATURES),
                         TrainTransform(panet_targets, AugmentConfig(size=64)))
    batch = next(iter(DataLoader(view, batch_size=2, num_workers=1)))
    assert batch["text_instances"].dtype == torch.int16 and batch["mask"].dtype == torch.uint8
    assert batch["text_instances"][0].max() > 0 and batch["mask"][1].sum() == 0


def test_labels_the_targets_refuse_are_skipped_and_counted(monkeypatch, caplog):
    """More polygons than int16 instance ids hold (here the limit lowered to 0) skip the image, named, instead
    of ending the run or wrapping ids."""
    monkeypatch.setattr(kernels, "MAX_INSTANCES", 0)
    record = demo_records("synthetic", 1, seed=0, size=(96, 128))[0]
    transform = TrainTransform(panet_targets, AugmentConfig(size=64))
    out = transform.one(record)
    assert out["mask"].sum() == 0 and out["text_instances"].sum() == 0 and out["text_instances"].dtype == torch.int16
    assert transform.report.counts["training images skipped (targets)"] == 1 and record["key"] in caplog.text
    with pytest.raises(ValueError, match="at most 0"):
        panet_targets(record["polygons"], None, (64, 64))
    assert psenet_targets(record["polygons"], None, (64, 64))["text"].any()  # binary maps have no such limit


def test_demo_data_is_deterministic_and_consistent():
    a = demo_records("real-like", 3, seed=5)
    b = demo_records("real-like", 3, seed=5)
    assert [r["image"]["bytes"] for r in a] == [r["image"]["bytes"] for r in b]
    assert demo_records("real-like", 1, seed=6)[0]["image"]["bytes"] != a[0]["image"]["bytes"]
    for domain in ("synthetic", "real-like"):
        s = render_sample(np.random.default_rng(0), domain, (192, 256))
        assert s.image.shape == (192, 256, 3) and len(s.polygons) == len(s.texts) >= 1
        assert len(s.char_quads) == len(s.char_word) == sum(len(t) for t in s.texts)
        # every stroke pixel lies in its word polygon, and each word polygon holds strokes
        words = _mask(s.polygons, 192, 256)
        dilated = cv2.dilate(words.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert (s.stroke_mask & ~dilated).sum() <= 0.01 * s.stroke_mask.sum()
        assert all((_mask([p], 192, 256) & s.stroke_mask).any() for p in s.polygons)
    ds = demo_dataset("synthetic", 2)
    assert ds.features == FEATURES and len(ds[0]["char_polygons"]) == len(ds[0]["char_word"])
    sample = load_sample(ds.cast_column("image", ds.features["image"].__class__(decode=False))[0])
    assert sample["image"].dtype == np.uint8 and sample["char_quads"].shape[1:] == (4, 2)


def test_pixels_are_normalised_on_the_device_as_mmocrs_preprocessor_does():
    # every level of every channel, in a batch of two: the same bits as MMOCR's (x - mean) / std in float32
    levels = torch.arange(256, dtype=torch.uint8).repeat(2, 3, 4, 1)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in (MMOCR_MEAN, MMOCR_STD))
    assert torch.equal(normalize_pixels(levels), (levels.float() - mean) / std)
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    pixels = to_pixels(image)
    assert pixels.shape == (3, 5, 7) and torch.equal(pixels.permute(1, 2, 0), torch.from_numpy(image))
    batch = normalize_batch({"weak_pixel_values": pixels[None], "valid": torch.ones(1)}, torch.channels_last)
    assert batch["weak_pixel_values"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch["weak_pixel_values"], normalize_pixels(pixels[None])) and torch.equal(batch["valid"],
                                                                                                 torch.ones(1))
    with pytest.raises(ValueError, match="uint8"):
        normalize_pixels(pixels.float())


def test_the_loader_benchmark_reports_per_sample_and_delivered_rates(capsys):
    """scripts/benchmark_loaders.py at 64 pixels: per-sample rates of both streams, where the time goes, and the
    rates the training DataLoader delivers with a worker; bad arguments refused first."""
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        from benchmark_loaders import main as bench
    finally:
        sys.path.pop(0)
    for bad in (["--workers", "-1"], ["--batch-size", "0"], ["--images", "3", "--batch-size", "2"], ["--crop", "50"]):
        with pytest.raises(SystemExit) as exit_info:
            bench(bad)
        assert exit_info.value.code == 2, bad
    capsys.readouterr()
    bench(["--images", "6", "--size", "96", "--crop", "64", "--repeat", "1", "--workers", "1", "--batch-size", "2"])
    out = capsys.readouterr().out
    for stream in ("real (weak + strong view)", "synthetic (targets + glyph mask)"):
        assert float(re.search(rf"\| {re.escape(stream)} \| ([\d.]+) \|", out).group(1)) > 0
    assert "| to uint8 tensors |" in out and "| targets |" in out
    delivered = dict(re.findall(r"^\| (real|synthetic) \| ([\d.]+) \| [\d.]+ \|$", out, re.M))
    assert set(delivered) == {"real", "synthetic"} and all(float(v) > 0 for v in delivered.values())
