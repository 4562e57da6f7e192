"""DBNet targets and post-processing equal MMOCR 1.0.1's on many random cases (MMOCR run beside ours)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from polygon_cases import probability_map, random_polygons
from shapely.geometry import Polygon

from freereal_hf.models.dbnet import dbnet_post_process, dbnet_targets
from freereal_hf.models.polygons import offset_polygon

pytestmark = pytest.mark.mmocr


@pytest.mark.parametrize("seed", range(6))
def test_targets_equal_mmocr(seed, mmocr):
    rng = np.random.default_rng(100 + seed)
    h, w = (160, 224) if seed % 2 else (200, 200)
    polygons, ignored = random_polygons(rng, h, w, 25)
    reference, _ = mmocr.targets("dbnet_r18", h, w, polygons, ignored)
    ours = dbnet_targets(polygons, ignored, (h, w))
    np.testing.assert_array_equal(ours["shrink_map"], reference["shrink"][0])
    np.testing.assert_array_equal(ours["shrink_mask"], reference["shrink_mask"][0])
    np.testing.assert_array_equal(ours["threshold_mask"], reference["thr_mask"][0])
    assert np.abs(ours["threshold_map"] - reference["thr"][0]).max() <= 1e-3
    assert ours["shrink_map"].sum() > 0 and (ours["shrink_mask"] == 0).any()  # the cases exercise both


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union else 1.0


@pytest.mark.parametrize("seed,scale", [(0, (1.0, 1.0)), (1, (1.5, 1.25)), (2, (0.8, 0.8)), (3, (2.0, 2.0))])
def test_post_process_equals_mmocr(seed, scale, mmocr):
    rng = np.random.default_rng(200 + seed)
    prob = probability_map(rng, 256, 320, 12)
    reference, _ = mmocr.postprocess("dbnet_r18", prob, scale)
    ours = dbnet_post_process(prob, scale)
    assert len(ours["polygons"]) == len(reference["polygons"]) >= 4
    for mine, theirs in zip(ours["polygons"], reference["polygons"]):
        assert _iou(mine, np.asarray(theirs).reshape(-1, 2)) > 0.99
    np.testing.assert_allclose(ours["scores"], reference["scores"], atol=1e-6)


@pytest.mark.parametrize("size,count,text_width", [(640, 30, 5.0), (1280, 120, 5.0), (320, 20, 12.0)])
def test_thin_blob_shortcuts_change_no_result(size, count, text_width, monkeypatch):
    """Contours dropped as provably thin, before approximating them (``_thin_contours``) or before growing them
    (``_too_thin``), are exactly those the grown rectangle drops."""
    import freereal_hf.models.dbnet.postprocess_dbnet as post

    prob = probability_map(np.random.default_rng(size), size, size, count)
    thin_contours, too_thin, skipped = post._thin_contours, post._too_thin, []
    monkeypatch.setattr(post, "_thin_contours", lambda *a: skipped.extend(thin_contours(*a).tolist()) or
                        np.array(skipped[-len(a[1]):], bool))
    monkeypatch.setattr(post, "_too_thin", lambda *a: skipped.append(too_thin(*a)) or skipped[-1])
    fast = dbnet_post_process(prob, min_text_width=text_width)
    assert sum(skipped) > 20  # the map has many noise blobs for the shortcuts to skip
    monkeypatch.setattr(post, "_thin_contours", lambda points, ends, *a: np.zeros(len(ends), bool))
    monkeypatch.setattr(post, "_too_thin", lambda *a: False)
    slow = dbnet_post_process(prob, min_text_width=text_width)
    assert len(fast["polygons"]) == len(slow["polygons"]) >= count // 3
    for mine, theirs in zip(fast["polygons"], slow["polygons"]):
        assert np.array_equal(mine, theirs)
    assert fast["scores"] == slow["scores"]


def test_contours_called_thin_are_dropped_when_grown():
    """Every contour ``_thin_contours`` calls thin, on noisy maps and with wide minimum widths (so that larger
    blobs are called thin too), is dropped by MMOCR's own steps: approximated to fewer than 4 points, or grown into
    a region whose minimum-area rectangle is narrower than the width."""
    from freereal_hf.models.dbnet.postprocess_dbnet import _thin_contours
    from freereal_hf.models.polygons import polygon_area_perimeter

    rng = np.random.default_rng(31)
    called = 0
    for trial in range(24):
        prob = probability_map(rng, 160, 200, 6)
        prob = np.clip(prob + rng.normal(0, 0.08 * (trial % 3), prob.shape).astype(np.float32), 0, 1)
        contours = [c for c in cv2.findContours((prob > 0.3).astype(np.uint8), cv2.RETR_LIST,
                                                cv2.CHAIN_APPROX_SIMPLE)[0] if len(c) >= 4]
        width, ratio = float(rng.choice([5.0, 9.0, 14.0])), float(rng.choice([1.5, 2.0]))
        thin = _thin_contours(np.concatenate(contours).reshape(-1, 2), np.cumsum([len(c) for c in contours]),
                              ratio, width)
        for contour in [c for c, t in zip(contours, thin) if t]:
            called += 1
            pts = cv2.approxPolyDP(contour, 0.01 * cv2.arcLength(contour, True), True).reshape(-1, 2)
            if len(pts) < 4:
                continue
            area, length = polygon_area_perimeter(pts)
            grown = offset_polygon(pts, area * ratio / length)
            assert len(grown) == 0 or min(cv2.minAreaRect(grown)[1]) < width
    assert called > 1000
