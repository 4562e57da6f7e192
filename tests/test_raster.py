"""polygon_means gives cv2.fillPoly + cv2.mean's values to the bit, for all polygons of a map in one call;
fill_polygons gives cv2.fillPoly's maps, outlines reaching past the map included."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from freereal_hf.models import raster
from freereal_hf.models.raster import fill_polygons, polygon_means


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


def _outline_sets(rng: np.random.Generator, count: int):
    """(maps K x H x W of a dtype, points, starts, stops, values) with outlines inside, across and far beyond the
    border (OpenCV clips those), random point sets and star shapes, some outlines absent from some maps."""
    for trial in range(count):
        h, w, k = int(rng.integers(1, 70)), int(rng.integers(1, 70)), int(rng.integers(1, 4))
        spread = int(rng.choice([0, 3, 40, 3000]))
        outlines = []
        for _ in range(int(rng.integers(1, 7)) * k):
            n = int(rng.integers(1, 16))
            if trial % 2:
                pts = np.stack([rng.integers(-spread, w + spread, n), rng.integers(-spread, h + spread, n)], 1)
            else:
                angles = np.sort(rng.random(n)) * 2 * np.pi
                radii = rng.random(n) * (max(h, w) / 2 + spread)
                pts = np.stack([w / 2 + radii * np.cos(angles), h / 2 + radii * np.sin(angles)], 1)
            outlines.append(pts.astype(np.int32))
        lengths = np.array([len(o) for o in outlines])
        cut = np.concatenate([[0], np.cumsum(lengths)])
        polys = len(outlines) // k
        starts, stops = cut[:polys * k].reshape(polys, k), cut[1:polys * k + 1].reshape(polys, k)
        stops = np.where(rng.random(starts.shape) < 0.2, starts, stops)  # some absent
        dtype = np.uint8 if trial % 3 else np.int16
        values = rng.integers(1, 250, polys)
        yield np.zeros((k, h, w), dtype), np.concatenate(outlines), starts, stops, values


def _opencv_fills(maps, points, starts, stops, values):
    out = maps.copy()
    for k in range(starts.shape[1]):
        for p in range(starts.shape[0]):
            if stops[p, k] > starts[p, k]:
                cv2.fillPoly(out[k], [points[starts[p, k]:stops[p, k]]], int(values[p]))
    return out


def test_fills_equal_opencv_across_the_border():
    """3,000 sets of outlines: every map equals cv2.fillPoly's, in order (later polygons over earlier ones)."""
    differ = 0
    for maps, points, starts, stops, values in _outline_sets(np.random.default_rng(11), 3000):
        expected = _opencv_fills(maps, points, starts, stops, values)
        fill_polygons(maps, points, starts, stops, values)
        differ += not np.array_equal(maps, expected)
    assert differ == 0


def test_fills_fall_back_to_opencv_and_the_check_notices_a_wrong_copy(monkeypatch):
    maps, points, starts, stops, values = next(_outline_sets(np.random.default_rng(3), 1))
    expected = _opencv_fills(maps, points, starts, stops, values)
    monkeypatch.setattr(raster, "_fills_agree_with_opencv", lambda: False)
    monkeypatch.setattr(raster, "_fill_all", lambda *a: pytest.fail("the compiled copy ran"))
    fill_polygons(maps, points, starts, stops, values)
    np.testing.assert_array_equal(maps, expected)
    monkeypatch.undo()
    raster._fills_agree_with_opencv.cache_clear()
    assert raster._fills_agree_with_opencv()
    # a copy that draws anything else (here: outlines moved off points far beyond the border) is caught
    original = raster._fill_all
    monkeypatch.setattr(raster, "_fill_all", lambda maps, points, starts, stops, values: original(
        maps, np.clip(points, -1, 10**6), starts, stops, values))
    raster._fills_agree_with_opencv.cache_clear()
    assert not raster._fills_agree_with_opencv()
    raster._fills_agree_with_opencv.cache_clear()


@pytest.mark.parametrize("starts,stops,values,maps", [
    ([[0]], [[4]], [1], 1),  # past the points
    ([[2]], [[1]], [1], 1),  # start after stop
    ([[0, 0]], [[3, 3]], [1], 1),  # two maps' outlines, one map
    ([[0]], [[3]], [1, 2], 1),  # values of another length
])
def test_fill_bad_input_is_refused(starts, stops, values, maps):
    with pytest.raises(ValueError, match="fill_polygons"):
        fill_polygons(np.zeros((maps, 5, 5), np.uint8), np.array([[0, 0], [4, 0], [4, 4]]), np.array(starts),
                      np.array(stops), np.array(values))
