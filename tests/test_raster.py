"""polygon_means gives cv2.fillPoly + cv2.mean's values to the bit, for all polygons of a map in one call."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from freereal_hf.models import raster
from freereal_hf.models.raster import polygon_means


def _opencv(score_map: np.ndarray, polygons: list[np.ndarray]) -> list[float]:
    """What DBNet's scoring did before, one polygon at a time: a mask on its bounding box, then cv2.mean."""
    out = []
    for pts in polygons:
        x, y, w, h = cv2.boundingRect(pts)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [pts], 1, offset=(-x, -y))
        out.append(cv2.mean(score_map[y:y + h, x:x + w], mask)[0])
    return out


def _cases(rng: np.random.Generator, count: int):
    for trial in range(count):
        h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        score_map = rng.random((h, w), dtype=np.float32) * np.float32(rng.choice([1.0, 3e3]))
        polygons = []
        for _ in range(int(rng.integers(1, 6))):
            k = int(rng.integers(1, 25))
            if trial % 2:  # random points: self-intersecting, repeated, collinear
                pts = np.stack([rng.integers(0, w, k), rng.integers(0, h, k)], 1)
            else:  # star-shaped around a centre, like a contour
                angles = np.sort(rng.random(k)) * 2 * np.pi
                radii = rng.random(k) * min(h, w) / 2
                pts = np.stack([np.clip(w / 2 + radii * np.cos(angles), 0, w - 1),
                                np.clip(h / 2 + radii * np.sin(angles), 0, h - 1)], 1)
            polygons.append(pts.astype(np.int32))
        yield score_map, polygons


def test_means_equal_opencv_to_the_bit():
    rng = np.random.default_rng(5)
    total = 0
    for score_map, polygons in _cases(rng, 1500):
        ours = polygon_means(score_map, np.concatenate(polygons), np.cumsum([len(p) for p in polygons]))
        assert ours.tolist() == _opencv(score_map, polygons)
        total += len(polygons)
    assert total > 4000


def test_a_float32_or_pairwise_sum_would_differ():
    """The cases can tell summation orders apart: numpy's pairwise float64 mean of the same pixels differs."""
    rng = np.random.default_rng(6)
    differ = 0
    for score_map, polygons in _cases(rng, 300):
        for pts, theirs in zip(polygons, _opencv(score_map, polygons)):
            mask = np.zeros(score_map.shape, np.uint8)
            cv2.fillPoly(mask, [pts], 1)
            differ += float(score_map[mask > 0].astype(np.float64).mean()) != theirs
    assert differ > 50


def test_falls_back_to_opencv_when_the_copy_disagrees(monkeypatch):
    rng = np.random.default_rng(7)
    score_map, polygons = next(_cases(rng, 1))
    monkeypatch.setattr(raster, "_agrees_with_opencv", lambda: False)
    monkeypatch.setattr(raster, "_means", lambda *a: pytest.fail("the compiled copy ran"))
    ours = polygon_means(score_map, np.concatenate(polygons), np.cumsum([len(p) for p in polygons]))
    assert ours.tolist() == _opencv(score_map, polygons)


def test_the_installed_opencv_agrees():
    raster._agrees_with_opencv.cache_clear()
    assert raster._agrees_with_opencv()


@pytest.mark.parametrize("points,ends", [
    ([[0, 0], [5, 0], [5, 4]], [3]),  # x = 5 is outside a 5-wide map
    ([[0, 0], [2, -1], [3, 3]], [3]),
    ([[0, 0], [2, 1], [3, 3]], [2]),  # ends do not cover the points
    ([[0, 0], [2, 1], [3, 3]], [0, 3]),  # a polygon of no points
])
def test_bad_input_is_refused(points, ends):
    with pytest.raises(ValueError, match="polygon_means"):
        polygon_means(np.zeros((4, 5), np.float32), np.array(points), ends)


def test_no_polygons():
    assert polygon_means(np.zeros((4, 5), np.float32), np.zeros((0, 2), np.int32), []).shape == (0,)
