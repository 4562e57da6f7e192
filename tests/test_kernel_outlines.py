"""The kernel targets' shortcut past pyclipper at distance 0 (``kernels.plain_outlines``): what it vouches for is
exactly what pyclipper returns, and the maps built with it are those built with pyclipper alone."""

from __future__ import annotations

import numpy as np
import pyclipper
import pytest
from polygon_cases import awkward_polygons, random_polygons

from freereal_hf.models import kernels
from freereal_hf.models.kernels import kernel_maps, plain_outlines


def _cyclic(ring) -> tuple:
    """A ring of points up to where it starts and which way it runs."""
    ring = [tuple(p) for p in ring]
    return min(tuple(seq[s:] + seq[:s]) for seq in (ring, ring[::-1]) for s in range(len(ring)))


def _disagreements(polygons: list[np.ndarray], margin: float) -> tuple[int, int]:
    """(vouched for, of those unlike pyclipper's ``Execute(0)``)."""
    outlines, ends, plain = plain_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]), margin)
    differ = 0
    for i in np.flatnonzero(plain):
        pco = pyclipper.PyclipperOffset()
        pco.AddPath(polygons[i].tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        theirs = pco.Execute(0)
        mine = outlines[ends[i - 1] if i else 0:ends[i]]
        differ += len(theirs) != 1 or _cyclic(theirs[0]) != _cyclic(mine.tolist())
    return int(plain.sum()), differ


def test_what_is_vouched_for_is_pyclippers_outline():
    """20,000 awkward polygons: every vouched-for outline is pyclipper's, point for point (up to start and
    direction), and most (about two thirds of these deliberately awkward ones) are vouched for. Without the margin the same polygons give disagreements, so these
    polygons do reach the cases where Clipper's rounding changes the outline."""
    polygons = awkward_polygons(np.random.default_rng(0), 20_000)
    vouched, differ = _disagreements(polygons, kernels.PLAIN_MARGIN)
    assert differ == 0 and vouched > 0.6 * len(polygons)
    assert _disagreements(polygons, 0.0)[1] > 0


def test_the_clean_up_matches_clippers():
    """Repeated points, closing copies and straight-through vertices are dropped as Clipper drops them; a turn
    straight back, a self-intersection, fewer than three distinct points and a touching outline are left to
    pyclipper."""
    cases = {
        "box with extras": ([[0, 0], [5, 0], [10, 0], [10, 8], [10, 8], [0, 8], [0, 3], [0, 0]], True),
        "spike back": ([[0, 0], [10, 0], [10, 8], [10, 20], [10, 8], [0, 8]], False),
        "bow tie": ([[0, 0], [10, 10], [10, 0], [0, 10]], False),
        "two points": ([[0, 0], [10, 10], [0, 0]], False),
        "a line": ([[0, 0], [5, 5], [10, 10]], False),
        "touching": ([[0, 0], [20, 0], [20, 10], [10, 0], [0, 10]], False),
    }
    polygons = [np.array(p, np.int32) for p, _ in cases.values()]
    outlines, ends, plain = plain_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]))
    assert plain.tolist() == [ok for _, ok in cases.values()]
    np.testing.assert_array_equal(outlines, [[0, 0], [10, 0], [10, 8], [0, 8]])
    assert ends.tolist() == [4] * len(cases)
    assert _disagreements(polygons, kernels.PLAIN_MARGIN) == (1, 0)


@pytest.mark.parametrize("ratios, ids", [((1.0, 0.5), True), ((1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4), False)])
def test_kernel_maps_equal_those_from_pyclipper_alone(ratios, ids, monkeypatch):
    """PANet's and PSENet's kernels, on the benchmark's polygons and awkward ones (tiny ones get distance 0 at every
    ratio): the same maps when nothing is vouched for, i.e. when every outline comes from pyclipper."""
    rng = np.random.default_rng(1)
    polygons = random_polygons(rng, 320, 320, 40)[0] + [p % 320 for p in awkward_polygons(rng, 200)]
    fast = kernel_maps(polygons, (320, 320), ratios, 20, ids)
    nothing = lambda points, ends: (np.zeros((0, 2), np.int32), np.zeros(len(ends), np.int64),  # noqa: E731
                                    np.zeros(len(ends), bool))
    monkeypatch.setattr(kernels, "plain_outlines", nothing)
    slow = kernel_maps(polygons, (320, 320), ratios, 20, ids)
    np.testing.assert_array_equal(fast, slow)
    assert fast[0].any() and (fast[-1] > 0).sum() < (fast[0] > 0).sum()


def test_long_outlines_are_left_to_pyclipper(monkeypatch):
    """A clean polygon of more than PLAIN_MAX_POINTS points is not vouched for (the proof compares every two edges),
    one of at most that many is; the maps equal pyclipper's alone."""
    limit = kernels.PLAIN_MAX_POINTS
    sizes = (limit, 200, 5000)
    polygons = [np.stack([150 + 300 * i + 140 * np.cos(a), 150 + 140 * np.sin(a)], 1).astype(np.int32)
                for i, a in enumerate(np.linspace(0, 2 * np.pi, n, endpoint=False) for n in sizes)]
    points, ends = np.concatenate(polygons), np.cumsum(sizes)
    monkeypatch.setattr(kernels, "PLAIN_MAX_POINTS", 10**6)
    _, cleaned_ends, plain = plain_outlines(points, ends)
    cleaned = np.diff(cleaned_ends, prepend=0)
    assert plain[:2].all() and cleaned[0] <= limit < cleaned[1]  # (5000: a staircase, refused)
    monkeypatch.undo()
    assert plain_outlines(points, ends)[2].tolist() == [True, False, False]
    fast = kernel_maps(polygons, (300, 900), (1.0, 0.5), 20)
    monkeypatch.setattr(kernels, "PLAIN_MAX_POINTS", 0)
    np.testing.assert_array_equal(fast, kernel_maps(polygons, (300, 900), (1.0, 0.5), 20))
    assert [(fast[0] == i + 1).sum() > 50000 for i in range(3)] == [True] * 3
