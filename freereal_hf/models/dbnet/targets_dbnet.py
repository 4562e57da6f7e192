"""DBNet training targets from polygons, equal to MMOCR 1.0.1's ``DBModuleLoss.get_targets``.

All maps are ``H x W`` float32 at the network input size; polygons are ``K x 2`` arrays of ``(x, y)``
pixels in that frame.

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

from typing import Sequence

import cv2
import numpy as np

from ..polygons import offset_polygon, polygon_area_perimeter

_EPS32 = float(np.finfo(np.float32).eps)


def _edge_distance(xs: np.ndarray, ys: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """MMOCR's (DB's) point-to-edge distance: the triangle height where the pixel sees the edge at an angle
    of at least 90 degrees, else the distance to the nearer end point.

    ``xs``/``ys`` are float64 grids, ``p1``/``p2`` float32 points: as in MMOCR, the squared edge length is
    computed in float32 and the rest in float64 (the threshold map then agrees to ~1e-6).
    """
    a2 = (xs - p1[0]) ** 2 + (ys - p1[1]) ** 2
    b2 = (xs - p2[0]) ** 2 + (ys - p2[1]) ** 2
    c2 = (p1[0] - p2[0]) ** 2 + (p1[1] - p2[1]) ** 2
    ab = a2 * b2
    neg_cos = np.clip((c2 - a2 - b2) / (_EPS32 + 2 * np.sqrt(ab)), -1.0, 1.0)
    dist = np.sqrt(ab * np.nan_to_num(1 - neg_cos * neg_cos) / (_EPS32 + c2))
    acute = neg_cos < 0
    dist[acute] = np.sqrt(np.fmin(a2, b2)[acute])
    return dist


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
    # Distances only matter below `distance`; each edge is evaluated in its own box grown by it.
    local = polygon.astype(np.float32) - np.array([x_min, y_min], np.float32)  # MMOCR's float32 shift
    ratio = np.ones((y1 - y0 + 1, x1 - x0 + 1), np.float64)
    for p1, p2 in zip(local, np.roll(local, -1, axis=0)):
        lo = np.floor(np.minimum(p1, p2) - distance).astype(int) + (x_min, y_min)
        hi = np.ceil(np.maximum(p1, p2) + distance).astype(int) + (x_min, y_min)
        ex0, ey0 = max(lo[0], x0), max(lo[1], y0)
        ex1, ey1 = min(hi[0], x1), min(hi[1], y1)
        if ex0 > ex1 or ey0 > ey1:
            continue
        xs = np.arange(ex0 - x_min, ex1 - x_min + 1, dtype=np.float64)[None, :]
        ys = np.arange(ey0 - y_min, ey1 - y_min + 1, dtype=np.float64)[:, None]
        d = np.clip(_edge_distance(xs, ys, p1, p2) / distance, 0, 1)
        window = ratio[ey0 - y0:ey1 - y0 + 1, ex0 - x0:ex1 - x0 + 1]
        np.minimum(window, d, out=window)
    region = canvas[y0:y1 + 1, x0:x1 + 1]
    np.fmax(region, (1 - ratio).astype(np.float32), out=region)


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

    shrink = np.zeros((h, w), np.float32)
    for i in keep_idx:
        if ignored[i]:
            continue
        poly = polys[i].astype(np.int32)
        area, length = polygon_area_perimeter(poly)
        shrunk = offset_polygon(poly, -int(area * (1 - shrink_ratio**2) / (length + 0.001) + 0.5))
        if len(shrunk) == 0:
            ignored[i] = True
            continue
        cv2.fillPoly(shrink, [shrunk.astype(np.int32)], 1.0)

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
        "shrink_mask": shrink_mask.astype(np.float32),
        "threshold_map": threshold * (thr_max - thr_min) + thr_min,
        "threshold_mask": threshold_mask.astype(np.float32),
    }
