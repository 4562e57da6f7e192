"""The detector protocol, checked the same way on every entry of ``DETECTORS`` (one preset each): a detector that
stubs a method, or code that assumes DBNet's maps, fails here.

- ``build_targets`` gives exactly the declared maps, with the declared shapes, dtypes and strides;
- perfect outputs (``outputs_from_targets``) post-process back to the image's polygons (IoU > 0.9 each);
- ``pseudo_targets`` of those confident outputs give back the targets they came from (text and kernel maps
  IoU > 0.9, instances matched one to one, regression values equal where weighted, no confident text ignored);
- GlyphMix on real batches keeps every kind valid: binary stays binary, weights in [0, 1], instances distinct;
- one stage-1 and one stage-2 pre-training step run with a finite loss, through ``freereal-pretrain``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from shapely.geometry import Polygon
from transformers import AutoModel

from freereal_hf import DETECTORS, MapKind, config_from_preset
from freereal_hf.cli.pretrain import main as pretrain_main
from freereal_hf.glyphmix import GlyphMixConfig, glyphmix
from freereal_hf.glyphmix.mixing import box_masks

PRESETS = [spec.presets[0] for spec in DETECTORS.values()]
SIZE = (192, 256)
# large, well separated, squat text: the post-processing of a stride-4 head loses about one map pixel per side,
# and DBNet's unclip (ratio 1.5) undoes its shrink (ratio 0.4) only for boxes that are not long and thin
POLYGONS = [np.array([[16, 16], [126, 16], [126, 96], [16, 96]], np.float32),
            np.array([[140, 90], [248, 98], [244, 180], [136, 172]], np.float32)]


@pytest.fixture(scope="module", params=PRESETS)
def model(request):
    torch.manual_seed(0)
    return AutoModel.from_config(config_from_preset(request.param)).eval()


def _stack(targets: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}


def _iou(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 1.0 if not (a | b).any() else (a & b).sum() / (a | b).sum()  # two empty maps (a level without text) agree


def test_build_targets_gives_the_declared_maps(model):
    spec = model.target_spec
    targets = model.build_targets(POLYGONS + [POLYGONS[0] * 0.3], [False, False, True], SIZE)
    assert list(targets) == list(spec.names)
    found = set()  # the kinds whose maps hold what the polygons put there, at some level
    for m in spec.maps:
        t = targets[m.name]
        assert t.shape == m.shape(SIZE) and t.dtype == m.dtype, m
        if m.kind in (MapKind.TEXT, MapKind.KERNEL):
            assert set(np.unique(t)) <= {0.0, 1.0}, m
            found |= {m.kind} if t.any() else set()
        elif m.kind is MapKind.WEIGHT:
            assert t.min() >= 0 and t.max() <= 1, m
            found |= {m.kind} if (t == 0).any() else set()  # the ignored polygon
        elif m.kind is MapKind.INSTANCE:
            assert set(np.unique(t)) <= set(range(4)), m
            found |= {m.kind} if set(np.unique(t)) >= {0, 1, 2} else set()
    assert found >= set(m.kind for m in spec.maps) - {MapKind.REGRESSION}, found
    region = model.target_region(targets)
    assert region.shape == SIZE and region[50, 70] and not region[20, 240]
    empty = model.build_targets([], [], SIZE)
    assert not model.target_region(empty).any()


def test_perfect_outputs_post_process_to_the_polygons(model):
    targets = _stack([model.build_targets(POLYGONS, [False, False], SIZE)])
    result = model.post_process(model.outputs_from_targets(targets), [(1.0, 1.0)])[0]
    assert len(result["polygons"]) == len(POLYGONS), result
    for polygon in POLYGONS:
        ious = [Polygon(polygon).intersection(Polygon(p).buffer(0)).area / Polygon(polygon).union(Polygon(p).buffer(0)).area
                for p in result["polygons"]]
        assert max(ious) > 0.9, ious
    assert all(0 < s <= 1 for s in result["scores"])
    half = model.post_process(model.outputs_from_targets(targets), [(2.0, 2.0)])[0]  # original pixels
    np.testing.assert_allclose(np.concatenate(half["polygons"]), np.concatenate(result["polygons"]) / 2, atol=1e-4)


def test_detect_only_outputs_post_process_as_the_full_outputs(model):
    """``forward(..., detect_only=True)`` keeps every output post-processing reads, at the same values."""
    x = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, lean = model(x), model(x, detect_only=True)
    assert set(lean.keys()) <= set(full.keys())
    for name, value in lean.items():
        for a, b in zip(torch.utils._pytree.tree_leaves(value), torch.utils._pytree.tree_leaves(full[name])):
            assert torch.equal(a, b), name
    for a, b in zip(lean.post_process(), full.post_process(), strict=True):
        assert len(a["polygons"]) == len(b["polygons"]) and a["scores"] == b["scores"]
    if model.config.model_type == "dbnet":  # its threshold branch is what detection need not run
        assert lean.thr is None and full.thr is not None


def test_folded_batch_norms_give_the_same_detections(model):
    """``fold_batch_norms`` (what freereal-detect runs) folds this detector's conv -> batch-norm pairs, found by
    running it, and leaves outputs equal within 1e-4 and detections unchanged at a size other than its probe's."""
    import copy

    from freereal_hf.models.inference import fold_batch_norms

    folded = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(5)
    for module in folded.modules():  # statistics far from the defaults, so that folding changes the weights
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    reference = copy.deepcopy(folded)
    norms = sum(type(m) is torch.nn.BatchNorm2d for m in folded.modules())
    count = fold_batch_norms(folded)
    assert count > 0 and sum(type(m) is torch.nn.BatchNorm2d for m in folded.modules()) == norms - count
    x = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours, theirs = folded(x, detect_only=True), reference(x, detect_only=True)
    for name, value in theirs.items():
        for a, b in zip(torch.utils._pytree.tree_leaves(ours[name]), torch.utils._pytree.tree_leaves(value)):
            assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(b.abs().max())), name
    for a, b in zip(ours.post_process(), theirs.post_process(), strict=True):
        assert len(a["polygons"]) == len(b["polygons"])
    with pytest.raises(ValueError, match="eval"):
        fold_batch_norms(copy.deepcopy(model).train())


def test_folding_is_refused_where_a_convolution_output_is_also_used_elsewhere():
    """The pairs come from running the model; a convolution whose output a batch norm reads but that is also added
    to it afterwards cannot be folded: the probe's check fails and the model is left as it was."""
    from freereal_hf.models.inference import fold_batch_norms

    class Residual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor, detect_only: bool = False) -> dict[str, torch.Tensor]:
            y = self.conv(x)
            return {"out": self.bn(y) + y}

    torch.manual_seed(0)
    toy = Residual().eval()
    toy.bn.running_var.fill_(4.0)
    before = {k: v.clone() for k, v in toy.state_dict().items()}
    assert fold_batch_norms(toy) == 0
    assert isinstance(toy.bn, torch.nn.BatchNorm2d) and all(torch.equal(before[k], v) for k, v in toy.state_dict().items())


def test_pseudo_targets_of_confident_outputs_are_the_targets(model):
    spec = model.target_spec
    targets = _stack([model.build_targets(POLYGONS, [False, False], SIZE)])
    pseudo = model.pseudo_targets(model.outputs_from_targets(targets))
    assert list(pseudo) == list(spec.names)
    for m in spec.maps:
        p, t = pseudo[m.name], targets[m.name]
        assert p.shape == t.shape, m
        if m.kind in (MapKind.TEXT, MapKind.KERNEL):
            assert _iou(p > 0.5, t > 0.5) > 0.9, m
        elif m.kind is MapKind.WEIGHT and m.name in spec.confidence_map:
            text = targets[spec.text[spec.confidence_map.index(m.name)]] > 0.5
            assert (p[text] == 1).all(), m  # a confident teacher ignores no text
        elif m.kind is MapKind.REGRESSION:
            weight = (targets[spec.confidence_at(m.stride).name] > 0).expand_as(t[:, 0] if t.dim() == 4 else t)
            if t.dim() == 4:
                p, t = p.movedim(1, -1), t.movedim(1, -1)  # per pixel, all channels
            assert torch.allclose(p[weight].float(), t[weight].float()), m
        elif m.kind is MapKind.INSTANCE:
            ids = [i for i in torch.unique(t).tolist() if i]
            matched = {int(torch.mode(p[t == i]).values) for i in ids}
            assert len(matched) == len(ids) and 0 not in matched, m  # one pseudo instance per instance
            for i in ids:
                j = int(torch.mode(p[t == i]).values)
                assert _iou(p == j, t == i) > 0.85, m


def test_glyphmix_keeps_every_kind_valid(model):
    spec = model.target_spec
    rng = np.random.default_rng(0)
    n = 4

    def batch(shift: int) -> dict[str, torch.Tensor]:
        cases = []
        for i in range(n):
            polys = [p + rng.uniform(-10, 10, (1, 2)).astype(np.float32) for p in POLYGONS]
            polys.append(np.array([[20, 110 + 15 * i], [120, 110 + 15 * i], [120, 140 + 15 * i], [20, 140 + 15 * i]],
                                  np.float32) + shift)
            cases.append(model.build_targets(polys, [False, False, i == 1], SIZE))
        return _stack(cases)

    real, synthetic = batch(0), batch(7)
    region = model.target_region(synthetic).float()
    glyph = (torch.rand(n, *SIZE) > 0.6).float() * region
    for intra, inter in ((True, False), (False, True), (True, True)):
        config = GlyphMixConfig(intra_domain=intra, inter_domain=inter, label_mask="ignore" if intra and inter else "region")
        mix = glyphmix(torch.randn(n, 3, *SIZE), real, torch.randn(n, 3, *SIZE), synthetic, glyph, region, config,
                       spec, torch.Generator().manual_seed(1))
        for m in spec.maps:
            v = mix.targets[m.name]
            # pasted ids are int32 (two images' int16 ids, offset, could overflow int16); other maps keep their dtype
            dtype = torch.int32 if m.kind is MapKind.INSTANCE else real[m.name].dtype
            assert v.shape == real[m.name].shape and v.dtype == dtype, m
            if m.kind in (MapKind.TEXT, MapKind.KERNEL):
                assert set(torch.unique(v).tolist()) <= {0.0, 1.0}, m
            elif m.kind is MapKind.WEIGHT:
                assert v.min() >= 0 and v.max() <= 1, m
            elif m.kind is MapKind.INSTANCE and intra and not inter:
                inside = box_masks(mix.boxes, *v.shape[-2:], stride=m.stride).bool()
                for i in range(n):  # ids pasted from the partner never reuse an id of the base image
                    base_ids = set(torch.unique(v[i][~inside[i]]).tolist()) - {0}
                    pasted = set(torch.unique(v[i][inside[i]]).tolist()) - {0}
                    if pasted:
                        assert min(pasted) > max(real[m.name][i].max().item(), 0) and not pasted & base_ids, m
            elif m.kind is MapKind.INSTANCE and inter and not intra:
                for i in range(n):  # the synthetic instances get ids of their own, all kept
                    on = region[i].bool()
                    pasted = set(torch.unique(v[i][on]).tolist()) - {0}
                    assert len(pasted) == len(set(torch.unique(synthetic[m.name][i]).tolist()) - {0}), m
                    assert min(pasted) > real[m.name][i].max().item(), m


def test_one_stage1_and_one_stage2_step(model, tmp_path):
    preset = model.config.preset
    out = tmp_path / preset
    assert pretrain_main(["--output_dir", str(out), "--model", preset, "--max_steps", "2", "--stage1_steps", "1",
                          "--synthetic_dataset", "demo:synthetic:4", "--real_datasets", "demo:real-like:4:1",
                          "--crop_size", "64", "--image_size", "96", "--batch_size", "2", "--num_workers", "0",
                          "--report_to", "none", "--save_steps", "0", "--ema_momentum", "0.5"]) == 0
    trained = AutoModel.from_pretrained(out / "final")
    assert type(trained) is type(model) and trained.config.preset == preset
    args = (out / "final" / "training_args.json").read_text()
    assert '"steps_trained": 2' in args


def test_glyphmix_preview_draws_each_detectors_mixed_targets(model, tmp_path):
    from freereal_hf.cli.glyphmix_preview import main as preview_main

    out = tmp_path / "grid.png"
    assert preview_main(["--model", model.config.preset, "--num-images", "2", "--crop-size", "96",
                         "--output", str(out)]) == 0
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[0] > 4 * 96
    assert grid.shape[0] > (3 + len(model.target_spec.levels)) * 96  # a targets row per level
    if model.target_spec.levels[0][0].kind is MapKind.INSTANCE:  # instances in distinct colours
        last_row = grid[-200:].reshape(-1, 3)
        hues = cv2.cvtColor(last_row[None], cv2.COLOR_BGR2HSV)[0]
        vivid = hues[hues[:, 1] > 120, 0]
        assert len(np.unique(vivid // 10)) >= 3
