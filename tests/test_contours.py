"""threshold_contours and approximate_contours give OpenCV's findContours(RETR_LIST, CHAIN_APPROX_SIMPLE) and
approxPolyDP(ratio * arcLength) results exactly, for all contours of a map in one call each."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from polygon_cases import probability_map

from freereal_hf.models import contours
from freereal_hf.models.contours import approximate_contours, select_contours, threshold_contours


def _opencv_contours(score_map: np.ndarray, threshold: float) -> list[np.ndarray]:
    found = cv2.findContours((score_map > threshold).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[0]
    return [c.reshape(-1, 2) for c in found]


def _split(points: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    return np.split(points, ends[:-1]) if len(ends) else []


def _maps(rng: np.random.Generator, count: int):
    """Noise of every density, blurred blobs with holes and one-pixel lines, widths that are multiples of 8 (the
    scan's 8-pixel steps) and not, maps of one row or column, and contours touching every border."""
    kernel = np.ones((3, 3), np.uint8)
    for trial in range(count):
        h = int(rng.integers(1, 70))
        w = int(rng.integers(1, 9)) * 8 if trial % 2 else int(rng.integers(1, 70))
        score_map = rng.random((h, w), dtype=np.float32)
        kind = trial % 4
        if kind == 1:
            score_map = cv2.GaussianBlur(score_map, (7, 7), 0)
        elif kind == 2:
            blobs = cv2.dilate((score_map > 0.93).astype(np.uint8), kernel)
            score_map = np.where(cv2.erode(blobs, np.ones((2, 2), np.uint8)) > 0, 0.9, score_map * 0.5)
        elif kind == 3:
            score_map[rng.random((h, w)) < 0.05] = np.nan  # NaN is below every threshold
        yield score_map.astype(np.float32), float(rng.choice([0.05, 0.3, 0.5, 0.8]))


def test_contours_equal_opencv():
    rng = np.random.default_rng(11)
    total = 0
    for score_map, threshold in _maps(rng, 1500):
        points, ends = threshold_contours(score_map, threshold)
        theirs = _opencv_contours(score_map, threshold)
        ours = _split(points, ends)
        assert len(ours) == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        total += len(theirs)
    assert total > 20000


def test_contours_of_large_maps_equal_opencv():
    """Thousands of contours and points: the point and contour buffers grow while tracing."""
    rng = np.random.default_rng(12)
    checker = np.indices((96, 200)).sum(0) % 2 * np.float32(1.0)  # every pixel its own 8-connected diagonal line
    for score_map in (checker, probability_map(rng, 640, 640, 30), probability_map(rng, 400, 333, 20),
                      rng.random((300, 256), dtype=np.float32)):
        points, ends = threshold_contours(score_map, 0.3)
        theirs = _opencv_contours(score_map, 0.3)
        assert len(ends) == len(theirs) and np.array_equal(points, np.concatenate(theirs))
    assert len(theirs) > 256 and len(points) > 4096


def test_layouts_and_dtypes_give_the_same_contours():
    rng = np.random.default_rng(13)
    score_map = cv2.GaussianBlur(rng.random((48, 64)), (5, 5), 0)  # float64
    theirs = _opencv_contours(score_map, 0.5)
    for variant in (score_map, np.asfortranarray(score_map), score_map.astype(np.float32),
                    np.ascontiguousarray(score_map.T).T):
        points, ends = threshold_contours(variant, 0.5)
        assert all(np.array_equal(a, b) for a, b in zip(_split(points, ends), theirs)) and len(ends) == len(theirs)
    before = score_map.copy()
    threshold_contours(score_map, 0.5)
    assert np.array_equal(score_map, before)  # the input is left alone


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0)])
def test_empty_maps(shape):
    points, ends = threshold_contours(np.zeros(shape, np.float32), 0.5)
    assert points.shape == (0, 2) and ends.shape == (0,)


def test_approximations_equal_opencv():
    rng = np.random.default_rng(14)
    total = 0
    for trial, (score_map, threshold) in enumerate(_maps(rng, 800)):
        points, ends = threshold_contours(score_map, threshold)
        curves = _split(points, ends)
        if trial % 2:  # random curves too: self-intersecting, repeated points, collinear runs
            curves += [rng.integers(0, 300, (int(rng.integers(1, 40)), 2)).astype(np.int32) for _ in range(4)]
        if not curves:
            continue
        ratio = float(rng.choice([0.0, 0.002, 0.01, 0.05, 0.3]))
        out, out_ends = approximate_contours(np.concatenate(curves), np.cumsum([len(c) for c in curves]), ratio)
        theirs = [cv2.approxPolyDP(c, ratio * cv2.arcLength(c, True), True).reshape(-1, 2) for c in curves]
        assert len(out_ends) == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(_split(out, out_ends), theirs))
        total += len(theirs)
    assert total > 10000


def test_perimeters_equal_opencv_to_the_bit():
    """The tolerance is a share of ``cv2.arcLength``: float32 steps, each length rounded to float32."""
    rng = np.random.default_rng(16)
    for trial in range(3000):
        scale = [10, 1000, 100000][trial % 3]
        curve = rng.integers(-scale, scale, (int(rng.integers(1, 50)), 2)).astype(np.int32)
        assert contours._arc_length(curve, 0, len(curve)) == cv2.arcLength(curve, True)


def test_select_keeps_the_flagged_contours_in_order():
    points = np.arange(20, dtype=np.int32).reshape(10, 2)
    ends = np.array([3, 4, 8, 10])
    kept, kept_ends = select_contours(points, ends, np.array([True, False, True, False]))
    assert kept[:, 0].tolist() == [0, 2, 4, 8, 10, 12, 14] and kept_ends.tolist() == [3, 7]
    none, none_ends = select_contours(points, ends, np.zeros(4, bool))
    assert none.shape == (0, 2) and none_ends.shape == (0,)


def test_the_installed_opencv_agrees():
    contours._agrees_with_opencv.cache_clear()
    assert contours._agrees_with_opencv()


def test_the_check_notices_a_wrong_copy(monkeypatch):
    traced = contours._traced

    def reversed_order(mask):  # RETR_LIST's order is part of the result
        points, ends = traced(mask)
        parts = _split(points, ends)[::-1]
        return contours._flat(parts) if parts else (points, ends)

    monkeypatch.setattr(contours, "_traced", reversed_order)
    assert not contours._agrees_with_opencv.__wrapped__()


def test_falls_back_to_opencv_when_the_copy_disagrees(monkeypatch):
    rng = np.random.default_rng(15)
    score_map = cv2.GaussianBlur(rng.random((60, 80), dtype=np.float32), (5, 5), 0)
    points, ends = threshold_contours(score_map, 0.5)
    expected = approximate_contours(points, ends, 0.02)
    monkeypatch.setattr(contours, "_agrees_with_opencv", lambda: False)
    monkeypatch.setattr(contours, "_trace_all", lambda *a: pytest.fail("the compiled copy ran"))
    monkeypatch.setattr(contours, "_approximate", lambda *a: pytest.fail("the compiled copy ran"))
    fallback = threshold_contours(score_map, 0.5)
    assert np.array_equal(fallback[0], points) and np.array_equal(fallback[1], ends)
    approximated = approximate_contours(points, ends, 0.02)
    assert np.array_equal(approximated[0], expected[0]) and np.array_equal(approximated[1], expected[1])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="H x W"):
        threshold_contours(np.zeros((4, 5, 3), np.float32), 0.5)
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], np.int32)
    for ratio in (-0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="epsilon_ratio"):
            approximate_contours(square, [4], ratio)
    for ends in ([3], [2, 1, 4], [5]):
        with pytest.raises(ValueError, match="ends"):
            approximate_contours(square, ends, 0.01)
    with pytest.raises(ValueError, match="flags"):
        select_contours(square, [4], [True, False])
    for ends in ([5], [3, 2], [2, 3]):
        with pytest.raises(ValueError, match="ends"):
            select_contours(square, ends, [True] * len(ends))
