"""Filled polygons in compiled calls, equal to ``cv2.fillPoly`` (+ ``cv2.mean``).

DBNet's post-processing scores every candidate region by the mean probability inside its approximated contour, as
MMOCR 1.0.1 does: a mask filled by ``cv2.fillPoly`` on the region's bounding box, then ``cv2.mean``. Per region
that is five OpenCV calls and a few array slices, about 16 us, mostly calling; :func:`polygon_means` does all of an
image's regions in one call. It fills each polygon as OpenCV 4.x does for integer points (``shift=0``,
8-connected lines): every edge drawn as a Bresenham line from its left end, then each row filled between pairs
of edge crossings kept in 16.16 fixed point, the slope truncated towards zero as C divides. ``cv2.mean`` with a
mask adds the masked values one by one in float64, row by row, and multiplies the sum by ``1 / count``; so does
this. The first call checks both against OpenCV on a fixed set of awkward polygons and uses OpenCV itself if
anything differs (another OpenCV version), so results never depend on the copy being right.

The kernel targets fill every shrunk outline into its map: :func:`fill_polygons` does all of them in one call,
with OpenCV's clipping where an outline reaches past the map (``clipLine`` for its lines, and each edge along its
clipped line from its own first row), checked against OpenCV the same way.

Coordinates are ``(x, y)`` pixels; :func:`polygon_means`' polygons must lie inside the map (contours found in it
always do).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numba
import numpy as np

from .polygons import ends_split

_SHIFT = 16
_ONE = 1 << _SHIFT


def polygon_means(score_map: np.ndarray, points: np.ndarray, ends: Sequence[int]) -> np.ndarray:
    """Mean of ``score_map`` over each filled polygon, as ``cv2.mean(map, mask)`` with ``mask`` from
    ``cv2.fillPoly`` (edges included).

    Args:
        score_map: ``H x W`` float32 map.
        points: ``N x 2`` integer ``(x, y)`` vertices of all polygons, one after another, each with
            ``0 <= x < W`` and ``0 <= y < H``.
        ends: ``P`` ints, where each polygon's points end (``np.cumsum`` of their lengths); every polygon has at
            least one point.

    Returns:
        ``P`` float64 means.
    """
    score_map = np.ascontiguousarray(score_map, np.float32)
    points = np.ascontiguousarray(points, np.int32).reshape(-1, 2)
    ends = np.ascontiguousarray(ends, np.int64).reshape(-1)
    h, w = score_map.shape
    problem = _check(points, ends, w, h)
    if problem == 1:
        raise ValueError("polygon_means: every polygon needs at least one point, and ends must end at len(points)")
    if problem == 2:
        raise ValueError(f"polygon_means: polygon points must lie inside the {w} x {h} map")
    if not _agrees_with_opencv():
        return _opencv_means(score_map, points, ends)
    return _means(score_map, points, ends)


@numba.njit(cache=True)
def _check(points, ends, w, h):  # pragma: no cover - compiled
    """1: ``ends`` do not split ``points`` into non-empty polygons; 2: a point lies outside the map; else 0."""
    if not ends_split(ends, len(points), 1):
        return 1
    for i in range(len(points)):
        if not (0 <= points[i, 0] < w and 0 <= points[i, 1] < h):
            return 2
    return 0


def _opencv_means(score_map: np.ndarray, points: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The reference: each polygon filled by ``cv2.fillPoly`` on its bounding box, averaged by ``cv2.mean``."""
    out = np.empty(len(ends))
    start = 0
    for i, end in enumerate(ends.tolist()):
        pts = points[start:end]
        x, y, bw, bh = cv2.boundingRect(pts)
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(mask, [pts], 1, offset=(-x, -y))
        out[i] = cv2.mean(score_map[y:y + bh, x:x + bw], mask)[0]
        start = end
    return out


@lru_cache(maxsize=1)
def _agrees_with_opencv() -> bool:
    """Whether :func:`_means` gives the installed OpenCV's values to the bit on 400 maps of random polygons
    (self-intersecting, repeated points, lines, single points, long slivers; fixed seed)."""
    rng = np.random.default_rng(2018)
    for trial in range(400):
        h, w = int(rng.integers(1, 48)), int(rng.integers(1, 48))
        score_map = rng.random((h, w), dtype=np.float32) * np.float32(rng.choice([1.0, 1000.0]))
        count = int(rng.integers(1, 6))
        lengths = rng.integers(1, 12, count)
        points = np.stack([rng.integers(0, w, lengths.sum()), rng.integers(0, h, lengths.sum())], 1).astype(np.int32)
        ends = np.cumsum(lengths)
        if not np.array_equal(_means(score_map, points, ends), _opencv_means(score_map, points, ends)):
            return False
    return True


@numba.njit(cache=True)
def _clip_line(w, h, x1, y1, x2, y2):  # pragma: no cover - compiled
    """OpenCV's ``clipLine`` for a ``w x h`` image: ``(inside, x1, y1, x2, y2)``, the ends moved onto the border
    as OpenCV moves them (float64 steps truncated towards zero; also when the line misses the image, which
    ``CollectPolyEdges`` does not ask)."""
    right, bottom = w - 1, h - 1
    c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8
    c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += np.int64(float(a - y1) * (x2 - x1) / (y2 - y1))
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += np.int64(float(a - y2) * (x2 - x1) / (y2 - y1))
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += np.int64(float(a - x1) * (y2 - y1) / (x2 - x1))
                x1 = a
                c1 = 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += np.int64(float(a - x2) * (y2 - y1) / (x2 - x1))
                x2 = a
                c2 = 0
    return (c1 | c2) == 0, x1, y1, x2, y2


@numba.njit(cache=True)
def _line(mask, x1, y1, x2, y2, value=1):  # pragma: no cover - compiled
    """OpenCV's 8-connected ``Line`` of ``value`` (its ``LineIterator``): clipped to ``mask`` by ``clipLine``
    when an end lies outside, then Bresenham from the left end (``err = dx - 2 dy``, a diagonal step while
    ``err < 0``)."""
    h, w = mask.shape
    if not (0 <= x1 < w and 0 <= x2 < w and 0 <= y1 < h and 0 <= y2 < h):
        inside, x1, y1, x2, y2 = _clip_line(w, h, x1, y1, x2, y2)
        if not inside:
            return
    dx, dy = x2 - x1, y2 - y1
    if dx < 0:
        dx, dy = -dx, -dy
        x1, y1 = x2, y2
    sy = 1
    if dy < 0:
        dy = -dy
        sy = -1
    steep = dy > dx
    if steep:
        dx, dy = dy, dx
    err = dx - (dy + dy)
    x, y = x1, y1
    for _ in range(dx + 1):
        mask[y, x] = value
        if err < 0:
            err += dx + dx - (dy + dy)
            x += 1
            y += sy
        else:
            err -= dy + dy
            if steep:
                y += sy
            else:
                x += 1


@numba.njit(cache=True)
def _tdiv(a, b):  # pragma: no cover - compiled
    """C's integer division (truncates towards zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@numba.njit(cache=True)
def _fill(mask, points, start, end, x0, y0, value=1):  # pragma: no cover - compiled
    """``cv2.fillPoly(mask, [points[start:end]], value, offset=(-x0, -y0))``, OpenCV's clipping included where
    the polygon reaches past ``mask``."""
    m = end - start
    y_top = np.empty(m, np.int64)
    y_stop = np.empty(m, np.int64)
    xs = np.empty(m, np.int64)
    slopes = np.empty(m, np.int64)
    order = np.empty(m, np.int64)
    active = np.empty(m, np.int64)
    n = 0
    h, w = mask.shape
    px, py = np.int64(points[end - 1, 0]) - x0, np.int64(points[end - 1, 1]) - y0
    for i in range(start, end):
        qx, qy = np.int64(points[i, 0]) - x0, np.int64(points[i, 1]) - y0
        _line(mask, px, py, qx, qy, value)
        if py != qy:  # horizontal edges are their line only
            # an edge reaching past the border runs along its clipped line (CollectPolyEdges), from its own rows
            ax, ay, bx, by = px, py, qx, qy
            if not (0 <= px < w and 0 <= qx < w and 0 <= py < h and 0 <= qy < h):
                _, cx0, cy0, cx1, cy1 = _clip_line(w, h, px, py, qx, qy)
                ax, bx = cx0, cx1
                if cy0 != cy1:
                    ay, by = cy0, cy1
            slope = _tdiv((bx - ax) << _SHIFT, by - ay)
            if py < qy:
                y_top[n], y_stop[n], xs[n] = py, qy, (ax << _SHIFT) + (py - ay) * slope
            else:
                y_top[n], y_stop[n], xs[n] = qy, py, (bx << _SHIFT) + (qy - by) * slope
            slopes[n] = slope
            n += 1
        px, py = qx, qy
    if n < 2:
        return
    # (FillEdgeCollection's early return for edges wholly off the image is not needed: their rows draw nothing)
    for e in range(n):  # edges by first row (insertion sort: a handful of edges)
        b = e - 1
        while b >= 0 and y_top[order[b]] > y_top[e]:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = e
    y_end = y_stop[0]
    for e in range(n):
        y_end = max(y_end, y_stop[e])
    y_end = min(y_end, mask.shape[0])
    n_active = 0
    nxt = 0
    y = y_top[order[0]]
    while y < y_end:
        k = 0  # edges ending on this row leave
        for a in range(n_active):
            if y_stop[active[a]] != y:
                active[k] = active[a]
                k += 1
        n_active = k
        while nxt < n and y_top[order[nxt]] == y:
            active[n_active] = order[nxt]
            n_active += 1
            nxt += 1
        for a in range(1, n_active):  # by current x
            e = active[a]
            b = a - 1
            while b >= 0 and xs[active[b]] > xs[e]:
                active[b + 1] = active[b]
                b -= 1
            active[b + 1] = e
        for a in range(0, n_active - 1, 2):
            left, right = active[a], active[a + 1]
            if y >= 0:  # rows above the image: the edges only move on
                x1 = (xs[left] + _ONE - 1) >> _SHIFT
                x2 = xs[right] >> _SHIFT
                if x1 < w and x2 >= 0:
                    mask[y, max(x1, 0):min(x2, w - 1) + 1] = value
            xs[left] += slopes[left]
            xs[right] += slopes[right]
        if n_active == 0 and nxt >= n:
            break
        y += 1


@numba.njit(cache=True)
def _means(score_map, points, ends):  # pragma: no cover - compiled
    out = np.empty(len(ends))
    boxes = np.empty((len(ends), 4), np.int64)  # x0, y0, x1, y1 of each polygon
    largest = 0
    start = 0
    for p in range(len(ends)):
        x0, y0 = points[start, 0], points[start, 1]
        x1, y1 = x0, y0
        for i in range(start + 1, ends[p]):
            x0, x1 = min(x0, points[i, 0]), max(x1, points[i, 0])
            y0, y1 = min(y0, points[i, 1]), max(y1, points[i, 1])
        boxes[p, 0], boxes[p, 1], boxes[p, 2], boxes[p, 3] = x0, y0, x1, y1
        largest = max(largest, (y1 - y0 + 1) * (x1 - x0 + 1))
        start = ends[p]
    scratch = np.empty(largest, np.uint8)  # one mask buffer for every polygon's box
    start = 0
    for p in range(len(ends)):
        x0, y0, x1, y1 = boxes[p, 0], boxes[p, 1], boxes[p, 2], boxes[p, 3]
        mask = scratch[:(y1 - y0 + 1) * (x1 - x0 + 1)].reshape((y1 - y0 + 1, x1 - x0 + 1))
        mask[:] = 0
        _fill(mask, points, start, ends[p], x0, y0)
        total = 0.0  # cv2.mean: float64, one value after another, row by row, times 1 / count
        count = 0
        for y in range(mask.shape[0]):
            row = score_map[y0 + y, x0:x1 + 1]
            for x in range(mask.shape[1]):
                if mask[y, x]:
                    total += row[x]
                    count += 1
        out[p] = total * (1.0 / count) if count else 0.0
        start = ends[p]
    return out


def fill_polygons(maps: np.ndarray, points: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                  values: np.ndarray) -> None:
    """``cv2.fillPoly(maps[k], [points[starts[p, k]:stops[p, k]]], values[p])`` for every map ``k`` and polygon
    ``p`` in that order (later polygons over earlier ones), all in one compiled call: the kernel targets' fills.

    The same fill as :func:`polygon_means`, plus OpenCV's clipping where an outline reaches past the map
    (``clipLine`` for the lines, and edges along their clipped lines). Checked against the installed OpenCV on
    first use (random outlines in and around small maps, ``uint8`` and ``int16``); OpenCV itself otherwise.

    Args:
        maps: ``K x H x W`` integer maps (``uint8`` or ``int16``), filled in place.
        points: ``N x 2`` int32 ``(x, y)`` vertices of all outlines.
        starts, stops: ``P x K`` int64, where each polygon's outline for each map lies in ``points``
            (``start == stop``: none).
        values: ``P`` ints, each polygon's fill value.
    """
    points = np.ascontiguousarray(points, np.int32).reshape(-1, 2)
    starts = np.ascontiguousarray(starts, np.int64)
    stops = np.ascontiguousarray(stops, np.int64)
    values = np.ascontiguousarray(values, np.int64)
    if starts.ndim != 2 or stops.shape != starts.shape or len(values) != starts.shape[0] or \
            maps.ndim != 3 or maps.shape[0] != starts.shape[1] or not _slices_fit(starts, stops, len(points)):
        raise ValueError("fill_polygons: starts and stops must be P x K slices of the points (K maps), values P")
    if _fills_agree_with_opencv():
        _fill_all(maps, points, starts, stops, values)
        return
    for k in range(starts.shape[1]):
        for p in range(starts.shape[0]):
            if stops[p, k] > starts[p, k]:
                cv2.fillPoly(maps[k], [points[starts[p, k]:stops[p, k]]], int(values[p]))


@lru_cache(maxsize=1)
def _fills_agree_with_opencv() -> bool:
    """Whether :func:`_fill_all` gives the installed OpenCV's maps on 400 sets of random outlines (self-intersecting,
    repeated points, lines, single points; inside, across and beyond the border; fixed seed)."""
    rng = np.random.default_rng(2026)
    for trial in range(400):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        count = int(rng.integers(1, 5))
        lengths = rng.integers(1, 10, count)
        spread = int(rng.choice([0, 3, 30]))
        points = np.stack([rng.integers(-spread, w + spread, lengths.sum()),
                           rng.integers(-spread, h + spread, lengths.sum())], 1).astype(np.int32)
        ends = np.cumsum(lengths)
        starts, stops = (ends - lengths)[:, None], ends[:, None]
        values = rng.integers(1, 200, count)
        for dtype in (np.uint8, np.int16):
            ours = np.zeros((1, h, w), dtype)
            _fill_all(ours, points, starts, stops, values)
            theirs = np.zeros((h, w), dtype)
            for p in range(count):
                cv2.fillPoly(theirs, [points[starts[p, 0]:stops[p, 0]]], int(values[p]))
            if not np.array_equal(ours[0], theirs):
                return False
    return True


@numba.njit(cache=True)
def _slices_fit(starts, stops, count):  # pragma: no cover - compiled
    """Whether every ``starts[p, k]:stops[p, k]`` is a slice of ``count`` points (``0 <= start <= stop <= count``)."""
    for p in range(starts.shape[0]):
        for k in range(starts.shape[1]):
            if not 0 <= starts[p, k] <= stops[p, k] <= count:
                return False
    return True


@numba.njit(cache=True)
def _fill_all(maps, points, starts, stops, values):  # pragma: no cover - compiled
    for k in range(starts.shape[1]):
        for p in range(starts.shape[0]):
            if stops[p, k] > starts[p, k]:
                _fill(maps[k], points, starts[p, k], stops[p, k], 0, 0, values[p])


__all__ = ["polygon_means", "fill_polygons"]
