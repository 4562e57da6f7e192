"""Areas and perimeters from shapely's own arithmetic (``polygons.polygon_areas_perimeters``), which MMOCR's shrink
and grow distances are computed from, and the kernel shrink distances built on them."""

from __future__ import annotations

import cv2
import numpy as np
from shapely.geometry import Polygon

from freereal_hf.models.polygons import polygon_area_perimeter, polygon_areas_perimeters, shrink_distances


def _polygons(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Integer pixels, float32 values read as float64, coordinates near 2^30 and far from the origin (where the
    order of float64 operations decides the last bits), some given closed."""
    out = []
    for i in range(count):
        k = int(rng.integers(3, 20))
        p = (rng.integers(-50, 1300, (k, 2)).astype(np.float64), rng.uniform(-1e3, 2e3, (k, 2)).astype(np.float32),
             rng.integers(-2**30, 2**30, (k, 2)).astype(np.float64), rng.uniform(1e7, 1e7 + 100, (k, 2)))[i % 4]
        out.append(np.concatenate([p, p[:1]]) if i % 7 == 0 else p)
    return out


def test_areas_and_perimeters_are_shapelys_to_the_bit():
    polygons = _polygons(np.random.default_rng(0), 4_000)
    areas, perimeters = polygon_areas_perimeters(np.concatenate(polygons).astype(np.float64),
                                                 np.cumsum([len(p) for p in polygons]))
    assert [Polygon(p).area for p in polygons] == areas.tolist()
    assert [Polygon(p).length for p in polygons] == perimeters.tolist()
    # what the targets used before (cv2 on integer points, float32 steps) is not, so the comparison can fail
    ints = polygons[::4]
    assert sum(cv2.arcLength(p.astype(np.int32), True) != Polygon(p).length for p in ints) > 0.5 * len(ints)
    assert polygon_area_perimeter(np.array([[0, 0], [3, 4]])) == (0.0, 10.0)  # shapely refuses; area 0
    assert polygon_area_perimeter(np.zeros((0, 2))) == (0.0, 0.0)


def test_shrink_distances_are_mmocrs_formula_on_shapelys_measures():
    rng = np.random.default_rng(1)
    polygons = [rng.integers(0, 640, (int(rng.integers(3, 15)), 2)).astype(np.int32) for _ in range(2_000)]
    polygons += [np.array([[0, 0], [400, 0], [400, 300], [0, 300]], np.int32)]  # capped at max_shrink_dist
    ratios = (1.0, 0.9, 0.7, 0.5, 0.4)
    got = shrink_distances(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]), ratios, 20).tolist()
    expected = [[-min(int(Polygon(p).area * (1 - r * r) / (Polygon(p).length + 0.001) + 0.5), 20) for r in ratios]
                for p in polygons]
    assert got == expected and got[-1][-1] == -20 and any(0 < -d[-1] < 20 for d in got)
