"""pyclipper's shrunk polygons (``PyclipperOffset``, round joins, a negative distance: MMOCR 1.0.1's kernels and
DBNet's shrink map), computed without pyclipper where the result is provable, compiled, all polygons in one call.

Clipper 6.4.2 shrinks a polygon in two steps (``docs/method.md``, "Kernel outlines without pyclipper"):

1. ``ClipperOffset.DoOffset`` moves every edge inwards by the distance and joins the moved edges at each vertex:
   at a convex vertex with three points (the moved end of the edge before, the vertex itself, the moved start of
   the edge after), which makes a small loop that runs backwards; at a reflex vertex with an arc of rounded points;
   where the outline runs almost straight on, with one point. Here: the same float64 operations, in the same order.
2. A union (``Clipper.Execute``) of that raw path keeps the region it winds around positively: the loops go, and
   where they were the outline runs through the points where the path crosses itself, which the sweep computes
   from the edges' integer ends (``IntersectPoint``); then points repeated or on a straight line are dropped.

The second step is a full sweep in Clipper; here it is replaced by its result where that is provable: after
Clipper's clean-up of the raw path, each self-crossing cuts off the shorter part of the path between its two edges,
which runs backwards and holds convex vertices' loops; each crossing is found by the rounded sweep where the exact
geometry says (so that its point is the one computed here), including crossings at a point of the path itself; and
every two edges not cut off together stay apart along every row both span, by ``margin`` for two slanted edges
(so that the sweep, which rounds a slanted edge's x on each row, never sees them meet; vertical and horizontal
edges are exact). Polygons this cannot vouch for are left to pyclipper.
"""

from __future__ import annotations

import numba
import numpy as np

from .polygons import ends_split

SHRINK_MARGIN = 1.0
"""Pixels every two slanted edges of the raw path (other than a loop's own) must keep between them along the rows (half
of it for a slanted and an axis-parallel edge), as :data:`~freereal_hf.models.kernels.PLAIN_MARGIN` says for
distance 0."""

SHRINK_MAX_POINTS = 64
"""Polygons with more points are left to pyclipper (the proof compares every two edges of the raw path)."""

_ARC_TOLERANCE = 0.25  # pyclipper's default (ClipperOffset's ArcTolerance)
_LIMIT = 1 << 26  # coordinates and distances beyond this are left to pyclipper (its 128-bit range; our int64 products)


def shrunk_outlines(points: np.ndarray, ends: np.ndarray, distances: np.ndarray, margin: float = SHRINK_MARGIN
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyclipper's result (``PyclipperOffset``, ``JT_ROUND``, ``ET_CLOSEDPOLYGON``, ``Execute(distance)``) for every
    polygon and distance it can vouch for (see the module docstring).

    Args:
        points: ``N x 2`` integer ``(x, y)`` vertices of all polygons, one after another.
        ends: ``P`` int64, where each polygon's points end (``np.cumsum`` of their lengths).
        distances: ``P x R`` float64 offsets, negative (shrinking) and at least 1 pixel; others are not vouched for.
        margin: see :data:`SHRINK_MARGIN`.

    Returns:
        ``(outlines, outline_ends, vouched)``: the shrunk outlines one after another (``M x 2`` int32, polygon by
        polygon, distance by distance); ``P * R`` int64 ends in that order (an outline not vouched for adds no
        points); ``P x R`` bool, which results are vouched for. A vouched-for outline is what pyclipper returns as
        its only piece, maybe from another start and in the other direction (the same pixels when filled).

    Raises:
        ValueError: ``ends`` not splitting ``points``, or ``distances`` not ``P x R``.
    """
    pts = np.ascontiguousarray(points, np.int64).reshape(-1, 2)
    ends = np.ascontiguousarray(ends, np.int64).reshape(-1)
    dist = np.ascontiguousarray(distances, np.float64)
    if dist.ndim != 2 or dist.shape[0] != len(ends):
        raise ValueError(f"shrunk_outlines: distances must be {len(ends)} x R, got shape {dist.shape}")
    if not ends_split(ends, len(pts)):
        raise ValueError("shrunk_outlines: ends must rise to the number of points")
    return _shrunk_outlines(pts, ends, dist, float(margin), SHRINK_MAX_POINTS)


@numba.njit(cache=True)
def _round(v):  # pragma: no cover - compiled
    """Clipper's ``Round``: half away from zero."""
    return np.int64(v - 0.5) if v < 0 else np.int64(v + 0.5)


@numba.njit(cache=True)
def _shrunk_outlines(points, ends, distances, margin, max_points):  # pragma: no cover - compiled
    n_polys, n_dist = distances.shape
    out = np.empty((0, 2), np.int32)
    capacity = 0
    written = 0
    out_ends = np.empty(n_polys * n_dist, np.int64)
    vouched = np.zeros((n_polys, n_dist), np.bool_)
    src = np.empty((max_points, 2), np.int64)
    start = 0
    for p in range(n_polys):
        end = ends[p]
        n = _clean_source(points[start:end], src)
        start = end
        for r in range(n_dist):
            delta = distances[p, r]
            if 3 <= n <= max_points and -_LIMIT <= delta <= -1.0:
                shrunk = _vouched_shrink(src[:n], delta, margin)
                k = shrunk.shape[0]
                if k:
                    if written + k > capacity:
                        capacity = max(2 * capacity, written + k, 256)
                        grown = np.empty((capacity, 2), np.int32)
                        grown[:written] = out[:written]
                        out = grown
                    for i in range(k):
                        out[written + i, 0], out[written + i, 1] = shrunk[i, 0], shrunk[i, 1]
                    written += k
                    vouched[p, r] = True
            out_ends[p * n_dist + r] = written
    return out[:written].copy(), out_ends, vouched


@numba.njit(cache=True)
def _clean_source(poly, src):  # pragma: no cover - compiled
    """``ClipperOffset.AddPath`` and ``FixOrientations`` for one closed polygon: copies of the first point at the
    end and repeated points dropped, the outline turned to Clipper's positive orientation. Writes ``src`` and
    returns its length (0: too many points for ``src``, a coordinate beyond ``_LIMIT``, or a vertex that turns
    straight back)."""
    for i in range(poly.shape[0]):
        if abs(poly[i, 0]) > _LIMIT or abs(poly[i, 1]) > _LIMIT:
            return 0
    last = poly.shape[0] - 1
    while last > 0 and poly[last, 0] == poly[0, 0] and poly[last, 1] == poly[0, 1]:
        last -= 1
    n = 0
    for i in range(last + 1):
        if n == 0 or poly[i, 0] != src[n - 1, 0] or poly[i, 1] != src[n - 1, 1]:
            if n == src.shape[0]:
                return 0
            src[n, 0], src[n, 1] = poly[i, 0], poly[i, 1]
            n += 1
    if n < 3:
        return n
    twice = 0  # Clipper's Area() (exact here: integers), orientation = area >= 0
    j = n - 1
    for i in range(n):
        twice += (src[j, 0] + src[i, 0]) * (src[j, 1] - src[i, 1])
        j = i
    if twice > 0:  # -twice / 2 < 0: Clipper reverses the path
        for i in range(n // 2):
            a0, a1 = src[i, 0], src[i, 1]
            src[i, 0], src[i, 1] = src[n - 1 - i, 0], src[n - 1 - i, 1]
            src[n - 1 - i, 0], src[n - 1 - i, 1] = a0, a1
    for i in range(n):  # a vertex where the outline turns straight back: Clipper's half-circle there; left to it
        h = i - 1 if i > 0 else n - 1
        j = i + 1 if i + 1 < n else 0
        ax, ay = src[i, 0] - src[h, 0], src[i, 1] - src[h, 1]
        bx, by = src[j, 0] - src[i, 0], src[j, 1] - src[i, 1]
        if ax * by - ay * bx == 0 and ax * bx + ay * by < 0:
            return 0
    return n


@numba.njit(cache=True)
def _raw_offset(src, delta):  # pragma: no cover - compiled
    """``ClipperOffset.DoOffset`` of one oriented polygon: ``(points M x 2 int64, kinds M int8)`` with kinds 1, 2, 3
    for a loop's three points (moved end of the edge before, the vertex, moved start of the edge after), 0 else."""
    n = src.shape[0]
    nx = np.empty(n)
    ny = np.empty(n)
    for j in range(n):
        j1 = j + 1 if j + 1 < n else 0
        dx = float(src[j1, 0] - src[j, 0])
        dy = float(src[j1, 1] - src[j, 1])
        f = 1.0 / np.sqrt(dx * dx + dy * dy)
        dx *= f
        dy *= f
        nx[j], ny[j] = dy, -dx
    size = abs(delta)
    tolerance = _ARC_TOLERANCE
    if _ARC_TOLERANCE > size * 0.25:
        tolerance = size * 0.25
    steps = np.pi / np.arccos(1 - tolerance / size)
    if steps > size * np.pi:
        steps = size * np.pi
    two_pi = np.pi * 2
    m_sin = np.sin(two_pi / steps)
    m_cos = np.cos(two_pi / steps)
    per_rad = steps / two_pi
    if delta < 0.0:
        m_sin = -m_sin
    cap = 3 * n + 8
    raw = np.empty((cap, 2), np.int64)
    kinds = np.zeros(cap, np.int8)
    m = 0
    k = n - 1
    for j in range(n):
        sx, sy = float(src[j, 0]), float(src[j, 1])
        sin_a = nx[k] * ny[j] - nx[j] * ny[k]
        if abs(sin_a * delta) < 1.0:
            cos_a = nx[k] * nx[j] + ny[j] * ny[k]
            if cos_a > 0:  # almost straight on: one point, and k stays (as in Clipper)
                if m + 1 > cap:
                    raw, kinds, cap = _grow(raw, kinds, m + 1)
                raw[m, 0], raw[m, 1] = _round(sx + nx[k] * delta), _round(sy + ny[k] * delta)
                m += 1
                continue
        elif sin_a > 1.0:
            sin_a = 1.0
        elif sin_a < -1.0:
            sin_a = -1.0
        if sin_a * delta < 0:
            if m + 3 > cap:
                raw, kinds, cap = _grow(raw, kinds, m + 3)
            raw[m, 0], raw[m, 1] = _round(sx + nx[k] * delta), _round(sy + ny[k] * delta)
            raw[m + 1, 0], raw[m + 1, 1] = src[j, 0], src[j, 1]
            raw[m + 2, 0], raw[m + 2, 1] = _round(sx + nx[j] * delta), _round(sy + ny[j] * delta)
            kinds[m], kinds[m + 1], kinds[m + 2] = 1, 2, 3
            m += 3
        else:  # DoRound
            a = np.arctan2(sin_a, nx[k] * nx[j] + ny[k] * ny[j])
            count = max(np.int64(_round(per_rad * abs(a))), 1)
            if m + count + 1 > cap:
                raw, kinds, cap = _grow(raw, kinds, m + count + 1)
            x, y = nx[k], ny[k]
            for _ in range(count):
                raw[m, 0], raw[m, 1] = _round(sx + x * delta), _round(sy + y * delta)
                m += 1
                x2 = x
                x = x * m_cos - m_sin * y
                y = x2 * m_sin + y * m_cos
            raw[m, 0], raw[m, 1] = _round(sx + nx[j] * delta), _round(sy + ny[j] * delta)
            m += 1
        k = j
    return raw[:m], kinds[:m]


@numba.njit(cache=True)
def _grow(raw, kinds, least):  # pragma: no cover - compiled
    cap = max(2 * raw.shape[0], least)
    bigger = np.empty((cap, 2), np.int64)
    bigger[:raw.shape[0]] = raw
    more = np.zeros(cap, np.int8)
    more[:kinds.shape[0]] = kinds
    return bigger, more, cap


@numba.njit(cache=True)
def _slopes_equal(ax, ay, bx, by, cx, cy):  # pragma: no cover - compiled
    return (ay - by) * (bx - cx) == (ax - bx) * (by - cy)


@numba.njit(cache=True)
def _ring_links(n):  # pragma: no cover - compiled
    """Next and previous index of each of ``n`` points on a ring (Clipper's doubly linked lists)."""
    nxt = np.empty(n, np.int64)
    prv = np.empty(n, np.int64)
    for i in range(n):
        nxt[i] = i + 1 if i + 1 < n else 0
        prv[i] = i - 1 if i > 0 else n - 1
    return nxt, prv


@numba.njit(cache=True)
def _clean_path(raw):  # pragma: no cover - compiled
    """``ClipperBase.AddPath`` on the raw path (closed): repeated points and points on a straight line between
    their neighbours removed, in Clipper's order. Returns the kept indices in ring order from Clipper's start, or
    none when the path is dropped (fewer than three points, or flat)."""
    high = raw.shape[0] - 1
    while high > 0 and raw[high, 0] == raw[0, 0] and raw[high, 1] == raw[0, 1]:
        high -= 1
    while high > 0 and raw[high, 0] == raw[high - 1, 0] and raw[high, 1] == raw[high - 1, 1]:
        high -= 1
    if high < 2:
        return np.empty(0, np.int64)
    n = high + 1
    nxt, prv = _ring_links(n)
    e = 0
    e_start = 0
    loop_stop = 0
    while True:
        f = nxt[e]
        if raw[e, 0] == raw[f, 0] and raw[e, 1] == raw[f, 1]:
            if e == f:
                break
            if e == e_start:
                e_start = f
            nxt[prv[e]], prv[f] = f, prv[e]
            e = f
            loop_stop = e
            continue
        if prv[e] == nxt[e]:
            break
        b = prv[e]
        if _slopes_equal(raw[b, 0], raw[b, 1], raw[e, 0], raw[e, 1], raw[f, 0], raw[f, 1]):
            if e == e_start:
                e_start = f
            nxt[b], prv[f] = f, b
            e = b
            loop_stop = e
            continue
        e = nxt[e]
        if e == loop_stop:
            break
    if prv[e] == nxt[e]:
        return np.empty(0, np.int64)
    kept = np.empty(n, np.int64)
    count = 0
    i = e_start
    flat = True
    while True:
        kept[count] = i
        count += 1
        if raw[i, 1] != raw[e_start, 1]:
            flat = False
        i = nxt[i]
        if i == e_start:
            break
    if flat:
        return np.empty(0, np.int64)
    return kept[:count]


@numba.njit(cache=True)
def _x_on_row(x0, y0, x1, y1, y):  # pragma: no cover - compiled
    return x0 + (x1 - x0) * (y - y0) / (y1 - y0)


@numba.njit(cache=True)
def _edges_apart(ring, i, j, margin):  # pragma: no cover - compiled
    """Whether edges ``i`` and ``j`` of ``ring`` (``K x 2``, edge ``i`` from point ``i`` to the next) stay apart in
    x on every row both span, the rows of vertices they share excepted (see
    :func:`~freereal_hf.models.kernels.plain_outlines`; ``ring`` has no repeated or straight-through points): by
    more than half the ``margin`` for each of the two that is slanted (the sweep rounds a slanted edge's x on a row
    by up to half a pixel; a vertical or horizontal edge's x is exact), and by more than 0 in any case."""
    n = ring.shape[0]
    i1 = i + 1 if i + 1 < n else 0
    j1 = j + 1 if j + 1 < n else 0
    ax0, ay0, ax1, ay1 = ring[i, 0], ring[i, 1], ring[i1, 0], ring[i1, 1]
    bx0, by0, bx1, by1 = ring[j, 0], ring[j, 1], ring[j1, 0], ring[j1, 1]
    lo, top = max(min(ay0, ay1), min(by0, by1)), min(max(ay0, ay1), max(by0, by1))
    if lo > top:  # no row in common
        return True
    adjacent = j == i1 or j1 == i
    gap = margin / 2 * ((ax0 != ax1 and ay0 != ay1) + (bx0 != bx1 and by0 != by1))  # rounding of slanted edges
    if ay0 == ay1 and by0 == by1:  # two horizontal edges on one row (adjacent ones were straight-through)
        return max(min(bx0, bx1) - max(ax0, ax1), min(ax0, ax1) - max(bx0, bx1)) > 0
    if ay0 == ay1 or by0 == by1:
        if adjacent:  # the other edge meets the horizontal one's row only at their shared end
            return True
        if ay0 == ay1:
            x, left, right = _x_on_row(bx0, by0, bx1, by1, ay0), min(ax0, ax1), max(ax0, ax1)
        else:
            x, left, right = _x_on_row(ax0, ay0, ax1, ay1, by0), min(bx0, bx1), max(bx0, bx1)
        return not (left - gap <= x <= right + gap)
    if adjacent:
        if lo == top:  # the shared vertex is their only row in common
            return True
        shared_y = ay0 if (ax0 == bx0 and ay0 == by0) or (ax0 == bx1 and ay0 == by1) else ay1
        if shared_y == top:
            # the lower end of both (Clipper's Bot): the sweep puts each on a row at that vertex's x plus its own
            # rounded step from there, so rounding may tie them but never swap them
            return True
        # both leave the shared vertex on the same side: apart on every other vertex row they span (their distance
        # shrinks to 0 towards the vertex, so the row nearest it decides)
        for q in range(n):
            y = ring[q, 1]
            if y != shared_y and lo <= y <= top and abs(
                    _x_on_row(bx0, by0, bx1, by1, y) - _x_on_row(ax0, ay0, ax1, ay1, y)) <= gap:
                return _seen_apart(ring, i, j, lo, top, shared_y)
        return True
    # their distance is linear in y: apart at both ends of the common rows, on one side, is enough
    s_lo = _x_on_row(bx0, by0, bx1, by1, lo) - _x_on_row(ax0, ay0, ax1, ay1, lo)
    s_top = _x_on_row(bx0, by0, bx1, by1, top) - _x_on_row(ax0, ay0, ax1, ay1, top)
    if abs(s_lo) <= gap or abs(s_top) <= gap or (s_lo > 0) != (s_top > 0):
        return _seen_apart(ring, i, j, lo, top, -(1 << 62))
    return True


@numba.njit(cache=True)
def _bot_top(ring, e):  # pragma: no cover - compiled
    """Edge ``e`` of ``ring`` as Clipper holds it: ``(bot x, bot y, top x, top y)``, ``Bot`` the end with the larger
    y (on one row, the edge's first point)."""
    e1 = e + 1 if e + 1 < ring.shape[0] else 0
    if ring[e, 1] >= ring[e1, 1]:
        return ring[e, 0], ring[e, 1], ring[e1, 0], ring[e1, 1]
    return ring[e1, 0], ring[e1, 1], ring[e, 0], ring[e, 1]


@numba.njit(cache=True)
def _seen_apart(ring, i, j, lo, top, skip):  # pragma: no cover - compiled
    """Whether Clipper's sweep sees edges ``i`` and ``j`` (neither horizontal) in one order on every vertex row both
    span but row ``skip`` (a vertex they share): their rounded x (``TopX``, as the sweep computes it) never swapped,
    and tied only on rows where neither starts nor ends (a tie is no crossing for the sweep, but where an edge starts
    it is inserted by where it goes, and where one ends the other may be taken into its maximum). Rounding keeps
    order, so such edges do not cross either. What the margin test leaves undecided (edges within a pixel)."""
    n = ring.shape[0]
    abx, aby, atx, aty = _bot_top(ring, i)
    bbx, bby, btx, bty = _bot_top(ring, j)
    adx = (atx - abx) / (aty - aby)
    bdx = (btx - bbx) / (bty - bby)
    order = 0
    for q in range(n):
        y = ring[q, 1]
        if y < lo or y > top or y == skip:
            continue
        d = (atx if y == aty else abx + _round(adx * (y - aby))) - (btx if y == bty else bbx + _round(bdx * (y - bby)))
        if d == 0:
            if y == lo or y == top:
                return False
        elif order == 0:
            order = 1 if d > 0 else -1
        elif (d > 0) != (order > 0):
            return False
    return True


@numba.njit(cache=True)
def _flat_linked(ring, i, j):  # pragma: no cover - compiled
    """Whether edges ``i`` and ``j`` follow each other through horizontal edges only (one way round or the other),
    the path going on up or down across that row: then they are one bound of the sweep, one replacing the other on
    that row, never side by side."""
    n = ring.shape[0]
    for a, b in ((i, j), (j, i)):
        k = a + 1 if a + 1 < n else 0
        while k != b:
            k1 = k + 1 if k + 1 < n else 0
            if ring[k, 1] != ring[k1, 1]:
                break
            k = k1
        if k == b:
            b1 = b + 1 if b + 1 < n else 0
            row = ring[b, 1]
            return (ring[a, 1] - row) * (ring[b1, 1] - row) < 0
    return False


@numba.njit(cache=True)
def _orient(ax, ay, bx, by, cx, cy):  # pragma: no cover - compiled
    v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return (v > 0) - (v < 0)


@numba.njit(cache=True)
def _meeting(ring, i, j):  # pragma: no cover - compiled
    """How edges ``i`` and ``j`` of ``ring`` meet (exact, integers): 0 not at all, 2 crossing properly (each one's
    ends strictly on both sides of the other), 1 otherwise (touching or overlapping)."""
    n = ring.shape[0]
    i1 = i + 1 if i + 1 < n else 0
    j1 = j + 1 if j + 1 < n else 0
    ax0, ay0, ax1, ay1 = ring[i, 0], ring[i, 1], ring[i1, 0], ring[i1, 1]
    bx0, by0, bx1, by1 = ring[j, 0], ring[j, 1], ring[j1, 0], ring[j1, 1]
    if max(ax0, ax1) < min(bx0, bx1) or max(bx0, bx1) < min(ax0, ax1) or \
            max(ay0, ay1) < min(by0, by1) or max(by0, by1) < min(ay0, ay1):
        return 0
    side_a = _orient(ax0, ay0, ax1, ay1, bx0, by0) * _orient(ax0, ay0, ax1, ay1, bx1, by1)
    side_b = _orient(bx0, by0, bx1, by1, ax0, ay0) * _orient(bx0, by0, bx1, by1, ax1, ay1)
    if side_a > 0 or side_b > 0:
        return 0
    return 2 if side_a < 0 and side_b < 0 else 1


@numba.njit(cache=True)
def _crossing(ring, i, j):  # pragma: no cover - compiled
    """Where Clipper's sweep puts the crossing of edges ``i`` and ``j``, which cross properly (``IntersectPoint``,
    clamped into the scanbeam where the sweep finds it; or a horizontal edge's crossing in ``ProcessHorizontal``),
    when the rounded sweep provably finds it there. ``(ok, x, y, t_i, t_j)``: the point, and where the exact
    crossing lies along each edge (0 to 1)."""
    n = ring.shape[0]
    i1 = i + 1 if i + 1 < n else 0
    j1 = j + 1 if j + 1 < n else 0
    a0x, a0y, a1x, a1y = ring[i, 0], ring[i, 1], ring[i1, 0], ring[i1, 1]
    b0x, b0y, b1x, b1y = ring[j, 0], ring[j, 1], ring[j1, 0], ring[j1, 1]
    # Clipper's edges: Bot is the end with the larger y, Top the other; Dx = dx / dy from Bot to Top
    abx, aby, atx, aty = _bot_top(ring, i)
    bbx, bby, btx, bty = _bot_top(ring, j)
    cross = (a1x - a0x) * (b1y - b0y) - (a1y - a0y) * (b1x - b0x)
    t_i = ((b0x - a0x) * (b1y - b0y) - (b0y - a0y) * (b1x - b0x)) / cross
    t_j = ((b0x - a0x) * (a1y - a0y) - (b0y - a0y) * (a1x - a0x)) / cross
    a_flat, b_flat = aty == aby, bty == bby
    if a_flat and b_flat:
        return False, 0, 0, 0.0, 0.0
    if a_flat or b_flat:  # ProcessHorizontal: the other edge's TopX on the horizontal's row
        if a_flat:
            hy, left, right = aty, min(a0x, a1x), max(a0x, a1x)
            ex, ey, etx, ety = bbx, bby, btx, bty
        else:
            hy, left, right = bty, min(b0x, b1x), max(b0x, b1x)
            ex, ey, etx, ety = abx, aby, atx, aty
        if not (ety < hy < ey):
            return False, 0, 0, 0.0, 0.0
        x = ex + _round((etx - ex) / (ety - ey) * (hy - ey))
        if not (left < x < right):
            return False, 0, 0, 0.0, 0.0
        return True, np.int64(x), np.int64(hy), t_i, t_j
    adx = (atx - abx) / (aty - aby)
    bdx = (btx - bbx) / (bty - bby)
    if adx == bdx:
        return False, 0, 0, 0.0, 0.0
    # Edge1 is the one on the left below the crossing (the smaller Dx): BuildIntersectList's order
    if adx < bdx:
        e1bx, e1by, e1ty, e1dx = abx, aby, aty, adx
        e2bx, e2by, e2ty, e2dx = bbx, bby, bty, bdx
    else:
        e1bx, e1by, e1ty, e1dx = bbx, bby, bty, bdx
        e2bx, e2by, e2ty, e2dx = abx, aby, aty, adx
    x, y = _intersect_point(e1bx, e1by, e1ty, e1dx, e2bx, e2by, e2ty, e2dx)
    # The sweep compares the edges' rounded x (TopX) on the vertex rows both span, from the bottom up: below the
    # crossing it must not see them swapped (and on the row where the later one starts, it must see them apart:
    # with a tie, an edge starting there is inserted by where it goes, see _minimum_crossing); above, the first
    # row where they are swapped is where it finds the crossing (the top of that scanbeam), and they must not swap
    # back after it. A vertex row through the crossing itself counts as above when they are swapped there, else as
    # below.
    y0 = a0y + t_i * (a1y - a0y)
    first, last = max(e1ty, e2ty), min(e1by, e2by)
    found = -(1 << 62)  # the nearest row above the crossing where they are swapped
    unswapped = 1 << 62  # the farthest row above it where they are not
    tied_at_start = apart_below = False
    for q in range(n):
        row = ring[q, 1]
        if row < first or row > last:
            continue
        x1 = e1bx + _round(e1dx * (row - e1by))
        x2 = e2bx + _round(e2dx * (row - e2by))
        if row > y0 + 1e-9 or (row > y0 - 1e-9 and x1 <= x2):  # below, or on the crossing's row and not swapped
            if x1 > x2:
                return False, 0, 0, 0.0, 0.0
            if row == last and x1 == x2:
                tied_at_start = True
            elif x1 < x2 and row != last:
                apart_below = True
        elif x1 > x2:
            found = max(found, row)
        elif x1 < x2:
            unswapped = min(unswapped, row)
    if tied_at_start:  # only Clipper's minimum of the edge starting later can take the other in
        e, o = (i, j) if aby < bby else (j, i)
        if aby == bby or apart_below or not _minimum_crossing(ring, e, o):
            return False, 0, 0, 0.0, 0.0
        mx, my = (abx, aby) if e == i else (bbx, bby)
        return True, np.int64(mx), np.int64(my), t_i, t_j
    if found < first:  # never seen swapped: only Clipper's maximum of the edge ending first takes the other in
        e, o = (i, j) if aty > bty else (j, i)
        if aty == bty or not _maximum_crossing(ring, e, o):
            return False, 0, 0, 0.0, 0.0
        mx, my = (atx, aty) if e == i else (btx, bty)
        return True, np.int64(mx), np.int64(my), t_i, t_j
    if unswapped < found:
        return False, 0, 0, 0.0, 0.0
    beam_bottom = last  # the scanbeam's bottom: the next vertex row below the one where the sweep finds it
    for q in range(n):
        row = ring[q, 1]
        if found < row < beam_bottom:
            beam_bottom = row
    if y > beam_bottom:  # found late: Clipper keeps the point in the scanbeam, on the more vertical edge
        y = beam_bottom
        if abs(e1dx) > abs(e2dx):
            x = e2bx + _round(e2dx * (y - e2by))
        else:
            x = e1bx + _round(e1dx * (y - e1by))
    return True, np.int64(x), np.int64(y), t_i, t_j


@numba.njit(cache=True)
def _extreme(ring, e, top):  # pragma: no cover - compiled
    """Edge ``e``'s top end (``top``) or bottom end as a strict local maximum or minimum of the path (both its
    neighbours strictly lower down, or strictly higher up): ``(g, row)``, the path's other edge at that point and
    the point's row; ``g = -1`` when the point is no such extreme."""
    n = ring.shape[0]
    e1 = e + 1 if e + 1 < n else 0
    m = e1 if ((ring[e1, 1] < ring[e, 1]) if top else (ring[e1, 1] > ring[e, 1])) else e
    before, after = m - 1 if m > 0 else n - 1, m + 1 if m + 1 < n else 0
    row = ring[m, 1]
    for q in (before, after):
        if (ring[q, 1] <= row) if top else (ring[q, 1] >= row):
            return -1, row
    return (m if m == e1 else before), row


@numba.njit(cache=True)
def _maximum_crossing(ring, e, o):  # pragma: no cover - compiled
    """Whether Clipper's sweep puts the crossing of edges ``e`` and ``o`` (below ``e``'s top ``M``, above every vertex
    row where the sweep sees them in their order from below) at ``M`` itself, when it never sees them swapped (the
    caller's check; then ``o``'s rounded x ties ``M``'s on ``M``'s row: exactly, ``o`` is past ``M`` there, and
    rounding keeps order). It does when ``M`` is a local maximum of the path (both its neighbours strictly lower
    down) and ``o`` lies strictly between ``e`` and the other edge ``g`` at ``M`` on every vertex row below ``M`` that
    ``o`` and ``g`` both span: ``o`` is then still between the two in the sweep's order at ``M``'s row, and
    ``DoMaxima`` takes every edge between a maximum's two edges through its top, so that the outline runs from ``o``
    through ``M`` into ``g``."""
    n = ring.shape[0]
    g, my = _extreme(ring, e, True)
    if g < 0:
        return False
    obx, oby, otx, oty = _bot_top(ring, o)
    ebx, eby, etx, ety = _bot_top(ring, e)
    gbx, gby, gtx, gty = _bot_top(ring, g)
    odx = (otx - obx) / (oty - oby)
    edx = (etx - ebx) / (ety - eby)
    gdx = (gtx - gbx) / (gty - gby)
    low = min(oby, eby)  # o's side of e below the crossing (the caller saw one order there, no tie at the bottom)
    side = np.sign(obx + _round(odx * (low - oby)) - (ebx + _round(edx * (low - eby))))
    bottom = min(oby, gby)
    for q in range(n):
        row = ring[q, 1]
        if my < row <= bottom and \
                np.sign(obx + _round(odx * (row - oby)) - (gbx + _round(gdx * (row - gby)))) != -side:
            return False
    return True


@numba.njit(cache=True)
def _minimum_crossing(ring, e, o):  # pragma: no cover - compiled
    """Whether Clipper's sweep puts the crossing of edges ``e`` and ``o`` (above ``e``'s bottom ``M``, where ``o``'s
    rounded x ties ``M``'s; the caller saw them tied, never apart, on every vertex row between) at ``M`` itself: when
    ``M`` is a local minimum of the path (both its neighbours strictly higher up) and ``InsertLocalMinimaIntoAEL``
    puts ``o`` between the minimum's two edges (``E2InsertsBeforeE1``: on a tie, by their x where the one ending
    first ends; the left bound, the larger ``Dx``, is inserted before ``o``, the right one after it). The edges
    between a minimum's two are taken through ``M`` (``IntersectEdges`` at the minimum), so that the outline runs
    from ``o`` through ``M``; above it ``o`` is where the exact geometry puts it, between the two."""
    g = _extreme(ring, e, False)[0]
    if g < 0:
        return False
    ebx, eby, etx, ety = _bot_top(ring, e)
    gbx, gby, gtx, gty = _bot_top(ring, g)
    edx = (etx - ebx) / (ety - eby)
    gdx = (gtx - gbx) / (gty - gby)
    if edx == gdx:
        return False
    if edx > gdx:
        return _inserts_before(ring, o, ebx, eby, etx, ety, edx) and \
            not _inserts_before(ring, o, gbx, gby, gtx, gty, gdx)
    return _inserts_before(ring, o, gbx, gby, gtx, gty, gdx) and \
        not _inserts_before(ring, o, ebx, eby, etx, ety, edx)


@numba.njit(cache=True)
def _inserts_before(ring, o, bx, by, tx, ty, dx):  # pragma: no cover - compiled
    """Clipper's ``E2InsertsBeforeE1(o, new)`` for a new edge (``Bot``, ``Top``, ``Dx``) whose ``Curr.X`` ties
    ``o``'s: compared where the one ending first ends (``TopX``, exact at an edge's own top)."""
    obx, oby, otx, oty = _bot_top(ring, o)
    odx = (otx - obx) / (oty - oby)
    if ty > oty:  # the new edge ends first: o's TopX on its top row (below o's own top)
        return tx < obx + _round(odx * (ty - oby))
    return otx > (tx if oty == ty else bx + _round(dx * (oty - by)))


@numba.njit(cache=True)
def _intersect_point(e1bx, e1by, e1ty, e1dx, e2bx, e2by, e2ty, e2dx):  # pragma: no cover - compiled
    """Clipper's ``IntersectPoint`` of two edges given by their ``Bot``, top row and ``Dx`` (``e1`` the one with the
    smaller ``Dx``, not both vertical), with its clamp below the lower top: ``(x, y)``."""
    if e1dx == 0:
        x = e1bx
        b2 = e2by - (e2bx / e2dx)
        y = _round(x / e2dx + b2)
    elif e2dx == 0:
        x = e2bx
        b1 = e1by - (e1bx / e1dx)
        y = _round(x / e1dx + b1)
    else:
        b1 = e1bx - e1by * e1dx
        b2 = e2bx - e2by * e2dx
        q = (b2 - b1) / (e1dx - e2dx)
        y = _round(q)
        if abs(e1dx) < abs(e2dx):
            x = _round(e1dx * q + b1)
        else:
            x = _round(e2dx * q + b2)
    if y < e1ty or y < e2ty:
        y = e1ty if e1ty > e2ty else e2ty
        if abs(e1dx) < abs(e2dx):
            x = e1bx + _round(e1dx * (y - e1by))
        else:
            x = e2bx + _round(e2dx * (y - e2by))
    return x, y


@numba.njit(cache=True)
def _through_vertex(ring, k, f):  # pragma: no cover - compiled
    """Whether the path crosses edge ``f`` at ring point ``k``, which lies strictly inside ``f``, and Clipper's sweep
    puts that crossing at ``k``: when the edge before ``k`` and the one after it are one from below ``k``'s row and
    one going on above it (``k`` is no local minimum or maximum, where the sweep's rounded order decides), and
    either ``f`` is horizontal (then the path crosses it; ``ProcessHorizontal`` meets the lower edge at its top,
    ``k``) or the sweep provably finds the crossing in the scanbeam above ``k``'s row: below it the lower edge and
    ``f`` keep their order once rounded (no tie on the row where the later starts), on the next vertex row above
    the upper edge and ``f`` are seen swapped (rounding keeps order, so the path does cross ``f``) and never
    swapped back, and ``IntersectPoint`` gives ``k``. Collinear edges are never seen swapped."""
    n = ring.shape[0]
    kb = k - 1 if k > 0 else n - 1
    ka = k + 1 if k + 1 < n else 0
    px, py = ring[k, 0], ring[k, 1]
    if (ring[kb, 1] - py) * (ring[ka, 1] - py) >= 0:
        return False
    f1 = f + 1 if f + 1 < n else 0
    if ring[f, 1] == ring[f1, 1]:
        return True
    low, high = (kb, ka) if ring[kb, 1] > py else (ka, kb)  # the far ends of the edges below and above
    lx, ly, hx, hy = ring[low, 0], ring[low, 1], ring[high, 0], ring[high, 1]
    fbx, fby, ftx, fty = _bot_top(ring, f)
    fdx = (ftx - fbx) / (fty - fby)
    ldx = (px - lx) / (py - ly)
    udx = (hx - px) / (hy - py)
    # below k the lower edge is on this side of f in x (exact: the sign of x_lower - x_f on any row below k)
    order = _orient(fbx, fby, ftx, fty, lx, ly)
    last = min(fby, ly)  # the lowest row below k both span
    above = -(1 << 62)  # the next vertex row above k
    for q in range(n):
        row = ring[q, 1]
        if py < row <= last:
            d = lx + _round(ldx * (row - ly)) - (fbx + _round(fdx * (row - fby)))
            if d * order < 0 or (row == last and d == 0):
                return False  # seen swapped below k, or tied where the later one starts
        elif row < py:
            above = max(above, row)
    top = max(fty, hy)  # the highest row above k both span
    if above < top:
        return False
    for q in range(n):
        row = ring[q, 1]
        if not top <= row <= above:
            continue
        d = px + _round(udx * (row - py)) - (fbx + _round(fdx * (row - fby)))
        if d * order > 0 or (row == above and d == 0):
            return False  # not seen swapped on the next row above k, or swapped back further up
    if udx < fdx:
        x, y = _intersect_point(px, py, hy, udx, fbx, fby, fty, fdx)
    else:
        x, y = _intersect_point(fbx, fby, fty, fdx, px, py, hy, udx)
    return x == px and y == py


@numba.njit(cache=True)
def _twice_area(pts):  # pragma: no cover - compiled
    """Clipper's ``Area`` sum (``-2 x`` its area; integers, exact): negative for Clipper's positive orientation."""
    total = 0
    j = pts.shape[0] - 1
    for i in range(pts.shape[0]):
        total += (pts[j, 0] + pts[i, 0]) * (pts[j, 1] - pts[i, 1])
        j = i
    return total


@numba.njit(cache=True)
def _side_area(ring, x, y, first, last):  # pragma: no cover - compiled
    """The same sum (float) for the closed path from the point ``(x, y)`` through ring points ``first`` to ``last``
    (cyclic) and back."""
    n = ring.shape[0]
    total = 0.0
    px, py = x, y
    k = first
    while True:
        qx, qy = float(ring[k, 0]), float(ring[k, 1])
        total += (px + qx) * (py - qy)
        px, py = qx, qy
        if k == last:
            break
        k = k + 1 if k + 1 < n else 0
    return total + (px + x) * (py - y)


@numba.njit(cache=True)
def _touch(ring, i, j):  # pragma: no cover - compiled
    """Where edges ``i`` and ``j`` meet when one's end lies strictly inside the other and the path crosses the
    other there (the edges before and after that ring point lie strictly on either side of it):
    ``(ok, x, y, t_i, t_j)``, the point and where it lies along each edge (0 or 1 for the one whose end it is);
    anything else (shared ends, overlaps, the path touching the other edge and turning back) is not ok."""
    n = ring.shape[0]
    i1 = i + 1 if i + 1 < n else 0
    j1 = j + 1 if j + 1 < n else 0
    for e, f, e1, f1, swap in ((i, j, i1, j1, False), (j, i, j1, i1, True)):
        fx0, fy0, fx1, fy1 = ring[f, 0], ring[f, 1], ring[f1, 0], ring[f1, 1]
        for end in range(2):
            k = e if end == 0 else e1
            px, py = ring[k, 0], ring[k, 1]
            if _orient(fx0, fy0, fx1, fy1, px, py) != 0:
                continue
            inside = (px - fx0) * (fx1 - px) + (py - fy0) * (fy1 - py)
            if inside <= 0:  # at or beyond an end of the other edge
                return False, 0, 0, 0.0, 0.0
            if not _through_vertex(ring, k, f):  # (an overlap, the path turning back, or the sweep deciding)
                return False, 0, 0, 0.0, 0.0
            length = float((fx1 - fx0) * (fx1 - fx0) + (fy1 - fy0) * (fy1 - fy0))
            t_f = ((px - fx0) * (fx1 - fx0) + (py - fy0) * (fy1 - fy0)) / length
            t_e = 0.0 if end == 0 else 1.0
            if swap:
                return True, px, py, t_f, t_e
            return True, px, py, t_e, t_f
    return False, 0, 0, 0.0, 0.0


@numba.njit(cache=True)
def _vouched_shrink(src, delta, margin):  # pragma: no cover - compiled
    """The shrunk outline of one oriented polygon (``K x 2`` int64), or ``0 x 2`` when not vouched for.

    The raw path's self-crossings each cut off the part of the path between them that runs the other way round
    than the polygon (a loop: its winding is negative, and the union drops it); these parts must not overlap and
    must hold every convex vertex's loop, and every two edges not cut off together stay apart."""
    nothing = np.empty((0, 2), np.int64)
    raw, kinds = _raw_offset(src, delta)
    kept = _clean_path(raw)
    n = kept.shape[0]
    if n < 3:
        return nothing
    ring = np.empty((n, 2), np.int64)
    kind = np.empty(n, np.int8)
    for i in range(n):
        ring[i, 0], ring[i, 1] = raw[kept[i], 0], raw[kept[i], 1]
        kind[i] = kinds[kept[i]]
    box = np.empty((n, 4), np.int64)  # each edge's rows and columns: low y, high y, low x, high x
    for e in range(n):
        e1 = e + 1 if e + 1 < n else 0
        box[e, 0], box[e, 1] = min(ring[e, 1], ring[e1, 1]), max(ring[e, 1], ring[e1, 1])
        box[e, 2], box[e, 3] = min(ring[e, 0], ring[e1, 0]), max(ring[e, 0], ring[e1, 0])
    near = np.empty((4 * n, 2), np.int64)  # pairs that do not meet but may be within the margin (grown as needed)
    n_near = 0
    positive = _twice_area(src) < 0
    # each crossing: the point Clipper computes, the edge the outline leaves by and the one it joins (with where
    # along them the exact crossing lies), the first ring point it cuts off
    cx = np.empty(n, np.int64)
    cy = np.empty(n, np.int64)
    leave = np.empty(n, np.int64)
    join = np.empty(n, np.int64)
    t_leave = np.empty(n)
    t_join = np.empty(n)
    cut_from = np.empty(n, np.int64)
    drop = np.full(n, -1, np.int64)       # ring point -> the crossing that cuts it off
    owner = np.full((n, 2), -1, np.int64)  # edge -> the crossings whose cut-off part it is (wholly or in part)
    count = 0
    for i in range(n):
        for j in range(i + 1, n):
            if box[j, 0] > box[i, 1] or box[i, 0] > box[j, 1] or \
                    box[j, 2] > box[i, 3] + margin or box[i, 2] > box[j, 3] + margin:
                continue  # no row in common, or more than the margin apart on every row
            meeting = 0 if j == i + 1 or (i == 0 and j == n - 1) else _meeting(ring, i, j)
            if meeting == 0:
                near, n_near = _near(near, n_near, i, j)
                continue
            if meeting == 2:
                ok, x, y, t_i, t_j = _crossing(ring, i, j)  # not ok: the rounded sweep may put it elsewhere
            else:
                ok, x, y, t_i, t_j = _touch(ring, i, j)
            if not ok:
                return nothing
            if meeting == 1 and (t_i == 0.0 or t_j == 0.0):
                # the path crosses the other edge at a ring point: that crossing is the one of the edge that ends
                # there (below), whose cut-off part holds this edge too (then they need not keep apart)
                near, n_near = _near(near, n_near, i, j)
                continue
            i1, j1 = i + 1, j + 1 if j + 1 < n else 0
            ex = ring[i, 0] + t_i * (ring[i1, 0] - ring[i, 0])
            ey = ring[i, 1] + t_i * (ring[i1, 1] - ring[i, 1])
            # the part cut off is the shorter way round between the two edges, and must run the other way round
            # than the polygon (the longer one may hold other loops, so its own sum says nothing)
            ahead = j - i  # ring points i + 1 .. j
            if 2 * ahead == n:
                return nothing
            side = _side_area(ring, ex, ey, i1, j) if 2 * ahead < n else _side_area(ring, ex, ey, j1, i)
            if side == 0 or (side < 0) == positive:
                return nothing
            if 2 * ahead < n:  # the part after edge i up to edge j: cut it off
                leave[count], t_leave[count], join[count], t_join[count] = i, t_i, j, t_j
                first, last, cut_from[count] = i1, j, i1
            else:
                leave[count], t_leave[count], join[count], t_join[count] = j, t_j, i, t_i
                first, last, cut_from[count] = j1, i, j1
            if meeting == 1 and t_join[count] == 1.0:
                # a crossing at the ring point that ends the edge joined: the part cut off ends with the edge after
                join[count], t_join[count] = join[count] + 1 if join[count] + 1 < n else 0, 0.0
            cx[count], cy[count] = x, y
            k = first
            while True:
                if drop[k] != -1:
                    return nothing  # cut-off parts overlap
                drop[k] = count
                k = k + 1 if k + 1 < n else 0
                if k == last + 1 or (last == n - 1 and k == 0):
                    break
            k = leave[count]
            while True:  # edges from the one left to the one joined
                if owner[k, 0] == -1:
                    owner[k, 0] = count
                elif owner[k, 1] == -1:
                    owner[k, 1] = count
                else:
                    return nothing
                if k == join[count]:
                    break
                k = k + 1 if k + 1 < n else 0
            count += 1
    # every convex vertex's loop cut off; its four edges (moved edge in, A -> P, P -> B, moved edge out) are one
    # group, which need not keep apart (what meets among them was a crossing above)
    group = np.full((n, 2), -1, np.int64)
    for q in range(n):
        if kind[q] == 2:
            if drop[q] == -1:
                return nothing
            e1 = q - 1 if q > 0 else n - 1
            for e in (e1 - 1 if e1 > 0 else n - 1, e1, q, q + 1 if q + 1 < n else 0):
                if group[e, 0] == -1:
                    group[e, 0] = q
                else:
                    group[e, 1] = q
    for e in range(n):  # an edge both joined and left: joined before it is left
        a, b = owner[e, 0], owner[e, 1]
        if b != -1:
            if join[a] == e and leave[b] == e:
                if not t_join[a] < t_leave[b]:
                    return nothing
            elif join[b] == e and leave[a] == e:
                if not t_join[b] < t_leave[a]:
                    return nothing
            else:
                return nothing
    for k in range(n_near):  # every two edges not of one cut-off part: apart
        i, j = near[k, 0], near[k, 1]
        shared = False
        for u in range(2):
            for v in range(2):
                if (owner[i, u] != -1 and owner[i, u] == owner[j, v]) or \
                        (group[i, u] != -1 and group[i, u] == group[j, v]):
                    shared = True
        if not shared and not _edges_apart(ring, i, j, margin) and not _flat_linked(ring, i, j):
            return nothing
    res = np.empty((n, 2), np.int64)
    m = 0
    for i in range(n):
        c = drop[i]
        if c == -1:
            res[m, 0], res[m, 1] = ring[i, 0], ring[i, 1]
            m += 1
        elif cut_from[c] == i:
            res[m, 0], res[m, 1] = cx[c], cy[c]
            m += 1
    return _fixup(res[:m], src)


@numba.njit(cache=True)
def _near(near, count, i, j):  # pragma: no cover - compiled
    """``near`` (``M x 2`` int64) with the pair ``(i, j)`` as its row ``count`` (grown when full), and the new count."""
    if count == near.shape[0]:
        grown = np.empty((2 * count, 2), np.int64)
        grown[:count] = near
        near = grown
    near[count, 0], near[count, 1] = i, j
    return near, count + 1


@numba.njit(cache=True)
def _fixup(res, src):  # pragma: no cover - compiled
    """``Clipper.FixupOutPolygon``: repeated points and points on a straight line between their neighbours
    removed; ``0 x 2`` when fewer than three remain, a removal turned straight back (where Clipper's result would
    depend on its start), or the outline runs the other way round than the polygon (it collapsed)."""
    nothing = np.empty((0, 2), np.int64)
    n = res.shape[0]
    if n < 3:
        return nothing
    nxt, prv = _ring_links(n)
    pp = 0
    last_ok = -1
    alive = n
    while True:
        if prv[pp] == pp or prv[pp] == nxt[pp]:
            return nothing
        a, b = prv[pp], nxt[pp]
        same = (res[pp, 0] == res[b, 0] and res[pp, 1] == res[b, 1]) or \
            (res[pp, 0] == res[a, 0] and res[pp, 1] == res[a, 1])
        if same or _slopes_equal(res[a, 0], res[a, 1], res[pp, 0], res[pp, 1], res[b, 0], res[b, 1]):
            if not same and (res[pp, 0] - res[a, 0]) * (res[b, 0] - res[pp, 0]) + \
                    (res[pp, 1] - res[a, 1]) * (res[b, 1] - res[pp, 1]) < 0:
                return nothing
            last_ok = -1
            nxt[a], prv[b] = b, a
            alive -= 1
            pp = a
        elif pp == last_ok:
            break
        else:
            if last_ok == -1:
                last_ok = pp
            pp = nxt[pp]
    out = np.empty((alive, 2), np.int64)
    i = pp
    for k in range(alive):
        out[k, 0], out[k, 1] = res[i, 0], res[i, 1]
        i = nxt[i]
    twice = 0
    j = alive - 1
    for i in range(alive):
        twice += (out[j, 0] + out[i, 0]) * (out[j, 1] - out[i, 1])
        j = i
    source = 0
    j = src.shape[0] - 1
    for i in range(src.shape[0]):
        source += (src[j, 0] + src[i, 0]) * (src[j, 1] - src[i, 1])
        j = i
    if twice == 0 or (twice > 0) != (source > 0):
        return nothing
    return out


__all__ = ["shrunk_outlines", "SHRINK_MARGIN", "SHRINK_MAX_POINTS"]
