"""The kernel targets' shortcuts past pyclipper, at distance 0 (``kernels.plain_outlines``) and when shrinking
(``shrink.shrunk_outlines``): what they vouch for is exactly what pyclipper returns, and the maps built with them
are those built with pyclipper alone."""

from __future__ import annotations

import numpy as np
import pyclipper
import cv2
import pytest
from polygon_cases import awkward_polygons, random_polygons

from freereal_hf.models import kernels
from freereal_hf.models.kernels import kernel_maps, plain_outlines
from freereal_hf.models.shrink import _flat_linked, shrunk_outlines


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
    monkeypatch.setattr(kernels, "shrunk_outlines", lambda points, ends, distances: (
        np.zeros((0, 2), np.int32), np.zeros(distances.size, np.int64), np.zeros(distances.shape, bool)))
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
    monkeypatch.setattr(kernels, "shrunk_outlines", lambda points, ends, distances: (
        np.zeros((0, 2), np.int32), np.zeros(distances.size, np.int64), np.zeros(distances.shape, bool)))
    np.testing.assert_array_equal(fast, kernel_maps(polygons, (300, 900), (1.0, 0.5), 20))
    assert [(fast[0] == i + 1).sum() > 50000 for i in range(3)] == [True] * 3


def _shapes(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Integer polygons for the shrink: the benchmark's kinds, awkward ones, rotated and axis-aligned rectangles from
    3 to 200 pixels, random convex ones."""
    out = [np.asarray(p).astype(np.int32) for p in random_polygons(rng, 640, 640, count // 3)[0]]
    out += awkward_polygons(rng, count // 3)
    for _ in range(count // 6):
        size, angle = rng.uniform((3, 3), (200, 60)), rng.choice([0, 90, rng.uniform(-90, 90)])
        out.append(cv2.boxPoints(((rng.uniform(0, 600), rng.uniform(0, 600)), size, angle)).astype(np.int32))
    for _ in range(count // 6):
        angles, radius = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12))), rng.uniform(3, 80)
        out.append(np.stack([300 + radius * np.cos(angles) * rng.uniform(0.3, 1), 300 + radius * np.sin(angles)],
                            1).astype(np.int32))
    return [p for p in out if len(p) >= 3]


def _shrink_disagreements(polygons: list[np.ndarray], distances: np.ndarray) -> tuple[int, int]:
    """(vouched for, of those unlike pyclipper's only piece) over every polygon and distance."""
    outlines, ends, vouched = shrunk_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]),
                                              distances)
    cuts, differ = np.concatenate([[0], ends]), 0
    for i, r in zip(*np.nonzero(vouched)):
        pco = pyclipper.PyclipperOffset()
        pco.AddPath(polygons[i].tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        theirs, at = pco.Execute(distances[i, r]), i * distances.shape[1] + r
        differ += len(theirs) != 1 or _cyclic(theirs[0]) != _cyclic(outlines[cuts[at]:cuts[at + 1]].tolist())
    return int(vouched.sum()), differ


def test_what_is_vouched_for_when_shrinking_is_pyclippers_outline():
    """4,800 polygons at three distances each from 1 to 20 pixels: every vouched-for shrunk outline is pyclipper's,
    point for point (up to start and direction), and a good share is vouched for (most rectangles from 2 pixels on)."""
    rng = np.random.default_rng(0)
    polygons = _shapes(rng, 4800)
    distances = -rng.choice([1, 2, 3, 4, 5, 7, 10, 15, 20], size=(len(polygons), 3)).astype(np.float64)
    vouched, differ = _shrink_disagreements(polygons, distances)
    assert differ == 0 and vouched > 0.25 * distances.size
    boxes = [cv2.boxPoints(((300, 300), rng.uniform((30, 12), (200, 60)), rng.uniform(-90, 90))).astype(np.int32)
             for _ in range(300)]
    box_vouched, box_differ = _shrink_disagreements(boxes, -rng.integers(2, 6, (300, 1)).astype(np.float64))
    assert box_differ == 0 and box_vouched > 0.7 * len(boxes)


def test_the_shrink_refuses_what_its_model_gets_wrong():
    """Cases each check exists for, against pyclipper: a triangle shrunk past its incircle (pyclipper: empty; the
    crossings would make a small triangle turned by 180 degrees); a crossing next to where an edge starts (Clipper
    inserts the edge past it); edges meeting through a flat bottom (two bounds, not one); a crossing the sweep finds
    one scanbeam late (clamped into that beam: vouched for, and right)."""
    cases = [([[284, 349], [337, 269], [345, 295]], -10.0), ([[151, 40], [109, 23], [115, 39], [106, 31], [117, 57],
             [150, 73], [171, 75]], -2.0), ([[325, 305], [319, 341], [315, 349], [313, 353], [309, 242], [314, 249]],
             -1.0), ([[11, 383], [-16, 351], [61, 283], [89, 315]], -3.0)]
    polygons = [np.array(p, np.int32) for p, _ in cases]
    distances = np.array([[d] for _, d in cases])
    vouched, differ = _shrink_disagreements(polygons, distances)
    assert differ == 0 and vouched >= 1
    assert shrunk_outlines(polygons[3], [4], [[-3.0]])[2].all()
    assert not shrunk_outlines(polygons[0], [3], [[-10.0]])[2].any()


def test_the_shrink_leaves_the_rest_to_pyclipper_and_checks_its_input():
    """Distances that do not shrink by a pixel or more (0, growing, fractions of a pixel, NaN) or are absurdly large,
    polygons of more than SHRINK_MAX_POINTS points, with fewer than three distinct points, turning straight back or
    with coordinates beyond 2^26: not vouched for.
    Bad layouts: ValueErrors."""
    box = np.array([[0, 0], [40, 0], [40, 20], [0, 20]], np.int32)
    _, ends, vouched = shrunk_outlines(box, [4], [[0.0, 2.0, -0.5, np.nan, -3.0]])
    assert vouched.tolist() == [[False, False, False, False, True]] and ends.tolist() == [0, 0, 0, 0, 4]
    angles = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    circle = np.stack([100 + 90 * np.cos(angles), 100 + 90 * np.sin(angles)], 1).astype(np.int32)
    spike = np.array([[0, 0], [10, 0], [10, 8], [10, 20], [10, 8], [0, 8]], np.int32)
    line = np.array([[0, 0], [5, 5], [10, 10], [0, 0]], np.int32)
    far = box.astype(np.int64) + 2**31  # beyond Clipper's 62-bit range of products, and ours
    polygons = [circle, spike, line, far]
    assert not shrunk_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]),
                               np.full((4, 1), -3.0))[2].any()
    assert not shrunk_outlines(box, [4], [[-2.0**40]])[2].any()
    with pytest.raises(ValueError, match="ends"):
        shrunk_outlines(box, [3], [[-2.0]])
    with pytest.raises(ValueError, match="distances"):
        shrunk_outlines(box, [4], [-2.0])


def test_edges_joined_by_a_horizontal_are_one_bound_only_where_the_path_crosses_its_row():
    """The apart test skips two edges joined only by horizontal edges when they are one bound of Clipper's sweep
    (the path goes on up or down across that row), not at a flat bottom, where both bounds are active side by side."""
    flat_bottom = np.array([[0, 0], [10, 100], [11, 100], [21, 0]], np.int64)
    staircase = np.array([[0, 0], [10, 50], [11, 50], [20, 100], [0, 100]], np.int64)
    assert not _flat_linked(flat_bottom, 0, 2) and not _flat_linked(flat_bottom, 2, 0)
    assert _flat_linked(staircase, 0, 2) and _flat_linked(staircase, 2, 0)
    assert not _flat_linked(staircase, 0, 3)  # not joined by horizontals only
