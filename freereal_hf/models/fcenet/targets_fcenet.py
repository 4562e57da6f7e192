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

import math
from typing import Sequence

import cv2
import numpy as np

EPS = 1e-8


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between ``a`` (``2`` or ``N x 2``) and ``b`` (same), in radians."""
    ua = a / (np.linalg.norm(a, axis=-1, keepdims=True) + EPS)
    ub = b / (np.linalg.norm(b, axis=-1, keepdims=True) + EPS)
    return np.arccos(np.clip(np.sum(ua * ub, axis=-1), -1.0, 1.0))


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
    following = np.arange(1, n + 1) % n  # index i -> i + 1 (np.roll by -1, without its per-call cost)
    edges = points[following] - points
    prev, nxt = edges[np.arange(-1, n - 1)], edges[following]
    theta_sum = _angle(edges, prev) + _angle(edges, nxt)
    adjacent = _angle(prev, nxt)
    centre = points.mean(axis=0)
    to_centre = np.linalg.norm(points - centre, axis=-1)
    dist = np.maximum(to_centre[following], to_centre)
    score = 0.5 * (theta_sum / np.pi) + 0.15 * (adjacent / np.pi) + 0.35 * (dist / (dist.max() + EPS))
    position = np.zeros(n)
    if n % 2 == 0:
        position[n // 2 - 1] += 1
        position[-1] += 1
    score = score + 0.1 * position
    x = np.arange(n - 3) / float(n - 4)
    gaussian = 1.0 / (np.sqrt(2.0 * np.pi) * 0.5) * np.exp(-np.power((x - 0.5) / 0.5, 2.0) / 2)
    gaussian = gaussian / gaussian.max()
    padded = np.concatenate([score, score])
    matrix = score[:, None] + padded[np.arange(n)[:, None] + np.arange(2, n - 1)] * gaussian * 0.3
    head_start, tail_increment = np.unravel_index(matrix.argmax(), matrix.shape)
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


def _edge_lengths(line: np.ndarray) -> np.ndarray:
    return np.sqrt((line[1:, 0] - line[:-1, 0]) ** 2 + (line[1:, 1] - line[:-1, 1]) ** 2)


def resample_line(line: np.ndarray, n: int) -> np.ndarray:
    """``n`` points equally spaced along a polyline (``K x 2``), its two ends included. Positions and weights are
    float32 as in MMOCR (numpy 1.x kept float32 arrays float32 against float64 scalars)."""
    lengths = _edge_lengths(line)
    t_org = np.zeros(len(lengths) + 1)
    np.cumsum(lengths, out=t_org[1:])
    ts = np.arange(1, n - 1, dtype=np.float32) * np.float32(np.sum(lengths) / (n - 1))
    edge = np.minimum(np.searchsorted(t_org[1:len(lengths)], ts, side="left"), len(lengths) - 1)
    t_l, t_r = t_org[edge], t_org[edge + 1]
    span = (t_r - t_l + EPS).astype(np.float32)
    w0 = ((t_r - ts).astype(np.float32) / span).astype(np.float64)[:, None]
    w1 = ((ts - t_l).astype(np.float32) / span).astype(np.float64)[:, None]
    out = np.empty((n, 2))
    out[0], out[-1] = line[0], line[-1]
    out[1:-1] = w0 * line[edge] + w1 * line[edge + 1]
    return out


def center_region_quads(polygon: np.ndarray, resample_step: float = 4.0, shrink_ratio: float = 0.3
                        ) -> list[np.ndarray]:
    """The int32 quads (``4 x 2``) whose union is the text centre region of one polygon (level pixels)."""
    top, bottom = sidelines(polygon)
    length = (np.sum(_edge_lengths(top)) + np.sum(_edge_lengths(bottom))) / 2
    n = max(int(float(length) / resample_step) + 1, 3)
    top, bottom = resample_line(top, n), resample_line(bottom, n)[::-1]
    centre = (top + bottom) / 2
    head_cut = int(np.linalg.norm(top[0] - bottom[0]) / 4.0 // resample_step)
    tail_cut = int(np.linalg.norm(top[-1] - bottom[-1]) / 4.0 // resample_step)
    if len(centre) > head_cut + tail_cut + 2:
        keep = slice(head_cut, len(centre) - tail_cut)
        centre, top, bottom = centre[keep], top[keep], bottom[keep]
    upper = centre + (top - centre) * shrink_ratio
    lower = centre + (bottom - centre) * shrink_ratio
    return list(np.stack([upper[:-1], upper[1:], lower[1:], lower[:-1]], axis=1).astype(np.int32))


def resample_polygon(polygon: np.ndarray, n: int = 400) -> np.ndarray:
    """About ``n`` points along the closed outline: each edge gets ``int(n * its share of the perimeter)``
    equally spaced points, starting at its first vertex."""
    polygon = np.asarray(polygon, np.float64)
    steps = polygon[np.arange(1, len(polygon) + 1) % len(polygon)] - polygon
    lengths = np.sqrt(steps[:, 0] ** 2 + steps[:, 1] ** 2)
    counts = (lengths / (sum(lengths.tolist()) + 1e-8) * n).astype(np.int32)  # Python's sum: left to right
    edge = np.repeat(np.arange(len(polygon)), counts)
    # k-th point of its edge: position in the output minus where the edge's points start
    k = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    return polygon[edge] + steps[edge] / counts[edge][:, None] * k[:, None]


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
    (``h x w`` uint8 0/1), ``mask`` (``h x w`` float32) and ``fourier`` (``2 (2k + 1) x h x w`` float32)."""
    h, w = size
    k = 2 * degree + 1
    fourier = np.zeros((2 * k, h, w), np.float32)
    kept = []
    for p in polygons:
        signature = fourier_signature(p, degree)
        if signature is None:
            ignored = [*ignored, p]
            continue
        kept.append(p)
        inside = _fill(size, [p], 1, 0).astype(bool)
        ys, xs = np.nonzero(inside)
        fourier[:k, ys, xs] = signature[:, 0:1]
        fourier[k:, ys, xs] = signature[:, 1:2]
        fourier[degree, ys, xs] = signature[degree, 0] - xs
        fourier[k + degree, ys, xs] = signature[degree, 1] - ys
    center = np.zeros(size, np.uint8)
    quads = [q for p in kept for q in center_region_quads(p, resample_step, shrink_ratio)]
    if quads:
        cv2.fillPoly(center, quads, 1)
    return {"text": _fill(size, kept, 1, 0), "center": center,
            "mask": _fill(size, ignored, 0, 1).astype(np.float32), "fourier": fourier}


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
