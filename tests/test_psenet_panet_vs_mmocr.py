"""PSENet and PANet equal MMOCR 1.0.1's, checked by running MMOCR (the reference venv) beside ours: forward in
both conversion directions, targets, post-processing, every loss part, and MMOCR's inferencer on our export."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from polygon_cases import kernel_logits, random_polygons
from shapely.geometry import Polygon

from freereal_hf import config_from_preset
from freereal_hf.convert.cli import main as convert_main
from freereal_hf.models.kernels import kernel_targets
from freereal_hf.models.panet import panet_post_process, panet_targets
from freereal_hf.models.psenet import psenet_post_process, psenet_targets

pytestmark = pytest.mark.mmocr


def _input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 3, 64, 96)).astype(np.float32)


def _logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).logits.numpy()


# panet_r18_ctw1500 has panet_r18's network (only its kernel ratio and output differ): its targets are checked
@pytest.mark.parametrize("preset", ["psenet_r50", "psenet_r50_ctw1500", "panet_r18"])
def test_mmocr_checkpoint_to_ours_same_logits(preset, mmocr, tmp_path):
    from transformers import AutoModel

    ckpt = mmocr.checkpoint(preset, seed=3)
    args = ["to-hf", str(ckpt), str(tmp_path / "hf"), "--model", preset]
    assert convert_main(args) == 0  # freereal-convert, in process
    model = AutoModel.from_pretrained(tmp_path / "hf")
    assert model.config.preset == preset
    x = _input(3)
    reference, _ = mmocr.forward(preset, ckpt, x)
    ours = _logits(model, x)
    channels = 7 if preset.startswith("psenet") else 6
    assert ours.shape == reference["logits"].shape == (2, channels, 16, 24)
    assert np.abs(ours - reference["logits"]).max() <= 1e-4


@pytest.mark.parametrize("preset", ["psenet_r50", "panet_r18"])
def test_ours_to_mmocr_checkpoint_same_logits(preset, mmocr, tmp_path):
    from transformers import AutoModel

    torch.manual_seed(4)
    model = AutoModel.from_config(config_from_preset(preset))
    with torch.no_grad():  # non-trivial BN statistics, so that every tensor matters
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
    model.save_pretrained(tmp_path / "hf")
    args = ["to-mmocr", str(tmp_path / "hf"), str(tmp_path / "ours.pth")]
    assert convert_main(args) == 0  # freereal-convert, in process
    x = _input(4)
    reference, _ = mmocr.forward(preset, tmp_path / "ours.pth", x)
    assert np.abs(_logits(model, x) - reference["logits"]).max() <= 1e-4


@pytest.mark.parametrize("seed", range(2))
def test_targets_equal_mmocr(seed, mmocr):
    rng = np.random.default_rng(300 + seed)
    h, w = (160, 224) if seed % 2 else (200, 200)
    polygons, ignored = random_polygons(rng, h, w, 40)
    reference, _ = mmocr.targets("psenet_r50", h, w, polygons, ignored)
    ours = psenet_targets(polygons, ignored, (h, w))
    np.testing.assert_array_equal(ours["text"], reference["kernels"][0, 0] > 0.5)
    np.testing.assert_array_equal(ours["kernels"], reference["kernels"][1:, 0] > 0.5)
    np.testing.assert_array_equal(ours["mask"], reference["mask"][0])
    assert ours["kernels"][-1].sum() > 0 and (ours["mask"] == 0).any()
    for preset, ratio in (("panet_r18", 0.5), ("panet_r18_ctw1500", 0.7)):
        reference, _ = mmocr.targets(preset, h, w, polygons, ignored)
        ours = panet_targets(polygons, ignored, (h, w), ratio)
        np.testing.assert_array_equal(ours["text_instances"], reference["kernels"][0, 0])  # instance ids too
        np.testing.assert_array_equal(ours["kernel_instances"], reference["kernels"][1, 0])
        np.testing.assert_array_equal(ours["mask"], reference["mask"][0])
        assert len(np.unique(ours["text_instances"])) > 10


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union else 1.0


def _same_detections(ours: dict, reference: dict, at_least: int) -> None:
    assert len(ours["polygons"]) == len(reference["polygons"]) >= at_least
    for mine, theirs in zip(ours["polygons"], reference["polygons"]):
        assert _iou(mine, np.asarray(theirs).reshape(-1, 2)) > 0.99
    np.testing.assert_allclose(ours["scores"], reference["scores"], atol=1e-5)


# MMOCR's configs: PSENet IC15 quad, CTW1500 poly; PANet quad in both (its CTW1500 config keeps the base's
# 'quad'; our panet_r18_ctw1500 preset outputs polygons, the same contour code PSENet's CTW1500 check covers)
@pytest.mark.parametrize("preset,repr_type,seed,scale", [
    ("psenet_r50", "quad", 0, (1.0, 1.0)), ("psenet_r50_ctw1500", "poly", 1, (1.5, 1.25)),
    ("psenet_r50_ctw1500", "poly", 2, (0.8, 0.8))])
def test_pse_post_process_equals_mmocr(preset, repr_type, seed, scale, mmocr):
    logits = kernel_logits(np.random.default_rng(400 + seed), 64, 80, 12, 6)
    reference, _ = mmocr.postprocess(preset, logits, scale)
    prob = torch.sigmoid(torch.from_numpy(logits)).numpy()
    _same_detections(psenet_post_process(prob, scale, text_repr_type=repr_type), reference, 5)


@pytest.mark.parametrize("preset,seed,scale", [("panet_r18", 0, (1.0, 1.0)), ("panet_r18", 1, (1.5, 1.25)),
                                               ("panet_r18_ctw1500", 2, (2.0, 2.0))])
def test_pan_post_process_equals_mmocr(preset, seed, scale, mmocr):
    logits = kernel_logits(np.random.default_rng(500 + seed), 64, 80, 12, 1, 4)
    reference, _ = mmocr.postprocess(preset, logits, scale)
    maps = logits.copy()
    maps[:2] = torch.sigmoid(torch.from_numpy(logits[:2])).numpy()
    _same_detections(panet_post_process(maps, scale, text_repr_type="quad"), reference, 2)


MMOCR_LOSS = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[2])
import mmocr_lite
from mmocr.utils import register_all_modules
register_all_modules()
from mmengine.structures import InstanceData
from mmocr.structures import TextDetDataSample
from mmocr.models.textdet.module_losses import PANModuleLoss, PSEModuleLoss
spec = json.load(open(sys.argv[1] + ".json"))
preds = torch.from_numpy(np.load(sys.argv[1] + ".npy"))
samples = []
for polys, ignored in zip(spec["polygons"], spec["ignored"]):
    ds = TextDetDataSample()
    ds.set_metainfo(dict(img_shape=tuple(spec["size"])))
    inst = InstanceData()
    inst.polygons = [np.asarray(p, np.float32) for p in polys]
    inst.ignored = torch.tensor(ignored, dtype=torch.bool)
    ds.gt_instances = inst
    samples.append(ds)
loss = PSEModuleLoss() if spec["kind"] == "pse" else PANModuleLoss(shrink_ratio=(1.0, spec["ratio"]))
print(json.dumps({k: float(v) for k, v in loss(preds, samples).items()}))
"""


@pytest.mark.parametrize("preset", ["psenet_r50", "panet_r18", "panet_r18_ctw1500"])
def test_loss_equals_mmocr_module_loss(preset, mmocr, tmp_path):
    from transformers import AutoModel

    from mmocr_reference import tool_dir

    rng = np.random.default_rng(6)
    torch.manual_seed(6)
    model = AutoModel.from_config(config_from_preset(preset)).train()
    size = (64, 96)
    cases = [random_polygons(rng, *size, 8) for _ in range(2)]
    targets = [model.build_targets(p, i, size) for p, i in cases]
    labels = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
    out = model(torch.randn(2, 3, *size), labels=labels)
    out.loss.backward()
    assert model.det_head.conv2.weight.grad.abs().sum() > 0
    np.save(tmp_path / "case.npy", out.logits.detach().numpy())
    (tmp_path / "case.json").write_text(json.dumps({
        "kind": preset[:3], "ratio": getattr(model.config, "kernel_ratio", 0.5), "size": list(size),
        "polygons": [[np.asarray(p).tolist() for p in polys] for polys, _ in cases],
        "ignored": [list(map(bool, ign)) for _, ign in cases]}))
    reference = json.loads(mmocr.python_code(MMOCR_LOSS, str(tmp_path / "case"), str(tool_dir())).splitlines()[-1])
    parts = [k for k in out.keys() if k.startswith("loss_")]
    assert sorted(parts) == sorted(reference)
    for key in parts:
        assert abs(out[key].item() - reference[key]) <= 1e-5 * max(1.0, abs(reference[key])), key
        assert reference[key] > 0, key  # the case exercises every part


@pytest.mark.parametrize("preset", ["psenet_r50_ctw1500", "panet_r18"])
def test_exported_checkpoint_runs_in_mmocr_inferencer_alone(preset, mmocr, tmp_path):
    """The exported .pth carries its MMOCR config: MMOCR's inferencer needs nothing else and finds what we find."""
    from transformers import AutoModel

    torch.manual_seed(0)
    config = config_from_preset(preset, test_scale=[320, 320]) if preset.startswith("psenet") else \
        config_from_preset(preset, test_short_side=160)
    model = AutoModel.from_config(config).eval()
    with torch.no_grad():  # a head that fires on everything (text and every kernel): the whole image is text
        model.det_head.conv2.weight.zero_()
        model.det_head.conv2.bias.zero_()
        model.det_head.conv2.bias[:7 if preset.startswith("psenet") else 2].fill_(3.0)
    ours, reference = mmocr.compare_inferencer(model, np.full((120, 200, 3), 90, np.uint8))
    assert len(reference["scores"]) >= 1
    assert len(ours["scores"]) == len(reference["scores"])
    np.testing.assert_allclose(sorted(ours["scores"]), sorted(reference["scores"]), atol=1e-4)
    for mine, theirs in zip(ours["polygons"], reference["polygons"]):
        assert _iou(mine, np.asarray(theirs).reshape(-1, 2)) > 0.95


def _maps(polygons: list, ratios: tuple = (1.0, 0.5)) -> np.ndarray:
    return kernel_targets(polygons, [False] * len(polygons), (160, 160), ratios, 20)[0]


def test_kernel_targets_leave_out_unusable_polygons_and_keep_the_others_ids():
    """Polygons with a non-finite coordinate or under 3 points are left out of every kernel, wherever they stand
    in the list (the maps are built from all polygons at once, then sliced); every other polygon keeps its index
    + 1 as id, and its pixels are those it gets when drawn alone. The mask leaves out ignored polygons with no
    points or a non-finite one, and draws the others as MMOCR does (``cv2.fillPoly`` of the int32 points: a
    two-point polygon is a line)."""
    rng = np.random.default_rng(7)
    polygons, _ = random_polygons(rng, 160, 160, 12)
    bad = {2: np.array([[10, 10], [np.nan, 20], [30, 40]], np.float32), 5: np.array([[1, 1], [50, 50]], np.float32),
           9: np.array([[3, 3], [np.inf, 3], [9, 9], [3, 9]], np.float64), 11: np.zeros((0, 2), np.float32)}
    mixed = [bad.get(i, p) for i, p in enumerate(polygons)]
    maps = _maps(mixed)
    for i in bad:
        assert not (maps == i + 1).any()
    expected = np.zeros_like(maps)
    for i, p in enumerate(mixed):
        if i not in bad:
            alone = _maps([p])
            expected[alone > 0] = i + 1
    np.testing.assert_array_equal(maps, expected)
    assert len(np.unique(maps[0])) == 1 + len(polygons) - len(bad)
    flat = [p.reshape(-1) for p in mixed if len(p) > 2 and np.isfinite(p).all()]
    assert _maps(flat, (1.0,)).any() and _maps([]).shape == (2, 160, 160)
    ignore = [i in (1, 2, 5, 9, 10, 11) for i in range(len(mixed))]
    maps_again, mask = kernel_targets(mixed, ignore, (160, 160), (1.0, 0.5), 20)
    reference = np.ones((160, 160), np.uint8)
    for i in (1, 5, 10):
        cv2.fillPoly(reference, [mixed[i].astype(np.int32).reshape(-1, 2)], 0)
    np.testing.assert_array_equal(mask, reference)
    np.testing.assert_array_equal(maps_again, maps)  # ignored polygons are drawn too
    assert (mask == 0).sum() > 100 and (mask[1:51, 1:51].diagonal() == 0).all()
    assert (kernel_targets([], [], (160, 160), (1.0,), 20)[1] == 1).all()
    with pytest.raises(ValueError, match="12 polygons but 11 ignore flags"):
        kernel_targets(mixed, ignore[:-1], (160, 160), (1.0, 0.5), 20)
