"""FCENet equals MMOCR 1.0.1's, checked by running MMOCR (the reference venv) beside ours: forward on every level
in both conversion directions (DCNv2 offsets and BN statistics included), targets per level, post-processing,
every loss part, and MMOCR's inferencer on our export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from polygon_cases import random_polygons
from shapely.geometry import Polygon

from freereal_hf import config_from_preset
from freereal_hf.convert.cli import main as convert_main
from freereal_hf.models.fcenet import fcenet_post_process, fcenet_targets

pytestmark = pytest.mark.mmocr


def _outputs(model, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    return [c.numpy() for c in out.cls_res], [r.numpy() for r in out.reg_res]


def _assert_same_levels(model, reference: dict, x: np.ndarray) -> None:
    cls, reg = _outputs(model, x)
    for level in range(3):
        theirs_cls, theirs_reg = reference[f"{level}.cls_res"], reference[f"{level}.reg_res"]
        assert cls[level].shape == theirs_cls.shape and reg[level].shape == theirs_reg.shape
        assert np.abs(cls[level] - theirs_cls).max() <= 1e-4, level
        assert np.abs(reg[level] - theirs_reg).max() <= 1e-4, level


@pytest.mark.parametrize("preset", ["fcenet_r50", "fcenet_r50_dcnv2"])  # the Total-Text preset has R50's network
def test_mmocr_checkpoint_to_ours_same_outputs(preset, mmocr, tmp_path):
    from transformers import AutoModel

    ckpt = mmocr.checkpoint(preset, seed=5)
    args = ["to-hf", str(ckpt), str(tmp_path / "hf"), "--model", preset]
    assert convert_main(args) == 0  # freereal-convert, in process
    model = AutoModel.from_pretrained(tmp_path / "hf")
    assert model.config.preset == preset
    x = np.random.default_rng(5).normal(size=(2, 3, 64, 96)).astype(np.float32)
    reference, _ = mmocr.forward(preset, ckpt, x)
    assert reference["0.cls_res"].shape == (2, 4, 8, 12) and reference["2.reg_res"].shape == (2, 22, 2, 3)
    _assert_same_levels(model, reference, x)


def test_ours_to_mmocr_checkpoint_same_outputs(mmocr, tmp_path):
    """DCNv2 with 2 deform groups: random offsets (not the zero init) and BN statistics, exported and run by MMOCR."""
    from transformers import AutoModel

    torch.manual_seed(6)
    model = AutoModel.from_config(config_from_preset("fcenet_r50_dcnv2"))
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif "conv_offset" in name:
                tensor.normal_(0, 0.02)
    model.save_pretrained(tmp_path / "hf")
    args = ["to-mmocr", str(tmp_path / "hf"), str(tmp_path / "ours.pth")]
    assert convert_main(args) == 0  # freereal-convert, in process
    x = np.random.default_rng(6).normal(size=(1, 3, 96, 64)).astype(np.float32)
    reference, _ = mmocr.forward("fcenet_r50_dcnv2", tmp_path / "ours.pth", x)
    _assert_same_levels(model, reference, x)


def polygon_case(seed: int, height: int, width: int, count: int) -> tuple[list, list]:
    """Random polygons of every kind and size (curved bands, stars, tiny boxes, border crossers). Outlines that
    collapse to one point in integer pixels are left out: MMOCR fails on them (we treat them as ignored)."""
    polygons, ignored = random_polygons(np.random.default_rng(seed), height, width, count)
    keep = [i for i, p in enumerate(polygons) if np.ptp(p.astype(np.int64), axis=0).sum() > 0]
    return [polygons[i] for i in keep], [ignored[i] for i in keep]


def _same_contour(ours: np.ndarray, theirs: np.ndarray, degree: int = 5) -> np.ndarray:
    """Per pixel (``C x h x w`` maps), whether the coefficients agree within 1e-4, or describe the same contour
    from another start point: MMOCR's start is the least-``y`` of the 8 points nearest the centre line, found with
    an unstable argsort, so an exactly symmetric outline (an axis-aligned box) may start at either tied point;
    a shifted start changes only the phases of ``c_j`` (``j != 0``)."""
    k = 2 * degree + 1
    close = (np.abs(ours - theirs) <= 1e-4).all(axis=0)
    zo, zt = ours[:k] + 1j * ours[k:], theirs[:k] + 1j * theirs[k:]
    same_shape = (np.abs(np.abs(zo) - np.abs(zt)) <= 1e-4).all(axis=0) & (np.abs(zo[degree] - zt[degree]) <= 1e-4)
    return close | same_shape


def many_vertex_polygons(rng: np.random.Generator, height: int, width: int, count: int) -> list[np.ndarray]:
    """Curved bands of 4 to 40 points a side and concave stars of 20 to 60 points (started anywhere), sized for
    every level: sidelines of 8 or more edges, where numpy sums pairwise, and ends that only TextSnake's scores
    decide, the places where the compiled targets must repeat MMOCR's floating-point order."""
    out = []
    for i in range(count):
        if i % 2:
            half = int(rng.integers(4, 41))
            t = np.linspace(0, 1, half)
            length = rng.uniform(0.15, 0.9) * width
            x0, y0 = rng.uniform(0, width - length), rng.uniform(0, height * 0.8)
            top = np.stack([x0 + length * t, y0 + rng.uniform(-0.2, 0.2) * height * np.sin(np.pi * t)], 1)
            poly = np.vstack([top, top[::-1] + [0, rng.uniform(6, 0.2 * height)]]) + rng.normal(0, 1.5, (2 * half, 2))
        else:
            n = int(rng.integers(10, 31))
            angles = np.sort(rng.uniform(0, 2 * np.pi, 2 * n))
            outer = rng.uniform(0.05, 0.45) * height
            radii = np.where(np.arange(2 * n) % 2 == 0, outer, outer * rng.uniform(0.3, 0.7, 2 * n))
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            poly = np.stack([cx + radii * np.cos(angles) * rng.uniform(1, 2.5), cy + radii * np.sin(angles)], 1)
        out.append(np.roll(poly, int(rng.integers(0, len(poly))), axis=0).astype(np.float32))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_targets_of_many_vertex_polygons_equal_mmocr(seed, mmocr):
    h, w = 256, 320
    polygons = many_vertex_polygons(np.random.default_rng(700 + seed), h, w, 24)
    ignored = [i % 7 == 3 for i in range(len(polygons))]
    reference, _ = mmocr.targets("fcenet_r50", h, w, polygons, ignored)
    ours = fcenet_targets(polygons, ignored, (h, w))
    for level, maps in enumerate(ours):
        theirs = reference[f"level{level}"][0]
        np.testing.assert_array_equal(maps["text"], theirs[0])
        np.testing.assert_array_equal(maps["center"], theirs[1])
        np.testing.assert_array_equal(maps["mask"], theirs[2])
        assert _same_contour(maps["fourier"], theirs[3:]).all(), level
    assert sum(int(m["center"].sum() > 0) for m in ours) >= 2  # the bands reach more than one level


@pytest.mark.parametrize("seed,preset", [(0, "fcenet_r50"), (1, "fcenet_r50_dcnv2")])
def test_targets_equal_mmocr(seed, preset, mmocr):
    h, w = (160, 224) if seed % 2 else (256, 256)
    polygons, ignored = polygon_case(600 + seed, h, w, 30)
    reference, _ = mmocr.targets(preset, h, w, polygons, ignored)
    config = config_from_preset(preset)
    ours = fcenet_targets(polygons, ignored, (h, w), proportion_ranges=config.level_proportion_range)
    for level, maps in enumerate(ours):
        theirs = reference[f"level{level}"][0]  # text, centre, mask, 11 real, 11 imaginary
        np.testing.assert_array_equal(maps["text"], theirs[0])
        np.testing.assert_array_equal(maps["center"], theirs[1])
        np.testing.assert_array_equal(maps["mask"], theirs[2])
        assert _same_contour(maps["fourier"], theirs[3:]).all(), level
        exact = (np.abs(maps["fourier"] - theirs[3:]) <= 1e-4).all(axis=0)
        assert exact.sum() >= 0.98 * exact.size, level  # a shifted start is the rare exception
    assert all(m["text"].sum() > 0 and m["center"].sum() > 0 for m in ours)  # every level holds text
    assert any((m["mask"] == 0).any() for m in ours)


def fce_maps(seed: int, height: int, width: int, count: int, noise: float = 0.8) -> tuple[list, list]:
    """FCENet-like raw outputs per level: logits over random polygons' text and centre regions with ``noise``
    (standard deviation; 0.8 makes spurious blobs too), and their Fourier maps with noise (so that neighbouring
    pixels propose slightly different contours)."""
    from freereal_hf.models.fcenet.modeling_fcenet import STRIDES

    rng = np.random.default_rng(seed)
    polygons, _ = polygon_case(seed, height, width, count)
    levels = fcenet_targets(polygons, None, (height, width))
    cls, reg = [], []
    for maps, _ in zip(levels, STRIDES):
        pair = [np.where(maps[m] > 0, rng.uniform(0.5, 4.0), rng.uniform(-4.0, -0.5)) for m in ("text", "center")]
        c = np.stack([np.zeros_like(pair[0]), pair[0], np.zeros_like(pair[1]), pair[1]])
        cls.append((c + rng.normal(0, noise, c.shape)).astype(np.float32))
        reg.append((maps["fourier"] + rng.normal(0, 0.05, maps["fourier"].shape)).astype(np.float32))
    return cls, reg


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union else 1.0


# the Total-Text config post-processes as the IC15 one (quads, alpha 1.2, beta 1.0)
@pytest.mark.parametrize("preset,seed,scale", [("fcenet_r50", 0, (0.8, 0.8)), ("fcenet_r50_dcnv2", 1, (1.5, 1.25))])
def test_post_process_equals_mmocr(preset, seed, scale, mmocr):
    cls, reg = fce_maps(700 + seed, 256, 320, 14)
    reference, _ = mmocr.postprocess_levels(preset, cls, reg, scale)
    ours = fcenet_post_process(cls, reg, scale, **config_from_preset(preset).post_process_params())
    assert len(ours["polygons"]) == len(reference["polygons"]) >= 5
    for mine, theirs in zip(ours["polygons"], reference["polygons"]):
        assert _iou(mine, np.asarray(theirs).reshape(-1, 2)) > 0.99
    np.testing.assert_allclose(ours["scores"], reference["scores"], atol=1e-5)


MMOCR_LOSS = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[2])
import mmocr_lite
from mmocr.utils import register_all_modules
register_all_modules()
from mmengine.structures import InstanceData
from mmocr.structures import TextDetDataSample
from mmocr.models.textdet.module_losses import FCEModuleLoss
spec = json.load(open(sys.argv[1] + ".json"))
arrays = np.load(sys.argv[1] + ".npz")
preds = [dict(cls_res=torch.from_numpy(arrays[f"cls{i}"]), reg_res=torch.from_numpy(arrays[f"reg{i}"])) for i in range(3)]
samples = []
for polys, ignored in zip(spec["polygons"], spec["ignored"]):
    ds = TextDetDataSample()
    ds.set_metainfo(dict(img_shape=tuple(spec["size"])))
    inst = InstanceData()
    inst.polygons = [np.asarray(p, np.float32) for p in polys]
    inst.ignored = torch.tensor(ignored, dtype=torch.bool)
    ds.gt_instances = inst
    samples.append(ds)
loss = FCEModuleLoss(fourier_degree=5, num_sample=50, level_proportion_range=tuple(map(tuple, spec["ranges"])))
print(json.dumps({k: float(v) for k, v in loss(preds, samples).items()}))
"""


def test_loss_equals_mmocr_module_loss(mmocr, tmp_path):
    """With ``center_loss="mmocr"`` every part equals FCEModuleLoss (CTW1500's level ranges); the default
    ``"bce"`` changes ``loss_center`` only."""
    from transformers import AutoModel

    from mmocr_reference import tool_dir

    torch.manual_seed(7)
    model = AutoModel.from_config(config_from_preset("fcenet_r50_dcnv2", center_loss="mmocr")).train()
    size = (128, 160)
    cases = [polygon_case(800 + i, *size, 10) for i in range(2)]
    targets = [model.build_targets(p, i, size) for p, i in cases]
    labels = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
    out = model(torch.randn(2, 3, *size), labels=labels)
    out.loss.backward()
    assert model.det_head.out_conv_reg.weight.grad.abs().sum() > 0
    np.savez(tmp_path / "case.npz", **{f"cls{i}": c.detach().numpy() for i, c in enumerate(out.cls_res)},
             **{f"reg{i}": r.detach().numpy() for i, r in enumerate(out.reg_res)})
    (tmp_path / "case.json").write_text(json.dumps({
        "size": list(size), "ranges": model.config.level_proportion_range,
        "polygons": [[np.asarray(p).tolist() for p in polys] for polys, _ in cases],
        "ignored": [list(map(bool, ign)) for _, ign in cases]}))
    reference = json.loads(mmocr.python_code(MMOCR_LOSS, str(tmp_path / "case"), str(tool_dir())).splitlines()[-1])
    parts = [k for k in out.keys() if k.startswith("loss_")]
    assert sorted(parts) == sorted(reference)
    for key in parts:
        assert abs(out[key].item() - reference[key]) <= 1e-5 * max(1.0, abs(reference[key])), key
        assert reference[key] > 0, key  # the case exercises every part
    model.config.center_loss = "bce"
    paper = model.loss(type(out)(cls_res=out.cls_res, reg_res=out.reg_res), labels)
    assert abs(paper["loss_center"].item() - reference["loss_center"]) > 1e-3
    for key in ("loss_text", "loss_reg_x", "loss_reg_y"):
        assert paper[key].item() == pytest.approx(out[key].item(), rel=1e-6), key


def test_exported_checkpoint_runs_in_mmocr_inferencer_alone(mmocr, tmp_path):
    """The exported .pth carries its MMOCR config: MMOCR's inferencer needs nothing else and finds what we find."""
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(config_from_preset("fcenet_r50_dcnv2", test_scale=[320, 320])).eval()
    with torch.no_grad():  # a head that sees text everywhere, each pixel proposing a circle of radius 2.5 (level px)
        head = model.det_head
        for conv in (head.out_conv_cls, head.out_conv_reg):
            conv.weight.zero_()
            conv.bias.zero_()
        head.out_conv_cls.bias[1] = head.out_conv_cls.bias[3] = 3.0
        head.out_conv_reg.bias[6] = 2.5
    ours, reference = mmocr.compare_inferencer(model, np.full((120, 200, 3), 90, np.uint8))
    assert len(reference["scores"]) >= 3
    assert len(ours["scores"]) == len(reference["scores"])
    np.testing.assert_allclose(ours["scores"], reference["scores"], atol=1e-4)
    for mine, theirs in zip(ours["polygons"], reference["polygons"]):
        assert _iou(mine, np.asarray(theirs).reshape(-1, 2)) > 0.95
