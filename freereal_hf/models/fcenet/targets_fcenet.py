"""FCENet training targets, as MMOCR 1.0.1's ``FCEModuleLoss.get_targets`` builds them.

For one image of input size ``(H, W)`` and each level ``l`` at stride ``s_l`` (8, 16, 32), maps of
``H // s_l x W // s_l`` pixels:

- ``text``: the filled polygons assigned to the level;
- ``center``: their text centre regions (TextSnake's): the polygon is split into head, tail and two sidelines,
  the sidelines are resampled every ``resample_step`` level pixels, a quarter of the head and tail widths is cut
  off, and the band ``center_region_shrink_ratio`` of the half-width around the centre line is filled;
- ``mask``: 1, 0 on the filled ignored polygons of the level;
- ``fourier``: ``2 (2k + 1)`` channels, real parts then imaginary parts of the polygon's Fourier coefficients
  ``c_-k .. c_k`` in level pixels, written on every pixel of the polygon; the ``c_0`` term is stored relative to
  the pixel, ``Re c_0 - x`` and ``Im c_0 - y``. Later polygons overwrite earlier ones.

Level assignment: a polygon (coordinates truncated to integers) goes to every level whose open range
``(lo, hi)`` of ``level_proportion_range`` holds ``max(bbox h, bbox w) / H``; the ranges overlap, so a polygon
may train two levels, and one outside every range trains none.

Every quirk of MMOCR's code is kept, since the targets must equal its own: polygons are truncated towards zero
before being divided by the stride, centre-region quads are truncated to integers and filled in one ``fillPoly``
call (overlapping quads of a sharp bend cancel out), and the Fourier signature starts at the point of least
``y`` among the 8 resampled points nearest the polygon's vertical centre line (the paper starts at the
rightmost point). A polygon whose outline is too short to resample (degenerate) is treated as ignored.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import cv2
import numba
import numpy as np

EPS = 1e-8


@functools.lru_cache(maxsize=None)
def _gaussian(n: int) -> np.ndarray:
    """TextSnake's weights of the tail candidates of an ``n``-vertex polygon (as MMOCR computes them)."""
    x = np.arange(n - 3) / float(n - 4)
    gaussian = 1.0 / (np.sqrt(2.0 * np.pi) * 0.5) * np.exp(-np.power((x - 0.5) / 0.5, 2.0) / 2)
    return gaussian / gaussian.max()


@numba.njit(cache=True)
def _angle(ax: float, ay: float, bx: float, by: float) -> float:
    """Angle between vectors ``a`` and ``b`` in radians, with MMOCR's ``+ 1e-8`` on the norms."""
    na = np.sqrt(ax * ax + ay * ay) + EPS
    nb = np.sqrt(bx * bx + by * by) + EPS
    return np.arccos(min(max((ax / na) * (bx / nb) + (ay / na) * (by / nb), -1.0), 1.0))


@numba.njit(cache=True)
def _head_and_tail_start(points: np.ndarray, gaussian: np.ndarray) -> tuple[int, int]:
    """For a polygon of ``n > 4`` vertices: the head edge's first vertex and the tail's offset (TextSnake's edge
    scores as MMOCR computes them, float64 in its order; the first maximum, as ``np.argmax`` finds it)."""
    n = points.shape[0]
    edges = np.empty((n, 2))
    for i in range(n):
        for c in range(2):
            edges[i, c] = points[(i + 1) % n, c] - points[i, c]
    cx, cy = 0.0, 0.0
    for i in range(n):
        cx += points[i, 0]
        cy += points[i, 1]
    cx, cy = cx / n, cy / n
    to_centre = np.empty(n)
    for i in range(n):
        dx, dy = points[i, 0] - cx, points[i, 1] - cy
        to_centre[i] = np.sqrt(dx * dx + dy * dy)
    dist = np.empty(n)
    for i in range(n):
        dist[i] = max(to_centre[(i + 1) % n], to_centre[i])
    largest = dist.max() + EPS
    score = np.empty(2 * n)
    for i in range(n):
        p, q = (i - 1) % n, (i + 1) % n
        theta_sum = (_angle(edges[i, 0], edges[i, 1], edges[p, 0], edges[p, 1])
                     + _angle(edges[i, 0], edges[i, 1], edges[q, 0], edges[q, 1]))
        adjacent = _angle(edges[p, 0], edges[p, 1], edges[q, 0], edges[q, 1])
        score[i] = 0.5 * (theta_sum / np.pi) + 0.15 * (adjacent / np.pi) + 0.35 * (dist[i] / largest)
    if n % 2 == 0:
        score[n // 2 - 1] += 0.1
        score[n - 1] += 0.1
    score[n:] = score[:n]
    best, head, tail = -np.inf, 0, 0
    for i in range(n):
        for j in range(n - 3):
            value = score[i] + score[i + 2 + j] * gaussian[j] * 0.3
            if value > best or (value != value and best == best):
                best, head, tail = value, i, j
                if value != value:
                    return head, tail
    return head, tail


def head_tail(points: np.ndarray, orientation_thr: float = 2.0) -> tuple[list[int], list[int]]:
    """Indices of the two vertices of the head edge and of the tail edge of a text polygon (``K x 2``, K >= 4).

    Quadrilaterals: the pair of opposite edges that are the ends of the text (the shorter pair, unless the text
    is more than ``orientation_thr`` times taller than wide). Longer polygons: the two edges that score highest
    on the angles they make with their neighbours, their distance from the centre and their position in the
    vertex order (TextSnake's rule as MMOCR implements it).
    """
    n = len(points)
    if n == 4:  # on Python floats: the same IEEE double arithmetic, without numpy's per-call cost
        p = [(float(x), float(y)) for x, y in points]

        def slope(a: int, b: int) -> float:
            return abs((p[b][1] - p[a][1]) / ((p[b][0] - p[a][0]) + EPS))

        def dist(a: int, b: int) -> float:
            dx, dy = p[a][0] - p[b][0], p[a][1] - p[b][1]
            return math.sqrt(dx * dx + dy * dy)

        if slope(0, 1) + slope(2, 3) < slope(1, 2) + slope(3, 0):
            horizontal, vertical = [[0, 1], [2, 3]], [[3, 0], [1, 2]]
        else:
            horizontal, vertical = [[3, 0], [1, 2]], [[0, 1], [2, 3]]
        v_len = sum(dist(a, b) for a, b in vertical)
        h_len = sum(dist(a, b) for a, b in horizontal)
        return (list(horizontal[0]), list(horizontal[1])) if v_len > h_len * orientation_thr \
            else (list(vertical[0]), list(vertical[1]))
    head_start, tail_increment = _head_and_tail_start(np.ascontiguousarray(points, np.float64), _gaussian(n))
    tail_start = (head_start + tail_increment + 2) % n
    head_end, tail_end = (head_start + 1) % n, (tail_start + 1) % n
    if head_end > tail_end:
        head_start, tail_start, head_end, tail_end = tail_start, head_start, tail_end, head_end
    return [int(head_start), int(head_end)], [int(tail_start), int(tail_end)]


def sidelines(points: np.ndarray, orientation_thr: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The top and bottom sidelines of a text polygon, each running from its head to its tail side."""
    head, tail = head_tail(points, orientation_thr)
    doubled = np.vstack([points, points])
    tail_end = tail[1] if tail[1] >= 1 else len(points)
    line1, line2 = doubled[head[1]:tail_end], doubled[tail_end:head[1] + len(points)]
    if (line1.mean(axis=0) - line2.mean(axis=0))[1] > 0:
        return line2, line1
    return line1, line2


@numba.njit(cache=True)
def _sum(values: np.ndarray) -> float:
    """``np.sum`` of a 1-D float64 array, bit for bit: numpy's pairwise summation (sequential below 8 values,
    eight running sums up to 128, halves above)."""
    n = values.shape[0]
    if n < 8:
        total = 0.0
        for i in range(n):
            total += values[i]
        return total
    if n <= 128:
        r = values[:8].copy()
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += values[i + j]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            total += values[i]
            i += 1
        return total
    half = n // 2
    half -= half % 8
    return _sum(values[:half]) + _sum(values[half:])


@numba.njit(cache=True)
def _line_lengths(line: np.ndarray) -> np.ndarray:
    out = np.empty(max(line.shape[0] - 1, 0))
    for i in range(out.shape[0]):
        dx, dy = line[i + 1, 0] - line[i, 0], line[i + 1, 1] - line[i, 1]
        out[i] = np.sqrt(dx * dx + dy * dy)
    return out


@numba.njit(cache=True)
def _resample_line(line: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """:func:`resample_line`, compiled (``lengths``: its :func:`_line_lengths`): the same float32 and float64
    operations in the same order."""
    if line.shape[0] < 2 or n < 2:  # numba does not check bounds
        raise ValueError("resampling needs a line of 2 points or more and n >= 2")
    count = lengths.shape[0]
    t_org = np.zeros(count + 1)
    for i in range(count):
        t_org[i + 1] = t_org[i] + lengths[i]
    step = np.float32(_sum(lengths) / (n - 1))
    out = np.empty((n, 2))
    out[0, 0], out[0, 1] = line[0, 0], line[0, 1]
    out[n - 1, 0], out[n - 1, 1] = line[count, 0], line[count, 1]
    for i in range(1, n - 1):
        ts = np.float32(i) * step
        wide = np.float64(ts)
        edge = 0  # np.searchsorted(t_org[1:count], ts, "left"), capped at count - 1
        while edge < count - 1 and t_org[edge + 1] < wide:
            edge += 1
        t_l, t_r = t_org[edge], t_org[edge + 1]
        span = np.float32(t_r - t_l + EPS)
        w0 = np.float64(np.float32(t_r - wide) / span)
        w1 = np.float64(np.float32(wide - t_l) / span)
        for c in range(2):
            out[i, c] = w0 * line[edge, c] + w1 * line[edge + 1, c]
    return out


def resample_line(line: np.ndarray, n: int) -> np.ndarray:
    """``n >= 2`` points equally spaced along a polyline (``K x 2``, K >= 2), its two ends included. Positions and
    weights are float32 as in MMOCR (numpy 1.x kept float32 arrays float32 against float64 scalars)."""
    line = np.ascontiguousarray(line, np.float64)
    return _resample_line(line, _line_lengths(line), n)


@numba.njit(cache=True)
def _resampled_sidelines(top: np.ndarray, bottom: np.ndarray, resample_step: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    top_lengths, bottom_lengths = _line_lengths(top), _line_lengths(bottom)
    n = max(int((_sum(top_lengths) + _sum(bottom_lengths)) / 2 / resample_step) + 1, 3)
    return _resample_line(top, top_lengths, n), _resample_line(bottom, bottom_lengths, n)[::-1]


@numba.njit(cache=True)
def _band_quads(top: np.ndarray, bottom: np.ndarray, head_cut: int, tail_cut: int, shrink_ratio: float
                ) -> np.ndarray:
    """The centre band's quads, ``M x 4 x 2`` int32 (truncated), between resampled sidelines ``top`` and
    ``bottom`` (``N x 2``, matching points), ``head_cut`` and ``tail_cut`` points left out at the ends."""
    n = top.shape[0]
    first, last = 0, n
    if n > head_cut + tail_cut + 2:
        first, last = head_cut, n - tail_cut
    out = np.empty((last - first - 1, 4, 2), np.int32)
    upper = np.empty((last - first, 2))
    lower = np.empty((last - first, 2))
    for i in range(first, last):
        for c in range(2):
            centre = (top[i, c] + bottom[i, c]) / 2
            upper[i - first, c] = centre + (top[i, c] - centre) * shrink_ratio
            lower[i - first, c] = centre + (bottom[i, c] - centre) * shrink_ratio
    for q in range(last - first - 1):
        for c in range(2):
            out[q, 0, c] = np.int32(upper[q, c])
            out[q, 1, c] = np.int32(upper[q + 1, c])
            out[q, 2, c] = np.int32(lower[q + 1, c])
            out[q, 3, c] = np.int32(lower[q, c])
    return out


def center_region_quads(polygon: np.ndarray, resample_step: float = 4.0, shrink_ratio: float = 0.3
                        ) -> np.ndarray:
    """The quads whose union is the text centre region of one polygon (level pixels): ``M x 4 x 2`` int32.

    The sidelines are resampled and the band built compiled (numba), with MMOCR's float32 and float64 steps in
    its order, so the truncated corners are its own; the end cuts use ``np.linalg.norm`` as MMOCR does."""
    top, bottom = sidelines(polygon)
    top, bottom = _resampled_sidelines(np.ascontiguousarray(top, np.float64),
                                       np.ascontiguousarray(bottom, np.float64), float(resample_step))
    head_cut = int(np.linalg.norm(top[0] - bottom[0]) / 4.0 // resample_step)
    tail_cut = int(np.linalg.norm(top[-1] - bottom[-1]) / 4.0 // resample_step)
    return _band_quads(top, bottom, head_cut, tail_cut, float(shrink_ratio))


@numba.njit(cache=True)
def _resample_polygon(polygon: np.ndarray, n: int) -> np.ndarray:
    count = polygon.shape[0]
    steps = np.empty((count, 2))
    lengths = np.empty(count)
    total = 0.0
    for i in range(count):
        dx, dy = polygon[(i + 1) % count, 0] - polygon[i, 0], polygon[(i + 1) % count, 1] - polygon[i, 1]
        steps[i, 0], steps[i, 1] = dx, dy
        lengths[i] = np.sqrt(dx * dx + dy * dy)
        total += lengths[i]  # left to right, as MMOCR's Python sum
    per_edge = np.empty(count, np.int64)
    for i in range(count):
        per_edge[i] = np.int32(lengths[i] / (total + 1e-8) * n)
    out = np.empty((per_edge.sum(), 2))
    row = 0
    for i in range(count):
        for k in range(per_edge[i]):
            for c in range(2):
                out[row, c] = polygon[i, c] + steps[i, c] / per_edge[i] * k
            row += 1
    return out


def resample_polygon(polygon: np.ndarray, n: int = 400) -> np.ndarray:
    """About ``n`` points along the closed outline (``K x 2``): each edge gets ``int(n * its share of the
    perimeter)`` equally spaced points, starting at its first vertex. Compiled (numba), MMOCR's float64 steps in
    its order."""
    return _resample_polygon(np.ascontiguousarray(polygon, np.float64).reshape(-1, 2), int(n))


def fourier_signature(polygon: np.ndarray, degree: int = 5) -> np.ndarray | None:
    """``(2k + 1) x 2``: real and imaginary parts of the Fourier coefficients ``c_-k .. c_k`` of the outline
    (``K x 2``, any units), clockwise in image coordinates; ``None`` when the outline is degenerate."""
    points = resample_polygon(polygon)
    if len(points) == 0:
        return None
    centred = points - points.mean(axis=0)
    nearest = np.argsort(np.abs(centred[:, 0]))[:8]
    start = nearest[np.argmin(centred[nearest, 1])]
    points = np.concatenate([points[start:], points[:start]])
    spectrum = np.fft.fft(points[:, 0] + 1j * points[:, 1]) / len(points)
    c = np.hstack([spectrum[-degree:], spectrum[:degree + 1]])
    a, b = np.abs(c[degree + 1]), np.abs(c[degree - 1])
    if a < b or (a == b and np.abs(c[degree + 2]) <= np.abs(c[degree - 2])):
        c = c[::-1]
    return np.stack([c.real, c.imag], axis=1)


def _fill(size: tuple[int, int], polygons: Sequence[np.ndarray], value: int, base: int) -> np.ndarray:
    out = np.full(size, base, np.uint8)
    for p in polygons:
        cv2.fillPoly(out, [np.asarray(p).astype(np.int32).reshape(-1, 1, 2)], value)
    return out


def level_targets(size: tuple[int, int], polygons: Sequence[np.ndarray], ignored: Sequence[np.ndarray],
                  degree: int = 5, resample_step: float = 4.0, shrink_ratio: float = 0.3
                  ) -> dict[str, np.ndarray]:
    """The maps of one level: ``size`` its ``(h, w)``, polygons in its pixels. Returns ``text``, ``center``
    (``h x w`` uint8 0/1), ``mask`` (``h x w`` uint8 0/1) and ``fourier`` (``2 (2k + 1) x h x w`` float32)."""
    k = 2 * degree + 1
    kept, signatures = [], []
    for p in polygons:
        signature = fourier_signature(p, degree)
        if signature is None:
            ignored = [*ignored, p]
            continue
        kept.append(p)
        signatures.append(signature)
    # each pixel takes the coefficients of the last polygon that covers it: polygon i + 1 filled in order
    owner = np.zeros(size, np.int32)
    for index, p in enumerate(kept):
        cv2.fillPoly(owner, [np.asarray(p).astype(np.int32).reshape(-1, 1, 2)], index + 1)
    ys, xs = np.nonzero(owner)
    fourier = np.zeros((2 * k, *size), np.float32)
    if kept:
        table = np.stack(signatures)  # polygons x (2k + 1) x 2, float64
        rows = owner[ys, xs] - 1
        fourier[:k, ys, xs] = table[rows, :, 0].T
        fourier[k:, ys, xs] = table[rows, :, 1].T
        fourier[degree, ys, xs] = table[rows, degree, 0] - xs
        fourier[k + degree, ys, xs] = table[rows, degree, 1] - ys
    center = np.zeros(size, np.uint8)
    quads = [q for p in kept for q in center_region_quads(p, resample_step, shrink_ratio)]
    if quads:
        cv2.fillPoly(center, quads, 1)
    return {"text": (owner > 0).view(np.uint8), "center": center,
            "mask": _fill(size, ignored, 0, 1), "fourier": fourier}


def fcenet_targets(polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None, size: tuple[int, int],
                   strides: Sequence[int] = (8, 16, 32),
                   proportion_ranges: Sequence[Sequence[float]] = ((0, 0.4), (0.3, 0.7), (0.6, 1.0)),
                   degree: int = 5, resample_step: float = 4.0, shrink_ratio: float = 0.3
                   ) -> list[dict[str, np.ndarray]]:
    """FCENet's targets of one image: per level (``strides``), the maps of :func:`level_targets`.

    Args:
        polygons: ``K x 2`` float arrays of ``(x, y)`` input pixels (K >= 4 for the centre region: MMOCR needs
            a head, a tail and two sidelines; triangles are treated as ignored).
        ignore: per polygon, whether it is ignored (``None``: none is).
        size: input size ``(H, W)``.
    """
    h, w = size
    ignore = list(ignore) if ignore is not None else [False] * len(polygons)
    per_level: list[tuple[list, list]] = [([], []) for _ in strides]
    for polygon, ignored in zip(polygons, ignore):
        points = np.asarray(polygon, np.float64).reshape(-1, 2).astype(np.int64)
        if len(points) == 0:
            continue
        _, _, box_w, box_h = cv2.boundingRect(points.astype(np.int32).reshape(-1, 1, 2))
        proportion = max(box_h, box_w) / (h + 1e-8)
        for level, (lo, hi) in enumerate(proportion_ranges):
            if lo < proportion < hi:
                scaled = points / strides[level]
                per_level[level][1 if ignored or len(points) < 4 else 0].append(scaled)
    return [level_targets((h // s, w // s), texts, ignored, degree, resample_step, shrink_ratio)
            for s, (texts, ignored) in zip(strides, per_level)]


__all__ = ["fcenet_targets", "level_targets", "fourier_signature", "resample_polygon", "center_region_quads",
           "head_tail", "sidelines", "resample_line"]
