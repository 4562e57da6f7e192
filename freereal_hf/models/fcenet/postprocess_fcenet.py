"""FCENet post-processing: per-level class and Fourier maps -> text polygons, as MMOCR 1.0.1's
``FCEPostprocessor``.

Per level (stride ``s``), from ``cls`` (``4 x h x w`` logits: text region pair, centre region pair) and ``reg``
(``2 (2k + 1) x h x w``: real parts then imaginary parts of ``c_-k .. c_k``, level pixels, ``c_0`` relative to
the pixel):

1. score = ``p_text^alpha * p_center^beta`` (softmax of each pair); holes of ``score > score_thr`` are filled;
2. per outer contour of that mask, every pixel inside it with a positive score proposes the polygon of its
   coefficients (``c_0`` plus the pixel, times ``s``; inverse Fourier transform to ``num_reconstr_points`` points,
   truncated to integers), scored by its score;
3. polygon NMS (IoU > ``nms_thr`` suppressed, highest score first) per contour, then per level; with
   ``text_repr_type="quad"`` each polygon becomes its integer min-area rectangle;
4. NMS over the three levels together; polygons are divided by the scale factor.

The NMS is MMOCR's (invalid polygons repaired with ``buffer(0)``, a multipolygon replaced by its convex hull,
an empty union counting as IoU 1), computed with shapely's vectorised intersections; the union's area is
``A + B - intersection`` (MMOCR builds the union), and polygons whose bounding boxes are apart are not compared
(their IoU is 0). Most other pairs are decided from bounds without intersecting them: the intersection is at
most the overlap of the two boxes (and the smaller area), and at least ``A + B`` minus the area of the box around
both; where those leave a pair open, the same bounds from the convex hulls of the two polygons' points (which hold
the repaired polygons): the intersection is at most that of the two hulls, the union at most the hull of both
(compiled, about 2 us a pair against 70 us for shapely's intersection of two 50-point polygons). A bound decides
only when it lies ``BOUND_MARGIN`` or more from the threshold.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numba
import numpy as np
import shapely
import torch


def fourier_to_points(coeffs: np.ndarray, num_points: int = 50) -> np.ndarray:
    """``M x (2k + 1)`` complex coefficients ``c_-k .. c_k`` -> ``M x num_points x 2`` float64 ``(x, y)``:
    ``z_n = sum_j c_j exp(2 pi i j n / num_points)``."""
    k = (coeffs.shape[1] - 1) // 2
    n = np.arange(num_points)
    basis = np.exp(2j * np.pi * np.outer(np.arange(-k, k + 1), n) / num_points)
    z = coeffs @ basis
    return np.stack([z.real, z.imag], axis=-1)


BOUND_MARGIN = 1e-6  # an IoU bound decides only this far from the threshold (float error is ~1e-12)


@numba.njit(cache=True)
def _cross(ox, oy, ax, ay, bx, by):  # pragma: no cover - compiled
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@numba.njit(cache=True)
def _chain(xs, ys, out):  # pragma: no cover - compiled
    """Andrew's monotone chain: the convex hull of points sorted by ``(x, y)``, counter-clockwise (y up), written
    into ``out``; returns the number of vertices (collinear points left out)."""
    n = len(xs)
    k = 0
    for i in range(n):  # lower hull
        while k >= 2 and _cross(out[k - 2, 0], out[k - 2, 1], out[k - 1, 0], out[k - 1, 1], xs[i], ys[i]) <= 0:
            k -= 1
        out[k, 0], out[k, 1] = xs[i], ys[i]
        k += 1
    lower = k + 1
    for i in range(n - 2, -1, -1):  # upper hull
        while k >= lower and _cross(out[k - 2, 0], out[k - 2, 1], out[k - 1, 0], out[k - 1, 1], xs[i], ys[i]) <= 0:
            k -= 1
        out[k, 0], out[k, 1] = xs[i], ys[i]
        k += 1
    return max(k - 1, 0) if n > 1 else n


@numba.njit(cache=True)
def _area(pts, n):  # pragma: no cover - compiled
    a = 0.0
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        a += pts[i, 0] * pts[j, 1] - pts[j, 0] * pts[i, 1]
    return abs(a) * 0.5


@numba.njit(cache=True)
def _hulls(polygons):  # pragma: no cover - compiled
    """Convex hull of each polygon's points (``M x P x 2``): its vertices counter-clockwise (``M x (2P + 1) x 2``,
    the first ``counts[i]`` rows used), the same vertices sorted by ``(x, y)`` (``M x P x 2``, for merging two
    hulls), and ``counts`` (``M``)."""
    m, p = polygons.shape[0], polygons.shape[1]
    hulls = np.zeros((m, 2 * p + 1, 2))  # (the chain's stack may hold up to 2p points while it runs)
    ordered = np.zeros((m, p, 2))
    counts = np.zeros(m, np.int64)
    for i in range(m):
        order = _lexsort(polygons[i])
        xs, ys = polygons[i, order, 0].copy(), polygons[i, order, 1].copy()
        n = _chain(xs, ys, hulls[i])
        counts[i] = n
        sorted_idx = _lexsort(hulls[i, :n])
        for j in range(n):
            ordered[i, j] = hulls[i, sorted_idx[j]]
    return hulls, ordered, counts


@numba.njit(cache=True)
def _lexsort(pts):  # pragma: no cover - compiled
    """Indices that sort ``K x 2`` points by x, then y (insertion sort: faster than numba's sorts for tens of
    points)."""
    n = pts.shape[0]
    idx = np.arange(n)
    for i in range(1, n):
        v = idx[i]
        j = i - 1
        while j >= 0 and (pts[idx[j], 0] > pts[v, 0] or (pts[idx[j], 0] == pts[v, 0] and pts[idx[j], 1] > pts[v, 1])):
            idx[j + 1] = idx[j]
            j -= 1
        idx[j + 1] = v
    return idx


@numba.njit(cache=True)
def _clip_area(subject, ns, clip, nc, buf_a, buf_b):  # pragma: no cover - compiled
    """Area of the intersection of two convex counter-clockwise polygons (Sutherland-Hodgman)."""
    for i in range(ns):
        buf_a[i, 0], buf_a[i, 1] = subject[i, 0], subject[i, 1]
    n = ns
    src, dst = buf_a, buf_b
    for e in range(nc):
        if n == 0:
            break
        ax, ay = clip[e, 0], clip[e, 1]
        f = e + 1 if e + 1 < nc else 0
        bx, by = clip[f, 0], clip[f, 1]
        k = 0
        for i in range(n):
            px, py = src[i - 1, 0] if i > 0 else src[n - 1, 0], src[i - 1, 1] if i > 0 else src[n - 1, 1]
            qx, qy = src[i, 0], src[i, 1]
            dp, dq = _cross(ax, ay, bx, by, px, py), _cross(ax, ay, bx, by, qx, qy)
            if dq >= 0:
                if dp < 0:
                    t = dp / (dp - dq)
                    dst[k, 0], dst[k, 1] = px + t * (qx - px), py + t * (qy - py)
                    k += 1
                dst[k, 0], dst[k, 1] = qx, qy
                k += 1
            elif dp >= 0:
                t = dp / (dp - dq)
                dst[k, 0], dst[k, 1] = px + t * (qx - px), py + t * (qy - py)
                k += 1
        n = k
        src, dst = dst, src
    return _area(src, n) if n >= 3 else 0.0


@numba.njit(cache=True)
def _hull_decisions(hulls, ordered, counts, areas, top, candidates, threshold, margin):  # pragma: no cover
    """For each candidate paired with ``top``: 1.0 where the IoU provably exceeds ``threshold + margin`` (the union
    lies in the hull of both: IoU >= (A + B) / H - 1), 0.0 where it provably stays under ``threshold - margin``
    (the intersection lies in that of the hulls), NaN where neither bound decides."""
    out = np.full(len(candidates), np.nan)
    p = ordered.shape[1]
    xs, ys = np.empty(2 * p), np.empty(2 * p)
    both = np.empty((4 * p + 1, 2))
    buf_a, buf_b = np.empty((2 * p + 4, 2)), np.empty((2 * p + 4, 2))
    nt = counts[top]
    for c in range(len(candidates)):
        other = candidates[c]
        no = counts[other]
        a, b = areas[top], areas[other]
        if nt < 3 or no < 3:
            continue
        i = j = k = 0  # the two hulls' vertices merged in (x, y) order
        while i < nt or j < no:
            if j >= no or (i < nt and (ordered[top, i, 0] < ordered[other, j, 0] or (
                    ordered[top, i, 0] == ordered[other, j, 0] and ordered[top, i, 1] <= ordered[other, j, 1]))):
                xs[k], ys[k] = ordered[top, i, 0], ordered[top, i, 1]
                i += 1
            else:
                xs[k], ys[k] = ordered[other, j, 0], ordered[other, j, 1]
                j += 1
            k += 1
        h = _area(both, _chain(xs[:k], ys[:k], both))
        if h > 0 and (a + b) / h - 1.0 > threshold + margin:
            out[c] = 1.0
            continue
        most = _clip_area(hulls[top], nt, hulls[other], no, buf_a, buf_b)
        if a + b - most > 0 and most / (a + b - most) < threshold - margin:
            out[c] = 0.0
    return out


def _valid(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapely polygons of ``M x P x 2`` points, repaired as MMOCR's ``poly_make_valid`` does, and which of them are
    valid after the repair."""
    geoms = shapely.polygons(polygons.astype(np.float32).astype(np.float64))
    valid = shapely.is_valid(geoms)
    bad = ~valid
    if bad.any():
        fixed = shapely.buffer(geoms[bad], 0)
        multi = shapely.get_type_id(fixed) != shapely.GeometryType.POLYGON
        fixed[multi] = shapely.convex_hull(fixed[multi])
        geoms[bad] = fixed
        valid[bad] = shapely.is_valid(fixed)
    return geoms, valid


def polygon_nms(polygons: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MMOCR's ``poly_nms``: ``polygons`` ``M x P x 2``, ``scores`` ``M``; repeatedly keeps the highest-scoring
    polygon (the last of equal scores in input order) and drops the rest whose IoU with it exceeds
    ``threshold``. Returns the kept polygons and scores, in the order kept."""
    if len(polygons) == 0:
        return polygons, scores
    order = np.argsort(scores, kind="stable")
    geoms, valid = _valid(polygons[order])
    bounds = shapely.bounds(geoms)  # NaN for empty polygons: they never overlap a box, and are compared below
    empty = shapely.is_empty(geoms)
    areas = shapely.area(geoms)
    hulls = None  # the convex hulls' bounds, computed when a pair first needs them
    remaining = np.arange(len(order))
    kept = []
    while len(remaining):
        top, remaining = remaining[-1], remaining[:-1]
        kept.append(top)
        if not len(remaining):
            break
        b, others = bounds[top], bounds[remaining]
        # IoU is 0 (kept) for boxes apart; only polygons whose boxes touch, or empty ones, need shapely
        near = ~((others[:, 0] > b[2]) | (others[:, 2] < b[0]) | (others[:, 1] > b[3]) | (others[:, 3] < b[1]))
        near |= empty[remaining] | empty[top]
        iou = np.zeros(len(remaining))
        if near.any():
            close = remaining[near]
            # a polygon still invalid after repair overlaps nothing (IoU 0): no need to intersect it
            value = np.where(valid[top] & valid[close], np.nan, 0.0)
            both = valid[top] & valid[close] & ~empty[close] & ~empty[top]
            if both.any():
                # bounds that decide without intersecting: I <= the boxes' overlap O (and <= min(A, B)), and
                # I >= A + B - J, J the area of the box around both (the union lies inside it)
                a, others_a, box = areas[top], areas[close], bounds[close]
                o = (np.minimum(b[2], box[:, 2]) - np.maximum(b[0], box[:, 0])) \
                    * (np.minimum(b[3], box[:, 3]) - np.maximum(b[1], box[:, 1]))
                j = (np.maximum(b[2], box[:, 2]) - np.minimum(b[0], box[:, 0])) \
                    * (np.maximum(b[3], box[:, 3]) - np.minimum(b[1], box[:, 1]))
                most = np.minimum(np.minimum(o, a), others_a)
                least = a + others_a - j
                with np.errstate(divide="ignore", invalid="ignore"):
                    high = most / (a + others_a - most)
                    low = least / j
                value[both & (high < threshold - BOUND_MARGIN)] = 0.0
                value[both & (low > threshold + BOUND_MARGIN)] = 1.0
            todo = np.isnan(value) & both
            if todo.any():
                if hulls is None:
                    hulls = _hulls(polygons[order].astype(np.float32).astype(np.float64))
                value[todo] = _hull_decisions(*hulls, areas, top, close[todo], threshold, BOUND_MARGIN)
            todo = np.isnan(value)
            if todo.any():
                inter = shapely.area(shapely.intersection(geoms[top], geoms[close[todo]]))
                union = areas[top] + areas[close[todo]] - inter  # the union's area, without building the union
                with np.errstate(divide="ignore", invalid="ignore"):
                    value[todo] = np.where(union != 0, inter / np.where(union != 0, union, 1), 1.0)
            iou[near] = value
        remaining = remaining[iou <= threshold]
    index = order[np.asarray(kept)]
    return polygons[index], scores[index]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region of zeros not connected to the border set (flood fill from outside)."""
    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), np.uint8)
    canvas[1:-1, 1:-1] = mask
    cv2.floodFill(canvas, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    return (canvas[1:-1, 1:-1] == 0) | mask.astype(bool)


def _softmax_pair(logits: np.ndarray) -> np.ndarray:
    """Probability of the second of two logit planes (``2 x h x w``), as torch's softmax computes it."""
    return torch.from_numpy(np.ascontiguousarray(logits)).softmax(dim=0)[1].numpy()


def level_candidates(cls: np.ndarray, reg: np.ndarray, stride: int, text_repr_type: str = "poly",
                     alpha: float = 1.0, beta: float = 2.0, score_thr: float = 0.3, nms_thr: float = 0.1,
                     num_reconstr_points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 for one level: ``M x P x 2`` polygons (input pixels) and ``M`` scores."""
    degree = (reg.shape[0] // 2 - 1) // 2
    k = 2 * degree + 1
    score = _softmax_pair(cls[0:2]) ** alpha * _softmax_pair(cls[2:4]) ** beta
    region = fill_holes(score > score_thr).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    polys, scores = [], []
    for contour in contours:
        inside = np.zeros(region.shape, np.int8)
        cv2.drawContours(inside, [contour], -1, 1, -1)
        scored = score * inside
        ys, xs = np.nonzero(scored > 0)
        if not len(ys):
            continue
        c = reg[:k, ys, xs].T + 1j * reg[k:, ys, xs].T
        finite = np.isfinite(c).all(axis=1)  # a non-finite coefficient proposes no polygon (never a garbage one)
        if not finite.all():
            ys, xs, c = ys[finite], xs[finite], c[finite]
            if not len(ys):
                continue
        c[:, degree] += xs + 1j * ys
        points = fourier_to_points(c * stride, num_reconstr_points).astype(np.int32)
        p, s = polygon_nms(points, scored[ys, xs].astype(np.float64), nms_thr)
        polys.append(p)
        scores.append(s)
    if not polys:
        return np.zeros((0, num_reconstr_points, 2), np.int32), np.zeros(0)
    polys_a, scores_a = polygon_nms(np.concatenate(polys), np.concatenate(scores), nms_thr)
    if text_repr_type == "quad":
        polys_a = np.stack([cv2.boxPoints(cv2.minAreaRect(p.astype(np.float32))).astype(np.int32) for p in polys_a]) \
            if len(polys_a) else np.zeros((0, 4, 2), np.int32)
    return polys_a, scores_a


def fcenet_post_process(
    cls: Sequence[np.ndarray],
    reg: Sequence[np.ndarray],
    scale_factor: tuple[float, float] = (1.0, 1.0),
    strides: Sequence[int] = (8, 16, 32),
    text_repr_type: str = "poly",
    alpha: float = 1.0,
    beta: float = 2.0,
    score_thr: float = 0.3,
    nms_thr: float = 0.1,
    num_reconstr_points: int = 50,
) -> dict[str, list]:
    """Text instances of one image from its per-level maps (``cls[l]`` ``4 x h_l x w_l`` logits, ``reg[l]``
    ``2 (2k + 1) x h_l x w_l``).

    Returns:
        ``{"polygons": [P x 2 float32 (x, y)], "scores": [float]}`` in original pixels (input pixels divided by
        ``scale_factor = (sx, sy)``); 50-point polygons, or 4-point boxes with ``text_repr_type="quad"``.
    """
    if text_repr_type not in ("poly", "quad"):
        raise ValueError(f"text_repr_type must be 'poly' or 'quad', got {text_repr_type!r}")
    found = [level_candidates(np.asarray(c, np.float32), np.asarray(r, np.float32), s, text_repr_type, alpha, beta,
                              score_thr, nms_thr, num_reconstr_points)
             for c, r, s in zip(cls, reg, strides)]
    kept = [(p, s) for p, s in found if len(p)]
    if not kept:
        return {"polygons": [], "scores": []}
    width = max(p.shape[1] for p, _ in kept)  # quads and polygons never mix; one width per call
    polygons, scores = polygon_nms(np.concatenate([p for p, _ in kept]).reshape(-1, width, 2),
                                   np.concatenate([s for _, s in kept]), nms_thr)
    scale = np.asarray(scale_factor, np.float32)
    return {"polygons": [(p.astype(np.float32) / scale).astype(np.float32) for p in polygons],
            "scores": [float(s) for s in scores]}


__all__ = ["fcenet_post_process", "level_candidates", "polygon_nms", "fourier_to_points", "fill_holes"]
