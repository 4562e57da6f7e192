"""DBNet post-processing: probability map -> text polygons, as MMOCR 1.0.1's ``DBPostprocessor``.

Input: one ``H x W`` probability map at the network input size. Output: polygons as ``K x 2`` float32
arrays of ``(x, y)``, divided by ``scale_factor = (sx, sy)`` (input size / original size) so they are in
original-image pixels, and their scores (mean probability inside the approximated contour).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..polygons import offset_polygon, polygon_areas_perimeters


def _mean_inside(score_map: np.ndarray, pts: np.ndarray) -> float:
    """Mean of ``score_map`` over the filled polygon ``pts`` (int ``K x 2``), computed on its bounding box."""
    h, w = score_map.shape
    x, y, bw, bh = cv2.boundingRect(pts)
    x0, y0 = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    x1, y1 = min(max(x + bw - 1, 0), w - 1), min(max(y + bh - 1, 0), h - 1)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [pts], 1, offset=(-x0, -y0))
    return cv2.mean(score_map[y0:y1 + 1, x0:x1 + 1], mask)[0]


def _too_thin(pts: np.ndarray, distance: float, min_width: float) -> bool:
    """Whether the minimum-area rectangle of ``pts`` grown by ``distance`` must have a short side below
    ``min_width``, known without growing it (most noise blobs; the result is the same as growing them).

    The grown polygon lies within ``pts``' minimum-area rectangle (sides ``a <= b``) grown by ``distance`` plus
    one pixel of pyclipper's integer rounding on every side; the grown polygon's own minimum-area rectangle is no
    larger in area, and its short side is at most the square root of that area.
    """
    a, b = cv2.minAreaRect(pts)[1]
    margin = 2 * (distance + 1)
    return (a + margin) * (b + margin) < min_width * min_width


def dbnet_post_process(
    prob: np.ndarray,
    scale_factor: tuple[float, float] = (1.0, 1.0),
    mask_thr: float = 0.3,
    min_text_score: float = 0.3,
    min_text_width: float = 5.0,
    unclip_ratio: float = 1.5,
    epsilon_ratio: float = 0.01,
    max_candidates: int = 3000,
    text_repr_type: str = "quad",
) -> dict[str, list]:
    """Text instances of one probability map.

    Contours of ``prob > mask_thr`` (at most ``max_candidates + 1``, as MMOCR), each simplified with
    ``approxPolyDP(eps = epsilon_ratio * perimeter)`` and kept when it has >= 4 points and a mean
    probability >= ``min_text_score``; grown by ``area * unclip_ratio / perimeter``; for ``"quad"`` the
    minimum-area rectangle, dropped when its short side is below ``min_text_width``.

    Returns:
        ``{"polygons": [K x 2 float32 (x, y)], "scores": [float]}`` in original-image pixels.
    """
    score_map = np.ascontiguousarray(prob, dtype=np.float32)
    contours, _ = cv2.findContours((score_map > mask_thr).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    scale = np.asarray(scale_factor, np.float32)
    polygons, scores = [], []
    # contours of fewer than 4 points cannot approximate to 4 (single-pixel noise, mostly)
    approximated = [cv2.approxPolyDP(c, epsilon_ratio * cv2.arcLength(c, True), True).reshape(-1, 2)
                    for c in contours[:max_candidates + 1] if len(c) >= 4]
    approximated = [pts for pts in approximated if len(pts) >= 4]
    if not approximated:
        return {"polygons": polygons, "scores": scores}
    # the growing distance from shapely's area and length, as MMOCR's: all regions in one compiled call
    areas, lengths = polygon_areas_perimeters(np.concatenate(approximated), np.cumsum([len(p) for p in approximated]))
    for pts, area, length in zip(approximated, areas.tolist(), lengths.tolist()):
        if length == 0:
            continue  # nothing to grow
        distance = area * unclip_ratio / length
        if text_repr_type == "quad" and _too_thin(pts, distance, min_text_width):
            continue  # (before the score, which costs more: either test drops the contour)
        score = _mean_inside(score_map, pts)
        if score < min_text_score:
            continue
        grown = offset_polygon(pts, distance)
        if len(grown) == 0:
            continue
        if text_repr_type == "quad":
            rect = cv2.minAreaRect(grown)
            if min(rect[1]) < min_text_width:
                continue
            grown = cv2.boxPoints(rect)
        elif len(grown) < 4:
            continue
        polygons.append((grown / scale).astype(np.float32))
        scores.append(float(score))
    return {"polygons": polygons, "scores": scores}
