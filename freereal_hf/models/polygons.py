"""Polygon geometry shared by every detector's targets and post-processing.

Coordinates are always ``(x, y)`` in pixels, polygons ``K x 2`` arrays. This module imports no other
module of the package, so that it can be shipped flat next to a model for ``trust_remote_code``.
"""

from __future__ import annotations

from itertools import chain
from typing import Callable, Sequence

import numba
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
    return polygon_offsetter(polygon)(distance)


def polygon_offsetter(polygon: np.ndarray, dtype: type = np.float32) -> Callable[[float], np.ndarray]:
    """:func:`offset_polygon` for several distances of one polygon: one pyclipper set-up, then a function of the
    distance giving an ``M x 2`` array (possibly ``0 x 2``) of ``dtype`` (float32, or int32 for ``cv2.fillPoly``:
    pyclipper's coordinates are integers, so both hold them exactly)."""
    pco = _clipper_offset(polygon)

    def offset(distance: float) -> np.ndarray:
        piece = _one_piece(pco.Execute(distance))
        # pyclipper's nested lists of ints, read as one flat stream (half the time of np.asarray)
        return np.fromiter(chain.from_iterable(piece), dtype, 2 * len(piece)).reshape(-1, 2)

    return offset


def offset_outlines(points: np.ndarray, ends: np.ndarray, polygons: Sequence[int], distances: Sequence[float]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`offset_polygon` for many ``(polygon, distance)`` requests at once, as int32 outlines one after
    another: what the kernel targets ask of pyclipper for the outlines they cannot make themselves, and DBNet's
    post-processing for every region it grows.

    Args:
        points: ``N x 2`` integer ``(x, y)`` vertices of all polygons, one after another.
        ends: ``P`` ints, where each polygon's points end.
        polygons, distances: the requests, polygon indices (requests for one polygon next to each other: pyclipper
            is set up once for them) and their offsets (each distinct one computed once per polygon).

    Returns:
        ``(outlines, first, stop)``: ``M x 2`` int32 vertices; for each request, where its outline lies in them
        (``first == stop``: empty or split).
    """
    pts = np.asarray(points).reshape(-1, 2)
    coords: list[int] = []  # every outline's x, y, x, y, ... (one conversion at the end)
    first, stop = np.empty(len(polygons), np.int64), np.empty(len(polygons), np.int64)
    last, done = -1, {}
    for i, (index, distance) in enumerate(zip(polygons, distances)):
        if index != last:
            pco, last, done = _clipper_offset(pts[ends[index - 1] if index else 0:ends[index]]), index, {}
        if distance not in done:
            begin = len(coords)
            coords.extend(chain.from_iterable(_one_piece(pco.Execute(distance))))
            done[distance] = begin // 2, len(coords) // 2
        first[i], stop[i] = done[distance]
    return np.array(coords, np.int32).reshape(-1, 2), first, stop


def _clipper_offset(polygon: np.ndarray) -> pyclipper.PyclipperOffset:
    """pyclipper set up for MMOCR's offsets of one closed polygon (round joins)."""
    pco = pyclipper.PyclipperOffset()
    # a list of Python numbers: pyclipper reads it five times faster than a numpy array (same values)
    pco.AddPath(np.asarray(polygon).reshape(-1, 2).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return pco


def _one_piece(pieces: list) -> list:
    """MMOCR's reading of pyclipper's result: no piece, or pieces of different lengths, is empty; otherwise the
    first piece."""
    if not pieces or (len(pieces) > 1 and len({len(p) for p in pieces}) > 1):
        return []
    return pieces[0]


def polygon_area_perimeter(polygon: np.ndarray) -> tuple[float, float]:
    """Absolute area and closed perimeter of a ``K x 2`` polygon, as shapely computes them (see
    :func:`polygon_areas_perimeters`)."""
    pts = np.asarray(polygon).reshape(-1, 2)
    areas, perimeters = polygon_areas_perimeters(pts, np.array([len(pts)]))
    return float(areas[0]), float(perimeters[0])


def shrink_distances(points: np.ndarray, ends: Sequence[int], ratios: Sequence[float], max_shrink_dist: float
                     ) -> np.ndarray:
    """MMOCR's shrink offsets (``SegBasedModuleLoss._generate_kernels``: PSENet's and PANet's kernels, DBNet's
    shrink map) of every polygon for each ratio, negative (pyclipper shrinks), ``P x R``:
    ``-min(int(A (1 - r * r) / (L + 0.001) + 0.5), max_shrink_dist)`` with ``A`` and ``L`` the polygon's area and
    perimeter as shapely gives them (:func:`polygon_areas_perimeters`), the rest in the same float64 operations
    as MMOCR's Python. ``points``: ``N x 2`` integer ``(x, y)`` vertices of all
    polygons, one after another; ``ends``: where each polygon's points end."""
    return _shrink_distances(np.ascontiguousarray(points, np.float64).reshape(-1, 2),
                             np.ascontiguousarray(ends, np.int64), np.asarray(ratios, np.float64),
                             float(max_shrink_dist))


@numba.njit(cache=True)
def _shrink_distances(points, ends, ratios, max_shrink_dist):  # pragma: no cover - compiled
    """:func:`shrink_distances` on float64 points (MMOCR's float64 operations in its order)."""
    areas, perimeters = _areas_perimeters(points, ends)
    out = np.empty((len(ends), len(ratios)))
    for p in range(len(ends)):
        for k in range(len(ratios)):
            shrink = np.floor(areas[p] * (1 - ratios[k] * ratios[k]) / (perimeters[p] + 0.001) + 0.5)  # int(x >= .5)
            out[p, k] = -np.minimum(shrink, max_shrink_dist)  # whole numbers unless max_shrink_dist is not
    return out


@numba.njit(cache=True)
def ends_split(ends: np.ndarray, count: int, least: int = 0) -> bool:  # pragma: no cover - compiled
    """Whether ``ends`` (``P`` int64) split ``count`` points into polygons one after another, each of at least
    ``least`` points: every end at least ``least`` past the one before (0 before the first), the last at ``count``.
    The check every function taking that layout makes before its compiled loops trust it."""
    start = 0
    for end in ends:
        if end - start < least:
            return False
        start = end
    return start == count


def polygon_areas_perimeters(points: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute area and closed perimeter of every polygon, to the bit as shapely 2 (GEOS 3.14) gives them for
    ``Polygon(p).area`` and ``.length`` (what MMOCR computes its shrink and grow distances from): GEOS's float64
    operations in GEOS's order (the shoelace relative to the first x, then the segments' lengths one after
    another), compiled, for all polygons in one call.

    Args:
        points: ``N x 2`` ``(x, y)`` vertices of all polygons, one after another (read as float64).
        ends: ``P`` ints, where each polygon's points end (``np.cumsum`` of their lengths).

    Returns:
        ``(areas, perimeters)``, ``P`` float64 each. Fewer than 3 points give area 0 (2 points: twice their
        distance as perimeter; shapely refuses such polygons).
    """
    return _areas_perimeters(np.ascontiguousarray(points, np.float64).reshape(-1, 2),
                             np.ascontiguousarray(ends, np.int64))


@numba.njit(cache=True)
def _areas_perimeters(points, ends):  # pragma: no cover - compiled
    areas = np.zeros(len(ends))
    perimeters = np.zeros(len(ends))
    start = 0
    for p in range(len(ends)):
        end = ends[p]
        k = end - start
        # the ring closed with its first point (a ring given closed gains a zero-length step: same sums)
        if k >= 2:
            x0 = points[start, 0]
            total = 0.0
            p1y = points[start, 1]
            p2x, p2y = points[start + 1, 0] - x0, points[start + 1, 1]
            for i in range(1, k):  # ring points 1 .. k - 1 between their neighbours; ring point k is the first
                p0y = p1y
                p1x, p1y = p2x, p2y
                j = start + i + 1 if i + 1 < k else start
                p2x, p2y = points[j, 0] - x0, points[j, 1]
                total += p1x * (p0y - p2y)
            areas[p] = abs(total / 2.0)
            length = 0.0
            for i in range(1, k + 1):
                j = start + i if i < k else start
                dx = points[j, 0] - points[start + i - 1, 0]
                dy = points[j, 1] - points[start + i - 1, 1]
                length += np.sqrt(dx * dx + dy * dy)
            perimeters[p] = length
        start = end
    return areas, perimeters
