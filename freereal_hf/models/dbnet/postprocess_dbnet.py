"""DBNet post-processing: probability map -> text polygons, as MMOCR 1.0.1's ``DBPostprocessor``.

Input: one ``H x W`` probability map at the network input size. Output: polygons as ``K x 2`` float32
arrays of ``(x, y)``, divided by ``scale_factor = (sx, sy)`` (input size / original size) so they are in
original-image pixels, and their scores (mean probability inside the approximated contour).
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np

from ..contours import approximate_contours, select_contours, threshold_contours
from ..polygons import offset_outlines, polygon_areas_perimeters
from ..raster import polygon_means


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


def _thin_contours(points: np.ndarray, ends: np.ndarray, unclip_ratio: float, min_width: float) -> np.ndarray:
    """Which contours (``N x 2`` integer ``(x, y)`` points, one contour after another up to each of ``ends``, as
    :func:`~freereal_hf.models.contours.threshold_contours` gives them) are too thin once grown, by
    :func:`_too_thin`'s bound, whatever ``approxPolyDP`` keeps of them, known before approximating: the kept points
    are some of the contour's in order, so their rectangles lie in the contour's, their perimeter is at most the
    contour's ``L``, and their (algebraic) area at most ``L^2 / (4 pi)`` (the isoperimetric inequality), i.e. the
    growing distance at most ``unclip_ratio * L / (4 pi)``; a 4-point contour keeps all four points or drops below
    four, so its own distance counts. Contours of fewer than 4 or more than 64 points are not tested (``False``)."""
    areas, lengths = polygon_areas_perimeters(points, ends)
    return _thin_rectangles(points, ends, areas, lengths, float(unclip_ratio), float(min_width))


@numba.njit(cache=True)
def _thin_rectangles(points, ends, areas, lengths, unclip_ratio, min_width):  # pragma: no cover - compiled
    """:func:`_thin_contours`' test, given the contours' ``areas`` and ``lengths``. Any rectangle around a contour
    along one of its edges (or the axes), grown by the distance bound plus a pixel on every side, bounds the grown
    region's minimum-area rectangle, as in :func:`_too_thin`; the bound keeps a relative margin of 1e-5 against the
    float32 rounding of OpenCV's ``minAreaRect``."""
    out = np.zeros(len(ends), np.bool_)
    limit = min_width * min_width * (1.0 - 1e-5)
    start = 0
    for c in range(len(ends)):
        end = ends[c]
        k = end - start
        if 4 <= k <= 64 and lengths[c] > 0.0:
            if k == 4:
                distance = areas[c] * unclip_ratio / lengths[c]
            else:
                distance = unclip_ratio * lengths[c] / (4.0 * math.pi)
            margin = 2.0 * (distance * (1.0 + 1e-9) + 1.0)
            best = math.inf
            for e in range(-1, k):  # the axes, then each edge's direction
                if e < 0:
                    ux, uy = 1.0, 0.0
                else:
                    i = start + e
                    j = i + 1 if i + 1 < end else start
                    ux, uy = float(points[j, 0] - points[i, 0]), float(points[j, 1] - points[i, 1])
                    norm = math.sqrt(ux * ux + uy * uy)
                    if norm == 0.0:
                        continue
                    ux, uy = ux / norm, uy / norm
                lo_a = lo_b = math.inf
                hi_a = hi_b = -math.inf
                for i in range(start, end):
                    a = points[i, 0] * ux + points[i, 1] * uy
                    b = points[i, 1] * ux - points[i, 0] * uy
                    lo_a, hi_a = min(lo_a, a), max(hi_a, a)
                    lo_b, hi_b = min(lo_b, b), max(hi_b, b)
                best = min(best, (hi_a - lo_a + 1e-9 + margin) * (hi_b - lo_b + 1e-9 + margin))
            out[c] = best < limit
        start = end
    return out


def _counts(ends: np.ndarray) -> np.ndarray:
    """Points per contour from the contours' ``ends`` (``np.diff(ends, prepend=0)``, without its concatenation)."""
    counts = ends.copy()
    counts[1:] -= ends[:-1]
    return counts


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
    probability >= ``min_text_score`` (not NaN: a region with NaN probabilities inside is dropped, where MMOCR
    would keep it with a NaN score); grown by ``area * unclip_ratio / perimeter``; for ``"quad"`` the
    minimum-area rectangle, dropped when its short side is below ``min_text_width``.

    Returns:
        ``{"polygons": [K x 2 float32 (x, y)], "scores": [float]}`` in original-image pixels.
    """
    score_map = np.ascontiguousarray(prob, dtype=np.float32)
    points, ends = threshold_contours(score_map, mask_thr)
    ends = ends[:max_candidates + 1]
    points = points[:ends[-1] if len(ends) else 0]
    scale = np.asarray(scale_factor, np.float32)
    polygons, scores = [], []
    # contours of fewer than 4 points cannot approximate to 4 (single-pixel noise, mostly); in quad mode, most
    # noise blobs are dropped before approximating (same result)
    keep = _counts(ends) >= 4
    if text_repr_type == "quad" and len(ends):
        keep &= ~_thin_contours(points, ends, unclip_ratio, min_text_width)
    points, ends = approximate_contours(*select_contours(points, ends, keep), epsilon_ratio)
    keep = _counts(ends) >= 4
    if not keep.any():
        return {"polygons": polygons, "scores": scores}
    points, ends = select_contours(points, ends, keep)
    # the growing distance from shapely's area and length, as MMOCR's, and the score: each for all regions in one
    # compiled call
    areas, lengths = polygon_areas_perimeters(points, ends)
    region_scores = polygon_means(score_map, points, ends)
    distances = areas * unclip_ratio / np.where(lengths > 0, lengths, 1.0)
    regions = []  # the regions to grow
    start = 0
    for region, (end, length, distance, score) in enumerate(zip(ends.tolist(), lengths.tolist(), distances.tolist(),
                                                                region_scores.tolist())):
        pts, start = points[start:end], end
        if length == 0 or not score >= min_text_score:
            continue  # nothing to grow, or not text (a NaN score too: NaN probabilities inside find no text)
        # (any of these tests drops the contour, in any order). The grown region holds a disk of radius
        # distance - 1 (Clipper's arcs sag at most 0.25 pixel, its rounding moves a point at most 0.71), so where
        # that disk is wider than min_text_width the region cannot be too thin and the test is skipped
        if text_repr_type == "quad" and 2 * (distance - 1.5) < min_text_width \
                and _too_thin(pts, distance, min_text_width):
            continue
        regions.append(region)
    # every region grown by pyclipper in one call, one conversion (MMOCR's offset_polygon for each)
    outlines, first, stop = offset_outlines(points, ends, regions, distances[regions].tolist())
    for region, a, b in zip(regions, first.tolist(), stop.tolist()):
        grown = outlines[a:b].astype(np.float32)
        if len(grown) == 0:
            continue
        if text_repr_type == "quad":
            rect = cv2.minAreaRect(grown)
            if min(rect[1]) < min_text_width:
                continue
            grown = cv2.boxPoints(rect)
        elif len(grown) < 4:
            continue
        polygons.append((grown / scale).astype(np.float32, copy=False))
        scores.append(float(region_scores[region]))
    return {"polygons": polygons, "scores": scores}
