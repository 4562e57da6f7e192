"""DBNet's loss equals MMOCR's DBModuleLoss; the image processor resizes, normalises and pads as MMOCR does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from polygon_cases import random_polygons

from freereal_hf import DBNetConfig, DBNetForTextDetection, TextDetectionImageProcessor
from freereal_hf.image_processing import keep_ratio_size, to_rgb_array

MMOCR_LOSS = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[2])
import mmocr_lite
from mmocr.utils import register_all_modules
register_all_modules()
from mmocr.models.textdet.module_losses import DBModuleLoss
d = np.load(sys.argv[1])
t = {k: torch.from_numpy(d[k]) for k in d.files}
loss = DBModuleLoss()
out = dict(loss_prob=loss.weight_prob * loss.loss_prob(t["prob_logits"], t["shrink"], t["shrink_mask"]),
           loss_thr=loss.weight_thr * loss.loss_thr(t["thr"], t["gt_thr"], t["thr_mask"]),
           loss_db=loss.loss_db(t["binary"], t["shrink"], t["shrink_mask"]))
print(json.dumps({k: float(v) for k, v in out.items()}))
"""


@pytest.mark.mmocr
def test_loss_equals_mmocr_db_module_loss(mmocr, tmp_path):
    from mmocr_reference import tool_dir

    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=32, neck_out_channels=8)).train()
    targets = [model.build_targets(*random_polygons(rng, 64, 96, 6), (64, 96)) for _ in range(2)]
    labels = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
    out = model(torch.randn(2, 3, 64, 96), labels=labels)
    out.loss.backward()
    assert model.det_head.binarize[0].weight.grad.abs().sum() > 0
    np.savez(tmp_path / "maps.npz", prob_logits=out.prob_logits.detach().numpy(), thr=out.thr.detach().numpy(),
             binary=out.binary.detach().numpy(), shrink=labels["shrink_map"].numpy().astype(np.float32),  # MMOCR's dtype
             shrink_mask=labels["shrink_mask"].numpy(), gt_thr=labels["threshold_map"].numpy(),
             thr_mask=labels["threshold_mask"].numpy())
    reference = json.loads(mmocr.python_code(MMOCR_LOSS, str(tmp_path / "maps.npz"), str(tool_dir())).splitlines()[-1])
    for key in ("loss_prob", "loss_thr", "loss_db"):
        assert abs(out[key].item() - reference[key]) <= 1e-5 * max(1.0, abs(reference[key])), key
    assert abs(out.loss.item() - sum(reference.values())) <= 1e-4


def test_loss_without_text_is_finite_and_learns_background():
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8)).train()
    labels = {k: torch.from_numpy(v)[None] for k, v in model.build_targets([], [], (64, 64)).items()}
    out = model(torch.randn(1, 3, 64, 64), labels=labels)
    assert torch.isfinite(out.loss)
    assert out.loss_prob.item() == 0.0  # OHEM takes no negatives without positives, as MMOCR


def test_missing_labels_are_named():
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8))
    with pytest.raises(KeyError, match="threshold_map"):
        model.eval()(torch.randn(1, 3, 32, 32), labels={"shrink_map": torch.zeros(1, 32, 32),
                                                 "shrink_mask": torch.ones(1, 32, 32)})


def test_targets_skip_degenerate_polygons_without_crashing():
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8))
    polys = [np.array([[1, 1], [5, 5]]), np.array([[0, 0], [np.nan, 3], [4, 4]]), np.zeros((0, 2)),
             np.array([[10, 10], [50, 50], [50, 10], [10, 50]]),  # self-intersecting bow tie
             np.array([[5, 20], [60, 20], [60, 45], [5, 45]])]
    t = model.build_targets(polys, [False] * 5, (64, 64))
    assert t["shrink_map"].sum() > 0 and set(np.unique(t["shrink_mask"])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="ignore flags"):
        model.build_targets(polys, [False], (64, 64))


@pytest.mark.parametrize("hw,scale,expected", [((480, 640), (1333, 736), (736, 981)),
                                               ((1000, 200), (1333, 736), (1333, 267)),
                                               ((720, 1280), (4068, 1024), (1024, 1820))])
def test_keep_ratio_size_follows_mmcv(hw, scale, expected):
    # mmcv.rescale_size: factor = min(long / max(h, w), short / min(h, w)), sizes rounded half up
    assert keep_ratio_size(*hw, scale=scale) == expected


def test_processor_normalises_pads_and_reports_scale():
    processor = TextDetectionImageProcessor(scale=None, long_side=100)
    image = np.full((30, 50, 3), (123, 116, 104), np.uint8)
    batch = processor([image, np.zeros((50, 20, 3), np.uint8)])
    assert batch["pixel_values"].shape == (2, 3, 128, 128)  # 60 x 100 and 100 x 40, padded to 32
    np.testing.assert_allclose(batch["scale_factors"].numpy(), [[2.0, 2.0], [2.0, 2.0]])
    first = batch["pixel_values"][0]
    assert first[:, :60, :100].abs().max() < 0.02  # the image is the mean colour
    assert first[:, 60:, :].abs().max() == 0 and first[:, :, 100:].abs().max() == 0  # zero padding
    np.testing.assert_allclose(batch["original_sizes"].numpy(), [[30, 50], [50, 20]])


def test_processor_table_lookup_equals_the_arithmetic_bit_for_bit():
    """The processor normalises through a per-channel table of the 256 uint8 values; every pixel must equal
    ``(resized.astype(float32) - mean) / std`` computed directly in float32 (MMOCR's data preprocessor), for
    MMOCR's and other statistics, several sizes in one padded batch, and a grayscale and a 16-bit image."""
    import cv2

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (37, 61, 3), np.uint8), rng.integers(0, 256, (90, 45), np.uint8),
              rng.integers(0, 65536, (50, 50, 3), np.uint16)]
    for mean, std in ((None, None), ((10.5, 200.25, 0.0), (1.0, 3.3, 255.0))):
        kwargs = {} if mean is None else {"image_mean": list(mean), "image_std": list(std)}
        processor = TextDetectionImageProcessor(scale=None, long_side=96, **kwargs)
        batch = processor(images, return_tensors="np")["pixel_values"]
        m = np.asarray(processor.image_mean, np.float32)
        std = np.asarray(processor.image_std, np.float32)
        for i, image in enumerate(images):
            rgb = to_rgb_array(image)
            nh, nw = processor.resized_size(*rgb.shape[:2])
            expected = (cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32) - m) / std
            np.testing.assert_array_equal(batch[i, :, :nh, :nw], expected.transpose(2, 0, 1))
            assert not batch[i, :, nh:, :].any() and not batch[i, :, :, nw:].any()
            if mean is None:  # training normalises the same way, from the uint8 pixels its loaders send
                from freereal_hf.data.transforms import normalize_pixels, to_pixels

                resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
                np.testing.assert_array_equal(normalize_pixels(to_pixels(resized)).numpy(), batch[i, :, :nh, :nw])


def test_to_rgb_array_accepts_grayscale_rgba_16bit_and_rejects_nonsense():
    assert to_rgb_array(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_array(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_array(np.full((4, 5, 3), 65535, np.uint16)).max() == 255
    assert to_rgb_array(torch.ones(3, 4, 5)).max() == 255
    with pytest.raises(ValueError, match="H x W x 3"):
        to_rgb_array(np.zeros((4, 5, 7), np.uint8))


def test_post_process_text_detection_returns_original_pixels():
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8)).eval()
    processor = TextDetectionImageProcessor(scale=None, long_side=128)
    inputs = processor(np.zeros((64, 96, 3), np.uint8))
    prob = torch.zeros(1, *inputs["pixel_values"].shape[2:])
    prob[0, 40:80, 20:100] = 0.9  # a text region in resized pixels (scale 4/3)
    out = type(model(inputs["pixel_values"]))(prob=prob)
    result = processor.post_process_text_detection(out, target_sizes=[(64, 96)])[0]
    assert len(result["polygons"]) == 1 and result["scores"][0] == pytest.approx(0.9, abs=1e-4)
    xs, ys = result["polygons"][0][:, 0], result["polygons"][0][:, 1]
    # contour x 20..99, y 40..79; unclip distance = area * 1.5 / perimeter = 3200 * 1.5 / 240 = 20;
    # then divided by the scale 4/3 (x 0..119 -> 0..89.25, y 20..99 -> 15..74.25)
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()], [0, 15, 89.25, 74.25], atol=0.76)


@pytest.mark.parametrize("mode", ["quad", "poly"])
def test_post_process_of_empty_noisy_and_nan_maps(mode):
    """No map crashes post-processing, and no region comes back without a real score."""
    from freereal_hf.models.dbnet import dbnet_post_process

    empty = {"polygons": [], "scores": []}
    assert dbnet_post_process(np.zeros((48, 64), np.float32), text_repr_type=mode) == empty
    noise = np.zeros((48, 64), np.float32)
    noise[::4, ::5] = 0.9  # single pixels: contours of one point
    assert dbnet_post_process(noise, text_repr_type=mode) == empty
    text = np.zeros((48, 64), np.float32)
    text[10:30, 8:50] = 0.8
    result = dbnet_post_process(text, text_repr_type=mode)
    assert len(result["polygons"]) == 1 and result["scores"][0] == pytest.approx(0.8, abs=1e-6)
    text[20, 20] = np.nan  # a NaN probability inside the region: it has no score, so no detection
    assert dbnet_post_process(text, text_repr_type=mode) == empty
    assert dbnet_post_process(np.full((48, 64), np.nan, np.float32), text_repr_type=mode) == empty
