"""Polygon geometry shared by every detector's targets and post-processing.

Coordinates are always ``(x, y)`` in pixels, polygons ``K x 2`` arrays. This module imports no other
module of the package, so that it can be shipped flat next to a model for ``trust_remote_code``.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyclipper


def offset_polygon(polygon: np.ndarray, distance: float) -> np.ndarray:
    """Offsets a polygon by ``distance`` pixels (positive grows, negative shrinks), round joins.

    Follows MMOCR 1.0.1's ``offset_polygon``: pyclipper works on integer coordinates (the input is
    truncated towards zero), and a result that splits into several pieces counts as empty, except that,
    as in MMOCR, pieces that all have the same number of vertices give the first piece.

    Args:
        polygon: ``K x 2`` (or flat ``2K``) array of ``(x, y)`` vertices.
        distance: offset in pixels.

    Returns:
        ``M x 2`` float32 array, or an array of shape ``(0, 2)`` when the result is empty or split.
    """
    return offset_polygon_by(polygon, [distance])[0]


def offset_polygon_by(polygon: np.ndarray, distances: list[float], dtype: type = np.float32) -> list[np.ndarray]:
    """:func:`offset_polygon` for several distances of one polygon (one pyclipper set-up, each distinct distance
    computed once); returns one ``M x 2`` array (possibly ``0 x 2``) per distance, of ``dtype`` (float32, or int32
    for ``cv2.fillPoly``: pyclipper's coordinates are integers, so both hold them exactly)."""
    pco = pyclipper.PyclipperOffset()
    # a list of Python numbers: pyclipper reads it five times faster than a numpy array (same values)
    pco.AddPath(np.asarray(polygon).reshape(-1, 2).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    done: dict[float, np.ndarray] = {}
    for distance in distances:
        if distance not in done:
            pieces = pco.Execute(distance)
            if not pieces or (len(pieces) > 1 and len({len(p) for p in pieces}) > 1):
                done[distance] = np.zeros((0, 2), dtype)
            else:
                # pyclipper's nested lists of ints, read as one flat stream (half the time of np.asarray)
                done[distance] = np.fromiter(chain.from_iterable(pieces[0]), dtype,
                                             2 * len(pieces[0])).reshape(-1, 2)
    return [done[d] for d in distances]


def polygon_area_perimeter(polygon: np.ndarray) -> tuple[float, float]:
    """Absolute shoelace area and closed perimeter of a ``K x 2`` polygon (as shapely computes them)."""
    pts = np.asarray(polygon, np.float64).reshape(-1, 2)
    nxt = np.concatenate((pts[1:], pts[:1]))  # fewer than 3 points give area 0 (and 2 points twice their distance)
    area = 0.5 * abs(float(pts[:, 0] @ nxt[:, 1] - pts[:, 1] @ nxt[:, 0]))
    step = pts - nxt
    return area, float(np.sqrt((step * step).sum(axis=1)).sum())
