"""FCENet beyond the MMOCR comparison: presets and their checks, the Fourier round trip, bad polygons, curved demo
data, and remote code (a Hub repo that loads and post-processes without freereal_hf installed)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from hub_cache import run_without_package
from shapely.geometry import Polygon

from freereal_hf import FCENetConfig, FCENetForTextDetection, config_from_preset
from freereal_hf.data.demo import demo_records, render_sample
from freereal_hf.models.fcenet.postprocess_fcenet import fourier_to_points, polygon_nms
from freereal_hf.models.fcenet.targets_fcenet import _sum, fourier_signature


def test_presets_follow_mmocrs_three_configs():
    ic15, ctw, total = (config_from_preset(n) for n in ("fcenet_r50", "fcenet_r50_dcnv2", "fcenet_r50_totaltext"))
    assert (ic15.text_repr_type, ic15.alpha, ic15.beta, ic15.norm_eval, any(ic15.dcn_stages)) == \
        ("quad", 1.2, 1.0, False, False)
    assert (ctw.text_repr_type, ctw.alpha, ctw.beta, ctw.norm_eval, ctw.dcn_stages, ctw.deform_groups) == \
        ("poly", 1.0, 2.0, True, [False, True, True, True], 2)
    assert ctw.level_proportion_range == [[0, 0.25], [0.2, 0.65], [0.55, 1.0]]
    assert total.test_scale == [1280, 960] and ic15.test_scale == [2260, 2260] and ctw.test_scale == [1080, 736]
    assert ic15.backbone_config.out_indices == [2, 3, 4]  # C3..C5
    for bad, message in (({"level_strides": [4, 8, 16]}, "strides"), ({"text_repr_type": "circle"}, "text_repr_type"),
                         ({"level_proportion_range": [[0.5, 0.2], [0.3, 0.7], [0.6, 1.0]]}, "level_proportion_range")):
        with pytest.raises(StrictDataclassClassValidationError, match=message):
            FCENetConfig(**bad)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    return pa.intersection(pb).area / pa.union(pb).area


def test_fourier_signature_reconstructs_curved_text():
    """Degree 5 describes a curved band closely: the 50 reconstructed points cover the band (IoU > 0.9), and the
    contour runs clockwise in image coordinates (positive shoelace area with y down)."""
    xs = np.linspace(0, 160, 7)
    ys = 40 + 25 * np.sin(np.linspace(0, np.pi, 7))
    band = np.concatenate([np.stack([xs, ys - 12], 1), np.stack([xs[::-1], ys[::-1] + 12], 1)])
    signature = fourier_signature(band, 5)
    points = fourier_to_points((signature[:, 0] + 1j * signature[:, 1])[None], 50)[0]
    assert _iou(points, band) > 0.9
    x, y = points[:, 0], points[:, 1]
    assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0
    assert fourier_signature(np.array([[5.0, 5.0]] * 4), 5) is None  # a collapsed outline has no signature


def test_polygon_nms_keeps_the_best_of_overlapping_polygons():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float64)
    polys = np.stack([square, square + 1, square + 30, square + [0, 0.5]])
    kept, scores = polygon_nms(polys, np.array([0.5, 0.9, 0.4, 0.9]), 0.1)
    # equal scores: the later one wins (MMOCR's stable sort, last first); the far square survives
    np.testing.assert_array_equal(kept[0], square + [0, 0.5])
    assert scores.tolist() == [0.9, 0.4] and len(kept) == 2


def test_polygon_nms_equals_comparing_every_pair():
    """The NMS decides many pairs from bounds (the boxes' overlap above, the box around both below) instead of
    intersecting them; its choices must be those of MMOCR's pair-by-pair rule: IoU from the union shapely builds,
    0 when a repaired polygon is still invalid, 1 when the union is empty. Random clusters of overlapping ellipses,
    some self-intersecting, at thresholds from 0.1 to 0.9."""
    from freereal_hf.models.fcenet.postprocess_fcenet import _valid

    def reference(polygons: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
        geoms = _valid(polygons)[0]

        def iou(i: int, j: int) -> float:
            if not (geoms[i].is_valid and geoms[j].is_valid):
                return 0.0
            union = geoms[i].union(geoms[j]).area
            return geoms[i].intersection(geoms[j]).area / union if union else 1.0

        order, kept = list(np.argsort(scores, kind="stable")), []
        while order:
            kept.append(order.pop())
            order = [i for i in order if iou(kept[-1], i) <= threshold]
        return kept

    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    for trial in range(40):
        m = int(rng.integers(2, 30))
        centres = rng.uniform(0, 200, (int(rng.integers(1, 5)), 1, 2))
        shape = np.stack([np.cos(t) * rng.uniform(5, 40), np.sin(t) * rng.uniform(2, 30)], 1)
        polys = centres[rng.integers(0, len(centres), m)] + shape * rng.uniform(0.7, 1.3, (m, 1, 1))
        polys = (polys + rng.normal(0, 3, polys.shape)).astype(np.int32)
        if trial % 5 == 0:
            polys[:, 3], polys[:, 9] = polys[:, 9].copy(), polys[:, 3].copy()  # self-intersecting outlines
        scores = np.round(rng.uniform(0, 1, m), 2)  # ties included
        for threshold in (0.1, 0.5, 0.9):
            kept, kept_scores = polygon_nms(polys, scores, threshold)
            expected = reference(polys, scores, threshold)
            np.testing.assert_array_equal(kept, polys[expected], err_msg=f"{trial}, {threshold}")
            np.testing.assert_array_equal(kept_scores, scores[expected])


def test_non_finite_outputs_propose_nothing():
    """A pixel with NaN or infinite coefficients proposes no polygon; NaN scores find no text."""
    from freereal_hf.models.fcenet import fcenet_post_process

    cls = [np.full((4, h, w), -5.0, np.float32) for h, w in ((16, 16), (8, 8), (4, 4))]
    reg = [np.zeros((22, h, w), np.float32) for h, w in ((16, 16), (8, 8), (4, 4))]
    cls[0][1, 4:8, 4:8] = cls[0][3, 4:8, 4:8] = 5.0  # one confident blob at stride 8
    reg[0][6, 4:8, 4:8] = 6.0  # a circle of radius 6 level pixels around each pixel: one after NMS
    clean = fcenet_post_process(cls, reg, text_repr_type="poly")
    assert len(clean["polygons"]) == 1
    reg[0][0, 4:6, 4:8] = np.nan
    reg[0][1, 6, 4:8] = np.inf
    assert len(fcenet_post_process(cls, reg, text_repr_type="poly")["polygons"]) == 1  # from the finite pixels
    reg[0][0, 4:8, 4:8] = np.nan
    assert fcenet_post_process(cls, reg, text_repr_type="poly") == {"polygons": [], "scores": []}
    cls[0][:] = np.nan
    assert fcenet_post_process(cls, reg) == {"polygons": [], "scores": []}


def test_bad_polygons_become_ignored_not_a_crash():
    model = FCENetForTextDetection(config_from_preset("fcenet_r50"))
    polygons = [np.array([[10, 10], [90, 10], [90, 40], [10, 40]], np.float32),  # good
                np.array([[50.2, 50.7]] * 4, np.float32),  # collapses to one pixel: MMOCR would crash
                np.array([[100, 100], [140, 100], [120, 130]], np.float32),  # a triangle has no head and tail
                np.zeros((0, 2), np.float32)]  # empty
    targets = model.build_targets(polygons, [False] * 4, (160, 192))
    assert targets["text_s16"].sum() > 0 and targets["center_s16"].sum() > 0  # 80 x 30 of 160 rows: level P4
    assert targets["mask_s8"][13:16, 13:17].min() == 0  # the triangle is ignored, not trained on
    assert targets["text_s8"][13:16, 13:17].max() == 0


def test_curved_demo_domain_has_14_point_polygons_around_its_strokes():
    sample = render_sample(np.random.default_rng([0, 2, 1]), "curved")
    assert sample.polygons.shape[1:] == (14, 2) and len(sample.polygons) >= 1
    ys = sample.polygons[:, :7, 1]  # the top line bends: its middle leaves the line through its ends
    bow = np.abs(ys[:, 3] - (ys[:, 0] + ys[:, 6]) / 2)
    assert (bow > 2).all(), bow
    text = np.zeros(sample.image.shape[:2], np.uint8)
    import cv2

    cv2.fillPoly(text, [p.astype(np.int32) for p in sample.polygons], 1)
    inside = text[sample.stroke_mask].mean()
    assert inside > 0.97, inside  # the strokes lie inside their curved polygons
    records = demo_records("curved", 2, seed=3)
    assert len(records[0]["polygons"][0]) == 14 and records[0]["key"].startswith("demo-curved-3-")
    assert demo_records("synthetic", 1)[0]["polygons"] == demo_records("synthetic", 1)[0]["polygons"]


def test_remote_code_loads_and_post_processes_without_the_package(tmp_path):
    torch.manual_seed(0)
    model = FCENetForTextDetection(config_from_preset("fcenet_r50_dcnv2", neck_channels=32)).eval()
    FCENetForTextDetection.register_for_auto_class("AutoModel")
    try:
        model.save_pretrained(tmp_path / "repo")
    finally:
        FCENetForTextDetection._auto_class = None
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    torch.save(x, tmp_path / "x.pt")
    torch.save(torch.cat([c.flatten() for c in out.cls_res + out.reg_res]), tmp_path / "expected.pt")
    code = textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'repo')!r}, trust_remote_code=True).eval()
        assert "freereal_hf" not in type(model).__module__, type(model).__module__
        with torch.no_grad():
            out = model(torch.load({str(tmp_path / 'x.pt')!r}))
        got = torch.cat([c.flatten() for c in out.cls_res + out.reg_res])
        assert torch.equal(got, torch.load({str(tmp_path / 'expected.pt')!r})), "outputs differ"
        result = model.post_process(out, [(1.0, 1.0)])[0]
        print("ok", sorted(result))
    """)
    proc = run_without_package(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok ['polygons', 'scores']"


def test_compiled_sum_adds_in_numpys_pairwise_order():
    """The centre-region targets are truncated to integers after sums of edge lengths, so the compiled sum must
    round exactly as ``np.sum`` does: sequential below 8 values, eight running sums up to 128, halves above.
    Values spanning 16 orders of magnitude make every other order give other bits."""
    rng = np.random.default_rng(0)
    for n in [*range(0, 40), 127, 128, 129, 200, 257, 1000]:
        values = rng.uniform(0, 1, n) * 10.0 ** rng.integers(-8, 9, n)
        assert _sum(values) == np.sum(values), n
    values = np.array([1e16] + [1.0] * 9)  # sequential: 1e16; numpy's eight sums: 1e16 + 8
    assert _sum(values) == np.sum(values) != sum(values.tolist())


def test_resampling_refuses_lines_it_cannot_resample():
    """The compiled resampling does not check bounds, so the lines it cannot take are refused before it runs."""
    from freereal_hf.models.fcenet.targets_fcenet import resample_line

    np.testing.assert_allclose(resample_line(np.array([[0.0, 0.0], [10.0, 0.0]]), 3), [[0, 0], [5, 0], [10, 0]])
    for line, n in ((np.zeros((0, 2)), 3), (np.array([[1.0, 2.0]]), 3), (np.array([[0.0, 0.0], [1.0, 1.0]]), 1)):
        with pytest.raises(ValueError, match="2 points or more and n >= 2"):
            resample_line(line, n)


def test_hull_bounds_never_decide_wrongly():
    """The convex hulls' bounds decide an NMS pair only where the exact IoU agrees: over 1 above the threshold when
    the union's hull says so, not above it when the hulls' intersection says so. Random pairs of jittered and
    self-intersecting outlines (repaired as the NMS repairs them), thresholds 0.1 to 0.9; many pairs near each."""
    from freereal_hf.models.fcenet.postprocess_fcenet import BOUND_MARGIN, _hull_decisions, _hulls, _valid

    rng = np.random.default_rng(11)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    decided = {0.0: 0, 1.0: 0}
    for trial in range(300):
        m = 12
        shape = np.stack([np.cos(t) * rng.uniform(5, 40), np.sin(t) * rng.uniform(2, 30)], 1)
        polys = rng.uniform(0, 40, (m, 1, 2)) + shape * rng.uniform(0.6, 1.4, (m, 1, 1))
        polys = (polys + rng.normal(0, 2 + trial % 4, polys.shape)).astype(np.int32)
        if trial % 3 == 0:
            polys[:, 5], polys[:, 15] = polys[:, 15].copy(), polys[:, 5].copy()
        geoms = _valid(polys)[0]
        areas = np.array([g.area for g in geoms])
        hulls, ordered, counts = _hulls(polys.astype(np.float64))
        usable = np.array([g.is_valid and not g.is_empty for g in geoms])
        for threshold in (0.1, 0.3, 0.5, 0.9):
            others = np.flatnonzero(usable[1:]) + 1
            if not usable[0] or not len(others):
                continue
            found = _hull_decisions(hulls, ordered, counts, areas, 0, others, threshold, BOUND_MARGIN)
            for other, verdict in zip(others, found):
                if np.isnan(verdict):
                    continue
                inter = geoms[0].intersection(geoms[other]).area
                iou = inter / geoms[0].union(geoms[other]).area
                assert (iou > threshold) == (verdict == 1.0), (trial, threshold, iou, verdict)
                decided[float(verdict)] += 1
    assert decided[0.0] > 1000 and decided[1.0] > 1000, decided
