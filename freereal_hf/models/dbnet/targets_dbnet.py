"""DBNet training targets from polygons, equal to MMOCR 1.0.1's ``DBModuleLoss.get_targets``.

All maps are ``H x W`` at the network input size: ``threshold_map`` float32, the others binary (uint8 0/1, MMOCR's
float32 values); polygons are ``K x 2`` arrays of ``(x, y)`` pixels in that frame.

- ``shrink_map``: 1 inside every kept polygon shrunk by ``D = int(A (1 - r^2) / (L + 0.001) + 0.5)``
  (computed on the integer polygon), else 0.
- ``shrink_mask``: 0 inside ignored polygons, else 1 (weight of the probability and binary losses).
- ``threshold_map``: ``thr_min + (thr_max - thr_min) * max_polygons(1 - d / D')`` with ``D' = A (1 - r^2) / L``
  and ``d`` MMOCR's point-to-edge distance, inside each polygon grown by ``D'``; ``thr_min`` elsewhere.
- ``threshold_mask``: 1 inside the grown kept polygons (weight of the threshold loss).

A polygon is ignored when flagged, when it has fewer than 3 points, ``|area| < 1``, the short side of its
minimum-area rectangle is below ``min_sidelength``, or its shrunk polygon is empty or split. Polygons with
non-finite coordinates are dropped.
"""

from __future__ import annotations

import sys
from typing import Sequence

import cv2
import numba
import numpy as np

from ..polygons import offset_polygon, polygon_area_perimeter, shrink_distances

_EPS32 = float(np.finfo(np.float32).eps)


@numba.njit(cache=True)
def _band(local: np.ndarray, c2: np.ndarray, den: np.ndarray, lo: np.ndarray, hi: np.ndarray, distance: float,
          x_min: int, y_min: int, x0: int, y0: int, x1: int, y1: int, canvas: np.ndarray) -> None:
    """One polygon's threshold band, maxed into ``canvas[y0:y1 + 1, x0:x1 + 1]`` (float32, in place).

    MMOCR's (DB's) point-to-edge distance: the triangle height where the pixel sees the edge at an angle of at
    least 90 degrees, else the distance to the nearer end point; divided by ``distance``, clipped to [0, 1],
    the least over the edges ``r``, and ``1 - r`` maxed in. As in MMOCR the pixel grid is float64 and the squared
    edge length ``c2`` float32 (``den = eps + c2`` in float32 too), so the map agrees to ~1e-6. Edge ``k`` (from
    ``local[k]`` to ``local[k + 1]``, in the frame shifted by ``(x_min, y_min)``) only counts in its own box grown
    by ``distance`` (``lo[k]..hi[k]``, image pixels): beyond it the clipped distance is 1 anyway.
    """
    ratio = np.ones((y1 - y0 + 1, x1 - x0 + 1))
    k_count = local.shape[0]
    for k in range(k_count):
        ax, ay = local[k, 0], local[k, 1]
        bx, by = local[(k + 1) % k_count, 0], local[(k + 1) % k_count, 1]
        for y in range(max(lo[k, 1], y0), min(hi[k, 1], y1) + 1):
            fy = float(y - y_min)
            for x in range(max(lo[k, 0], x0), min(hi[k, 0], x1) + 1):
                fx = float(x - x_min)
                a2 = (fx - ax) * (fx - ax) + (fy - ay) * (fy - ay)
                b2 = (fx - bx) * (fx - bx) + (fy - by) * (fy - by)
                ab = a2 * b2
                neg_cos = (c2[k] - a2 - b2) / (_EPS32 + 2 * np.sqrt(ab))
                neg_cos = min(max(neg_cos, -1.0), 1.0)
                if neg_cos < 0:
                    dist = np.sqrt(min(a2, b2))
                else:
                    dist = np.sqrt(ab * (1 - neg_cos * neg_cos) / den[k])
                d = min(max(dist / distance, 0.0), 1.0)
                if d < ratio[y - y0, x - x0]:
                    ratio[y - y0, x - x0] = d
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            v = np.float32(1 - ratio[y - y0, x - x0])
            if v > canvas[y, x]:
                canvas[y, x] = v


def _draw_border(polygon: np.ndarray, canvas: np.ndarray, mask: np.ndarray, shrink_ratio: float) -> None:
    """Adds one polygon's threshold band to ``canvas`` (max) and its grown polygon to ``mask`` (in place)."""
    area, length = polygon_area_perimeter(polygon)
    distance = area * (1 - shrink_ratio**2) / length
    grown = offset_polygon(polygon, distance)
    grown = (grown if len(grown) else polygon).astype(np.int32)
    x_min, y_min = grown.min(axis=0)
    x_max, y_max = grown.max(axis=0)
    h, w = canvas.shape
    x0, x1 = min(max(0, x_min), w - 1), min(max(0, x_max), w - 1)
    y0, y1 = min(max(0, y_min), h - 1), min(max(0, y_max), h - 1)
    if x_max < 0 or y_max < 0:
        return  # wholly left of or above the image (MMOCR skips these too)
    cv2.fillPoly(mask, [grown], 1)
    if x_min > w - 1 or y_min > h - 1:
        return  # wholly right of or below the image: no band pixel inside
    local = polygon.astype(np.float32) - np.array([x_min, y_min], np.float32)  # MMOCR's float32 shift
    nxt = np.concatenate((local[1:], local[:1]))
    c2 = (local[:, 0] - nxt[:, 0]) ** 2 + (local[:, 1] - nxt[:, 1]) ** 2  # float32, as MMOCR
    den = np.float32(_EPS32) + c2
    origin = np.array([x_min, y_min])
    lo = np.floor(np.minimum(local, nxt) - distance).astype(np.int64) + origin
    hi = np.ceil(np.maximum(local, nxt) + distance).astype(np.int64) + origin
    _band(local.astype(np.float64), c2.astype(np.float64), den.astype(np.float64), lo, hi, float(distance),
          int(x_min), int(y_min), int(x0), int(y0), int(x1), int(y1), canvas)


def is_trainable_polygon(polygon: np.ndarray, min_sidelength: float) -> bool:
    """False for polygons DBNet ignores: < 3 points, ``|area| < 1`` or min-area-rect short side too small."""
    if len(polygon) < 3:
        return False
    area, _ = polygon_area_perimeter(polygon)
    return area >= 1 and min(cv2.minAreaRect(polygon.astype(np.float32))[1]) >= min_sidelength


def dbnet_targets(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool] | None,
    size: tuple[int, int],
    shrink_ratio: float = 0.4,
    thr_min: float = 0.3,
    thr_max: float = 0.7,
    min_sidelength: float = 8.0,
) -> dict[str, np.ndarray]:
    """Builds DBNet's four ``H x W`` target maps for one image of ``size = (H, W)`` (see module docstring)."""
    h, w = size
    polys = [np.asarray(p, np.float32).reshape(-1, 2) for p in polygons]
    flags = list(ignore) if ignore is not None else [False] * len(polys)
    if len(flags) != len(polys):
        raise ValueError(f"{len(polys)} polygons but {len(flags)} ignore flags")
    keep_idx = [i for i, p in enumerate(polys) if np.isfinite(p).all() and len(p) > 0]
    ignored = {i: bool(flags[i]) or not is_trainable_polygon(polys[i], min_sidelength) for i in keep_idx}

    shrink = np.zeros((h, w), np.uint8)
    shrunk_idx = [i for i in keep_idx if not ignored[i]]
    points = [polys[i].astype(np.int32) for i in shrunk_idx]
    # MMOCR's _generate_kernels with its default max_shrink_dist (sys.maxsize), every polygon at once
    distances = shrink_distances(np.concatenate(points), np.cumsum([len(p) for p in points]), (shrink_ratio,),
                                 sys.maxsize)[:, 0].tolist() if points else []
    for i, poly, distance in zip(shrunk_idx, points, distances):
        shrunk = offset_polygon(poly, distance)
        if len(shrunk) == 0:
            ignored[i] = True
            continue
        cv2.fillPoly(shrink, [shrunk.astype(np.int32)], 1)

    shrink_mask = np.ones((h, w), np.uint8)
    threshold = np.zeros((h, w), np.float32)
    threshold_mask = np.zeros((h, w), np.uint8)
    for i in keep_idx:
        if ignored[i]:
            cv2.fillPoly(shrink_mask, [polys[i].astype(np.int32)], 0)
        else:
            _draw_border(polys[i], threshold, threshold_mask, shrink_ratio)
    return {
        "shrink_map": shrink,
        "shrink_mask": shrink_mask,
        "threshold_map": threshold * (thr_max - thr_min) + thr_min,
        "threshold_mask": threshold_mask,
    }
