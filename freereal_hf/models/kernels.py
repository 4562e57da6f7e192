"""What the kernel-based detectors (PSENet, PANet) share: kernel targets, the breadth-first growth of
kernels into text regions, and instance points to polygons. MMOCR 1.0.1 semantics throughout.

Maps are ``H x W`` at one resolution; polygons and points are ``(x, y)`` pixels of that resolution.

The growth reproduces mmcv 2.0.1's compiled ``contour_expand`` (PSENet) and ``pixel_group`` (PANet), which
are sequential breadth-first searches from seed pixels in raster order. Here each BFS layer is processed at
once with numpy: the candidates of a layer are listed in the order the sequential search would visit them
(parent order, then neighbour order), and the first parent that may claim a pixel gets it, which is exactly
what the sequential search does. See ``docs/method.md`` ("PSENet and PANet in MMOCR 1.0.1") for what the
compiled ops really do, which differs from the papers.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numba
import numpy as np

from . import shrink
from .base import MAX_INSTANCES
from .polygons import _shrink_distances, offset_outlines
from .raster import fill_polygons
from .shrink import _edges_apart, _shrunk_outlines

# neighbour orders of the two mmcv ops: (dy, dx)
EXPAND_ORDER = ((-1, 0), (1, 0), (0, -1), (0, 1))      # contour_expand
GROUP_ORDER = ((0, -1), (0, 1), (-1, 0), (1, 0))       # pixel_group


def kernel_targets(polygons: Sequence[np.ndarray], ignore: Sequence[bool], size: tuple[int, int],
                   ratios: Sequence[float], max_shrink_dist: float, ids: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MMOCR's ``SegBasedModuleLoss._generate_kernels`` for every ratio and its ``_generate_effective_mask``, from
    one pass over the polygons: ``(maps, mask)``.

    - ``maps``: ``len(ratios) x H x W`` int16, each polygon, shrunk by
      ``D = min(int(A (1 - r^2) / (L + 0.001) + 0.5), max_shrink_dist)`` (computed on the integer polygon), filled
      with its index + 1 (later polygons over earlier ones; MMOCR's maps hold the same values as int32); with
      ``ids=False``, uint8 maps filled with 1 (what a binary target needs). As in MMOCR, ignored polygons are drawn
      too (the mask gives their pixels weight 0), and a polygon whose shrunk version is empty or split is left out
      of that kernel. Polygons with fewer than three points or a non-finite coordinate are left out of every kernel.
    - ``mask``: ``H x W`` uint8, 0 inside the ignored polygons, 1 elsewhere (MMOCR's holds the same values as
      float32). Ignored polygons with no points or a non-finite one are left out.

    Raises:
        ValueError: ``ignore`` not one flag per polygon; ``ids`` with more than
            :data:`~freereal_hf.models.base.MAX_INSTANCES` polygons.
    """
    h, w = size
    if len(ignore) != len(polygons):
        raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
    if ids and len(polygons) > MAX_INSTANCES:
        raise ValueError(f"{len(polygons)} polygons in one image: instance ids are int16, at most {MAX_INSTANCES}")
    mask = np.ones((1, h, w), np.uint8)
    if not len(polygons):
        return np.zeros((len(ratios), h, w), np.int16 if ids else np.uint8), mask[0]
    flat, ends, finite = gather_polygons(polygons, least=1)
    # what pyclipper returns at distance 0 (every polygon's ratio-1 kernel) and when shrinking, where that is
    # provable without it (docs/method.md, "Kernel outlines without pyclipper"); the rest from pyclipper
    outlines, starts, stops, asked, distances, mask_starts, mask_stops = _kernel_outlines(
        flat, ends, finite, np.asarray(ignore, np.bool_), np.asarray(ratios, np.float64), float(max_shrink_dist),
        PLAIN_MARGIN, PLAIN_MAX_POINTS, shrink.SHRINK_MARGIN, shrink.SHRINK_MAX_POINTS)
    if len(asked):
        rows, cols = asked[:, 0], asked[:, 1]
        extra, first, stop = offset_outlines(flat, ends, rows.tolist(), distances[rows, cols].tolist())
        starts[rows, cols], stops[rows, cols] = first + len(outlines), stop + len(outlines)
        outlines = np.concatenate([outlines, extra])
    values = np.arange(1, len(polygons) + 1) if ids else np.ones(len(polygons), np.int64)
    maps = np.zeros((len(ratios), h, w), np.int16 if ids else np.uint8)  # just before the fill: still in cache
    fill_polygons(maps, outlines, starts, stops, values)
    fill_polygons(mask, flat, mask_starts, mask_stops, np.zeros(len(polygons), np.int64))
    return maps, mask[0]


def gather_polygons(polygons: Sequence[np.ndarray], least: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygons (each ``K x 2`` or flat ``2K``, any numeric type) as one ``N x 2`` int32 array of ``(x, y)`` points,
    truncated towards zero as MMOCR's integer polygons are, with where each polygon's points end (``P`` int64)
    and which polygons are usable (``P`` bool: at least ``least`` points, all finite; a non-finite point is stored
    as ``(0, 0)``).

    Raises:
        ValueError: a polygon with an odd number of coordinates.
    """
    counts = np.array([np.asarray(p).size for p in polygons], np.int64)
    flat = np.concatenate(polygons, axis=None).astype(np.float64) if len(polygons) else np.zeros(0)
    ends, usable, odd = _finite_polygons(flat, counts, least)
    if odd >= 0:
        raise ValueError(f"polygon {odd} has {counts[odd]} coordinates: polygons are (x, y) pairs")
    return flat.reshape(-1, 2).astype(np.int32), ends, usable


@numba.njit(cache=True)
def _finite_polygons(flat, counts, least):  # pragma: no cover - compiled
    """``gather_polygons``' ends and usable flags from each polygon's coordinate count, and the first polygon with
    an odd count (-1: none); points with a non-finite coordinate set to 0 in ``flat``."""
    ends = np.empty(len(counts), np.int64)
    usable = np.empty(len(counts), np.bool_)
    start = 0
    for p in range(len(counts)):
        if counts[p] % 2:
            return ends, usable, p
        size = counts[p] // 2
        ok = size >= least
        for i in range(start, start + size):
            if not (np.isfinite(flat[2 * i]) and np.isfinite(flat[2 * i + 1])):
                flat[2 * i] = flat[2 * i + 1] = 0.0
                ok = False
        start += size
        ends[p], usable[p] = start, ok
    return ends, usable, -1


@numba.njit(cache=True)
def _kernel_outlines(flat, ends, finite, ignore, ratios, max_shrink_dist, plain_margin, plain_max, shrink_margin,
                     shrink_max):  # pragma: no cover - compiled
    """:func:`kernel_targets`' outlines, all in one compiled call: the distance-0 outlines (:func:`plain_outlines`)
    and the shrunk ones (``shrink.shrunk_outlines``) that are provable, one after another (``M x 2`` int32); each
    polygon's for each ratio as ``P x R`` starts and stops in them (none for polygons of fewer than 3 points or not
    finite); the ``(polygon, ratio)`` pairs left to pyclipper (``A x 2``); the ``P x R`` distances
    (:func:`~freereal_hf.models.polygons.shrink_distances`); and the mask's outlines (the ignored finite polygons
    themselves) as ``P x 1`` starts and stops in ``flat``."""
    plain_points, plain_ends, plain = _plain_outlines(flat, ends, plain_margin, plain_max)
    distances = _shrink_distances(flat.astype(np.float64), ends, ratios, max_shrink_dist)
    shrunk, shrunk_ends, vouched = _shrunk_outlines(flat.astype(np.int64), ends, distances, shrink_margin,
                                                    shrink_max)
    n_polys, n_ratios = distances.shape
    starts = np.zeros((n_polys, n_ratios), np.int64)
    stops = np.zeros((n_polys, n_ratios), np.int64)
    mask_starts = np.zeros((n_polys, 1), np.int64)
    mask_stops = np.zeros((n_polys, 1), np.int64)
    asked = np.empty((n_polys * n_ratios, 2), np.int64)
    count = 0
    offset = len(plain_points)
    for p in range(n_polys):
        first = ends[p - 1] if p else 0
        if finite[p] and ignore[p]:
            mask_starts[p, 0], mask_stops[p, 0] = first, ends[p]
        for r in range(n_ratios if finite[p] and ends[p] - first >= 3 else 0):
            k = p * n_ratios + r
            if distances[p, r] == 0 and plain[p]:
                starts[p, r], stops[p, r] = plain_ends[p - 1] if p else 0, plain_ends[p]
            elif vouched[p, r]:
                starts[p, r] = offset + (shrunk_ends[k - 1] if k else 0)
                stops[p, r] = offset + shrunk_ends[k]
            else:
                asked[count, 0], asked[count, 1] = p, r
                count += 1
    outlines = np.concatenate((plain_points, shrunk))
    return outlines, starts, stops, asked[:count], distances, mask_starts, mask_stops


PLAIN_MARGIN = 1.0
"""Pixels that every two slanted edges must keep between them, along the sweep's rows, for :func:`plain_outlines` to
vouch for a polygon. Clipper rounds a slanted edge's x on each row to the nearest integer, at most half a pixel off,
so edges more than a pixel apart keep their order there and never meet; nearer ones may, and then Clipper cuts and
re-joins the outline (with no margin, 131 of the 20,000 awkward polygons of ``tests/test_kernel_outlines.py`` came
out differently; with this one, none of the 860,000 vouched for among a million such polygons). A vertical edge's x
and a horizontal edge's row are exact: half the margin when one of the two is slanted, none (they must only not
meet) when neither is. Edges nearer than that still count as apart where the sweep provably sees them in one order
(``shrink._seen_apart``: their rounded x on every vertex row both span)."""


PLAIN_MAX_POINTS = 64
"""Polygons with more points (after the clean-up) are left to pyclipper: the proof compares every two edges, which
for 64 points is still a third of pyclipper's time (5 against 18 us), for thousands would be far more."""


def plain_outlines(points: np.ndarray, ends: np.ndarray, margin: float = PLAIN_MARGIN
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyclipper's offset at distance 0 (MMOCR's kernel for shrink ratio 1), for every polygon where it provably
    changes nothing but dropping points: Clipper 6.4.2 (``ClipperOffset.Execute(0)``) removes repeated points and
    vertices on a straight line between their neighbours, and otherwise returns the polygon itself (maybe from
    another start, in the other direction) unless its sweep finds edges that cross or touch once their x on each
    row is rounded. Here a polygon is vouched for when, after that clean-up, no vertex turns straight back and every
    two edges stay apart along every row both span, as :data:`PLAIN_MARGIN` says (edges that share a vertex: on
    every vertex row but that vertex's, and not at all when it is the lower end of both, where the sweep's
    rounding can tie them but not swap them), which rules such meetings out; polygons of more than
    :data:`PLAIN_MAX_POINTS` points are left to pyclipper. The pairwise test is ``shrink._edges_apart``, which
    the shrunk outlines use too.

    Args:
        points: ``N x 2`` int32 ``(x, y)`` vertices of all polygons, one after another.
        ends: ``P`` int64, where each polygon's points end (``np.cumsum`` of their lengths).
        margin: see :data:`PLAIN_MARGIN`.

    Returns:
        ``(outlines, outline_ends, plain)``: the cleaned-up outlines of the vouched-for polygons, one after
        another (``M x 2`` int32, the kept vertices in their input order); ``P`` int64 ends (a polygon not vouched
        for adds no points); ``P`` bool, which polygons are vouched for. The others need pyclipper.
    """
    return _plain_outlines(np.ascontiguousarray(points, np.int32), np.ascontiguousarray(ends, np.int64),
                           float(margin), PLAIN_MAX_POINTS)


@numba.njit(cache=True)
def _plain_outlines(points, ends, margin, max_points):  # pragma: no cover - compiled
    out = np.empty_like(points)
    out_ends = np.empty(len(ends), np.int64)
    plain = np.zeros(len(ends), np.bool_)
    ring = np.empty((points.shape[0] + 1, 2), np.int64)
    start = written = 0
    for p in range(len(ends)):
        end = ends[p]
        # Clipper's AddPath: copies of the first point at the end, then repeated points, dropped
        last = end - 1
        while last > start and points[last, 0] == points[start, 0] and points[last, 1] == points[start, 1]:
            last -= 1
        m = 0
        for i in range(start, last + 1):
            if m == 0 or points[i, 0] != ring[m - 1, 0] or points[i, 1] != ring[m - 1, 1]:
                ring[m, 0], ring[m, 1] = points[i, 0], points[i, 1]
                m += 1
        start = end
        # vertices on a straight line between their neighbours dropped (one pass: dropping one leaves the others'
        # neighbours on the same line); a vertex where the outline turns straight back is not vouched for
        ok = m >= 3
        k = 0
        for i in range(m if ok else 0):
            h = i - 1 if i > 0 else m - 1
            j = i + 1 if i + 1 < m else 0
            ax, ay = ring[i, 0] - ring[h, 0], ring[i, 1] - ring[h, 1]
            bx, by = ring[j, 0] - ring[i, 0], ring[j, 1] - ring[i, 1]
            if ax * by - ay * bx == 0:
                if ax * bx + ay * by < 0:
                    ok = False
                    break
                continue
            out[written + k, 0], out[written + k, 1] = ring[i, 0], ring[i, 1]
            k += 1
        if ok and 3 <= k <= max_points and _apart(out[written:written + k], margin):
            plain[p] = True
            written += k
        out_ends[p] = written
    return out[:written], out_ends, plain


@numba.njit(cache=True)
def _apart(poly, margin):  # pragma: no cover - compiled
    """Whether every two edges of ``poly`` (``K x 2``, no repeated or straight-through vertices) stay more than
    ``margin`` apart in x on every row both span (see :func:`plain_outlines`)."""
    n = poly.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            if not _edges_apart(poly, i, j, margin):
                return False
    return True


def bfs_grow(labels: np.ndarray, seeds: np.ndarray, passable: np.ndarray, order: Sequence[tuple[int, int]],
             accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Grows ``labels`` (``H x W`` int32, 0 = free; changed in place and returned) breadth-first from ``seeds``
    (flat pixel indices, in the order a sequential queue would hold them) into free ``passable`` pixels.

    Each popped pixel offers its label to its free passable neighbours in ``order`` (``(dy, dx)`` pairs);
    ``accept(pixels, labels) -> bool array`` may refuse an offer, and a refused pixel stays free for later
    offers. Equal to the sequential BFS, one layer at a time.
    """
    h, w = labels.shape
    flat = labels.reshape(-1)
    free_passable = passable.reshape(-1).astype(bool)
    dy = np.array([d[0] for d in order])
    dx = np.array([d[1] for d in order])
    frontier = np.asarray(seeds, np.int64)
    while frontier.size:
        ys, xs = np.divmod(frontier, w)
        cy, cx = ys[:, None] + dy, xs[:, None] + dx
        inside = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
        cand = np.where(inside, cy * w + cx, 0)
        ok = inside & free_passable[cand] & (flat[cand] == 0)
        cand = cand[ok]
        lab = np.broadcast_to(flat[frontier][:, None], ok.shape)[ok]
        if accept is not None and cand.size:
            keep = accept(cand, lab)
            cand, lab = cand[keep], lab[keep]
        if not cand.size:
            break
        _, first = np.unique(cand, return_index=True)
        first.sort()
        frontier = cand[first]
        flat[frontier] = lab[first]
    return labels


def expand_kernels(text: np.ndarray, kernel_labels: np.ndarray, min_kernel_area: int = 0, rounds: int = 1
                   ) -> np.ndarray:
    """mmcv 2.0.1's ``contour_expand``: labelled kernels grown through the ``text`` mask (``H x W`` bool).

    Kernels smaller than ``min_kernel_area`` pixels are dropped. The compiled op runs ``kernel_num - 1`` rounds
    of a breadth-first search, but only through the first (text) plane, and its first round already floods all
    that is reachable: the intermediate kernels play no part. ``rounds`` = 0 returns the kernels unchanged.
    """
    labels = np.asarray(kernel_labels, np.int32).copy()
    if min_kernel_area > 0:
        small = np.bincount(labels.ravel()) < min_kernel_area
        small[0] = False
        labels[small[labels]] = 0
    if rounds < 1:
        return labels
    seeds = np.flatnonzero(labels)
    return bfs_grow(labels, seeds, text, EXPAND_ORDER)


def group_pixels(text: np.ndarray, embedding: np.ndarray, kernel_labels: np.ndarray, kernel_contour: np.ndarray,
                 num_labels: int, distance_threshold: float) -> np.ndarray:
    """mmcv 2.0.1's ``pixel_group`` growth: text pixels (``text``, ``H x W`` bool) join the kernel whose mean
    embedding (``embedding``, ``H x W x D`` float32) is nearer than ``distance_threshold``, breadth-first from
    the kernel contour pixels. Returns the ``H x W`` int32 instance labels (kernel labels grown)."""
    labels = np.asarray(kernel_labels, np.int32).copy()
    emb = np.asarray(embedding, np.float32).reshape(-1, embedding.shape[-1])
    flat = labels.reshape(-1)
    counts = np.bincount(flat, minlength=num_labels)[:num_labels].astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=emb[:, k], minlength=num_labels)[:num_labels]
                     for k in range(emb.shape[1])], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts[:, None]).astype(np.float32)
    limit = np.float32(distance_threshold) ** 2

    def accept(pixels: np.ndarray, labs: np.ndarray) -> np.ndarray:
        diff = means[labs] - emb[pixels]
        dist = np.zeros(len(pixels), np.float32)
        for k in range(diff.shape[1]):  # float32, in mmcv's order
            dist += diff[:, k] * diff[:, k]
        return dist < limit

    seeds = np.flatnonzero((np.asarray(kernel_contour) > 0).reshape(-1) & (flat > 0))
    return bfs_grow(labels, seeds, text, GROUP_ORDER, accept)


def instances(labels: np.ndarray, score: np.ndarray, num_labels: int | None = None
              ) -> list[tuple[int, float, np.ndarray]]:
    """Per label ``1..num_labels-1`` present in ``labels``: ``(label, mean score, K x 2 int (x, y) points in raster
    order)``."""
    flat = labels.reshape(-1)
    n = int(flat.max()) + 1 if num_labels is None else num_labels
    counts = np.bincount(flat, minlength=n)
    sums = np.bincount(flat, weights=score.reshape(-1).astype(np.float64), minlength=n)
    order = np.argsort(flat, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    w = labels.shape[1]
    out = []
    for lab in range(1, n):
        if counts[lab] == 0:
            continue
        idx = order[starts[lab]:starts[lab + 1]]
        ys, xs = np.divmod(idx, w)
        out.append((lab, float(sums[lab] / counts[lab]), np.stack([xs, ys], 1)))
    return out


def points_to_boundary(points: np.ndarray, text_repr_type: str, min_width: float = 0) -> np.ndarray | None:
    """MMOCR's ``_points2boundary``: an instance's pixel points (``K x 2`` int ``(x, y)``) to a ``quad``
    (min-area rectangle, ``None`` when its short side is below ``min_width``) or a ``poly`` (the outer contour
    of the points, simplified); ``None`` when fewer than 4 vertices come out. Returns ``M x 2`` float32."""
    if text_repr_type == "quad":
        rect = cv2.minAreaRect(points.astype(np.int32))
        if min(rect[1]) < min_width:
            return None
        boundary = cv2.boxPoints(rect)
    elif text_repr_type == "poly":
        # MMOCR draws into a canvas from the origin; a crop that keeps a 1-pixel margin (or the image border,
        # where MMOCR has one too) gives the same contour, shifted
        offset = np.maximum(points.min(axis=0) - 1, 0)
        local = points - offset
        mask = np.zeros((local[:, 1].max() + 10, local[:, 0].max() + 10), np.uint8)
        mask[local[:, 1], local[:, 0]] = 255
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boundary = contours[0].reshape(-1, 2) + offset
    else:
        raise ValueError(f"text_repr_type must be 'quad' or 'poly', got {text_repr_type!r}")
    if len(boundary) < 4:
        return None
    return np.asarray(boundary, np.float32)


__all__ = ["kernel_targets", "gather_polygons", "plain_outlines", "PLAIN_MARGIN", "PLAIN_MAX_POINTS", "bfs_grow",
           "expand_kernels", "group_pixels", "instances", "points_to_boundary"]
