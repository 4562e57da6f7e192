"""The kernel targets' shortcuts past pyclipper, at distance 0 (``kernels.plain_outlines``) and when shrinking
(``shrink.shrunk_outlines``): what they vouch for is exactly what pyclipper returns, and the maps built with them
are those built with pyclipper alone."""

from __future__ import annotations

import numpy as np
import pyclipper
import cv2
import pytest
from polygon_cases import awkward_polygons, random_polygons, text_polygons

from freereal_hf.models import kernels, shrink
from freereal_hf.models.kernels import kernel_targets, plain_outlines
from freereal_hf.models.shrink import _flat_linked, _touch, shrunk_outlines


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
    direction), and most (16,675 of these deliberately awkward ones; 15,292 with the margin test alone) are vouched
    for. Without the margin the same polygons give disagreements, so these polygons do reach the cases where
    Clipper's rounding changes the outline."""
    polygons = awkward_polygons(np.random.default_rng(0), 20_000)
    vouched, differ = _disagreements(polygons, kernels.PLAIN_MARGIN)
    assert differ == 0 and vouched > 0.8 * len(polygons)
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
def test_kernel_targets_equal_those_from_pyclipper_alone(ratios, ids, monkeypatch):
    """PANet's and PSENet's kernels, on the benchmark's polygons, awkward ones (tiny ones get distance 0 at every
    ratio) and text-like ones (tilted bands, convex polygons): the same maps when nothing is vouched for, i.e. when
    every outline comes from pyclipper."""
    rng = np.random.default_rng(1)
    polygons = random_polygons(rng, 320, 320, 40)[0] + [p % 320 for p in awkward_polygons(rng, 200)] + \
        text_polygons(rng, 320, 320, 40)[0]
    asked, offset_outlines = [], kernels.offset_outlines  # how many outlines each call leaves to pyclipper

    def counted(points, ends, rows, distances):
        asked.append(len(rows))
        return offset_outlines(points, ends, rows, distances)

    monkeypatch.setattr(kernels, "offset_outlines", counted)
    fast = kernel_targets(polygons, [False] * len(polygons), (320, 320), ratios, 20, ids)[0]
    monkeypatch.setattr(kernels, "PLAIN_MAX_POINTS", 0)  # nothing vouched for
    monkeypatch.setattr(shrink, "SHRINK_MAX_POINTS", 0)
    slow = kernel_targets(polygons, [False] * len(polygons), (320, 320), ratios, 20, ids)[0]
    np.testing.assert_array_equal(fast, slow)
    assert asked[1] == len(polygons) * len(ratios) and asked[0] < asked[1] // 2
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
    fast = kernel_targets(polygons, [False] * 3, (300, 900), (1.0, 0.5), 20)[0]
    monkeypatch.setattr(kernels, "PLAIN_MAX_POINTS", 0)
    monkeypatch.setattr(shrink, "SHRINK_MAX_POINTS", 0)
    np.testing.assert_array_equal(fast, kernel_targets(polygons, [False] * 3, (300, 900), (1.0, 0.5), 20)[0])
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


def _tiny_and_rectilinear(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Boxes of 0 to 6 pixels, closed orthogonal staircases, combs whose teeth are 0 to 3 pixels apart, and boxes
    with one corner cut on a slant: vertical and horizontal edges a pixel or two from each other."""
    out = []
    for t in range(count):
        kind = t % 4
        if kind == 0:
            w, h = rng.integers(0, 7, 2)
            poly = [[0, 0], [w, 0], [w, h], [0, h]]
        elif kind == 1:
            poly = [[0, 0]]
            for x, y in zip(np.cumsum(rng.integers(1, 5, 4)), np.cumsum(rng.integers(1, 5, 4))):
                poly += [[x, poly[-1][1]], [x, y]]
            poly += [[0, poly[-1][1]]]
        elif kind == 2:
            width, gap, height, base = rng.integers(1, 4), rng.integers(0, 4), rng.integers(2, 12), rng.integers(1, 4)
            poly, x = [[0, 0]], 0
            for tooth in range(3):
                poly += [[x, height], [x + width, height], [x + width, base]] + ([[x + width + gap, base]] if tooth < 2
                                                                                 else [])
                x += width + gap
            poly += [[x - gap, 0]]
        else:
            w, h, c = *rng.integers(2, 30, 2), rng.integers(1, 4)
            poly = [[0, 0], [w, 0], [w, h - c], [w - c, h], [0, h]]
        poly = np.array(poly)[::rng.choice([1, -1])]
        out.append((poly[:, ::rng.choice([1, -1])] + rng.integers(0, 600, 2)).astype(np.int32))
    return out


def test_vertical_and_horizontal_edges_need_no_rounding_margin():
    """Clipper's sweep puts a vertical edge on its exact x on every row and a horizontal one on its exact row, so two
    of them need only not meet, and a slanted edge (rounded by up to half a pixel) half the margin from one: boxes a
    pixel wide are vouched for at distance 0 and when shrunk, and all that is vouched for is pyclipper's (with a
    pixel's margin for every pair of edges: 1,130 of the 2,000 at distance 0, 165 shrunk outlines)."""
    polygons = _tiny_and_rectilinear(np.random.default_rng(5), 2000)
    vouched, differ = _disagreements(polygons, kernels.PLAIN_MARGIN)
    assert differ == 0 and vouched > 0.8 * len(polygons)
    distances = -np.random.default_rng(6).choice([1, 1, 2, 3], size=(len(polygons), 2)).astype(np.float64)
    vouched, differ = _shrink_disagreements(polygons, distances)
    assert differ == 0 and vouched > 250  # of 2,102 that pyclipper gives as one piece
    one_wide = np.array([[440, 248], [441, 248], [441, 249], [440, 249]], np.int32)  # MMOCR's tiny words
    assert plain_outlines(one_wide, [4])[2].all()
    assert shrunk_outlines(np.array([[127, 602], [130, 602], [130, 605], [127, 605]], np.int32), [4], [[-1.0]])[2].all()


def test_a_crossing_at_a_ring_point_or_on_a_vertex_row_is_vouched_for_where_the_sweep_agrees():
    """Curved bands whose shrunk path crosses itself at one of its own points (a moved edge's end lands on the next
    moved edge) or exactly on another vertex's row: vouched for, and pyclipper's. Where the ring point is a local
    minimum of the path (the sweep inserts its two edges by rounded x, here on the wrong side), not vouched for."""
    band = [[347, 607], [374, 594], [400, 583], [427, 577], [454, 577], [480, 584], [507, 595], [507, 619],
            [480, 608], [454, 601], [427, 601], [400, 607], [374, 618], [347, 631]]
    on_a_row = [[479, 297], [505, 284], [532, 272], [559, 266], [585, 266], [612, 272], [639, 283], [639, 307],
                [612, 296], [585, 290], [559, 290], [532, 296], [505, 308], [479, 321]]
    minimum = [[45, 656], [46, 671], [48, 686], [51, 701], [56, 715], [61, 730], [67, 745], [74, 760], [80, 775],
               [85, 789], [89, 804], [92, 819], [94, 834], [94, 848], [92, 863], [42, 863], [44, 848], [44, 834],
               [42, 819], [39, 804], [35, 789], [29, 775], [23, 760], [17, 745], [11, 730], [5, 715], [1, 701],
               [-2, 686], [-3, 671], [-4, 656]]
    loop_after = [[84, 1], [89, -51], [85, -51], [80, 1]]  # the part cut off runs from the other edge to the point
    polygons = [np.array(p, np.int32) for p in (band, on_a_row, minimum, loop_after)]
    distances = np.array([[-7.0], [-7.0], [-3.0], [-1.0]])
    assert _shrink_disagreements(polygons, distances) == (3, 0)
    assert shrunk_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]),
                           distances)[2].ravel().tolist() == [True, True, False, True]
    # the sweep would see the edges the other way round below the point, or not yet crossed on the next row above
    swapped_below = [[149, 313], [124, 323], [92, 334], [71, 323], [61, 320], [61, 301], [70, 286], [90, 266],
                     [86, 247], [104, 273], [124, 285], [132, 284]]
    late_above = [[87, 52], [85, 58], [83, 62], [76, 69], [74, 67], [65, 69], [59, 82], [58, 72], [41, 64], [55, 56],
                  [42, 43], [68, 23], [74, 26], [93, 30], [87, 35], [85, 43], [91, 48]]
    for polygon, distance in ((swapped_below, -7.0), (late_above, -3.0)):
        assert not shrunk_outlines(np.array(polygon, np.int32), [len(polygon)], [[distance]])[2].any()


def test_a_crossing_tied_at_a_maximum_is_vouched_for_where_the_sweep_takes_it_through_the_maximum():
    """A curved band whose moved edge crosses a convex vertex's loop just below the loop's top: once rounded, the
    sweep never sees the two swapped, and the crossing is found only when the maximum is processed (``DoMaxima``
    takes the edge through the loop's top): vouched for, and pyclipper's. Refused where the top is no local maximum
    (the path goes on up) or where the crossing edge is not between the maximum's two edges all the way up (each
    accepted, these give outlines unlike pyclipper's)."""
    band = [[-30, 316], [-3, 323], [22, 325], [49, 320], [76, 309], [102, 296], [129, 285], [129, 309], [102, 320],
            [76, 333], [49, 344], [22, 349], [-3, 347], [-30, 340]]
    assert _shrink_disagreements([np.array(band, np.int32)], np.array([[-7.0]])) == (1, 0)
    goes_on_up = [[31, 572], [-5, 622], [-6, 672], [29, 722], [72, 772], [87, 823], [61, 873], [17, 923], [-38, 923],
                  [6, 873], [31, 823], [16, 772], [-26, 722], [-61, 672], [-60, 622], [-24, 572]]
    not_between = [[-59, 88], [-53, 125], [-38, 162], [-16, 199], [7, 236], [32, 273], [53, 310], [40, 310], [19, 273],
                   [-4, 236], [-29, 199], [-51, 162], [-66, 125], [-72, 88]]
    for polygon, distance in ((goes_on_up, -13.0), (not_between, -3.0)):
        assert not shrunk_outlines(np.array(polygon, np.int32), [len(polygon)], [[distance]])[2].any()


def test_a_crossing_tied_at_a_minimum_is_vouched_for_where_the_sweep_inserts_the_edges_around_it():
    """The mirror case on a band's other side: the crossing lies just above the bottom of the edge starting later,
    whose rounded x the other edge ties there. Where that bottom is a local minimum and Clipper inserts its two
    edges on either side of the other (``E2InsertsBeforeE1``), the crossing is at the minimum: vouched for, and
    pyclipper's. Refused where the bottom is no local minimum, or where the insertion puts both edges on one side
    (each accepted, these give outlines unlike pyclipper's)."""
    band = [[-43, 299], [-16, 287], [10, 274], [36, 263], [63, 258], [90, 259], [116, 266], [116, 290], [90, 283],
            [63, 282], [36, 287], [10, 298], [-16, 311], [-43, 323]]
    assert _shrink_disagreements([np.array(band, np.int32)], np.array([[-7.0]])) == (1, 0)
    not_a_minimum = [[113, 610], [95, 613], [85, 633], [83, 619], [65, 628], [64, 605], [65, 573], [94, 586],
                     [113, 591], [100, 600]]
    one_side = [[323, 233], [313, 240], [313, 245], [310, 241], [308, 246], [306, 243], [294, 236], [295, 234],
                [292, 233], [291, 230], [286, 229], [290, 223], [294, 222], [298, 221], [310, 218], [315, 221],
                [322, 224], [317, 228], [322, 230]]
    for polygon, distance in ((not_a_minimum, -5.0), (one_side, -1.0)):
        assert not shrunk_outlines(np.array(polygon, np.int32), [len(polygon)], [[distance]])[2].any()


def test_a_ring_point_on_another_edge_counts_only_where_the_path_crosses_it():
    """``_touch``: a point of the path strictly inside another edge, the path going on across that edge, is where
    they meet; the path turning back there (touching, not crossing) is not ok, nor is an end on the other's end."""
    crossing = np.array([[0, 0], [10, 0], [10, 5], [5, 0], [0, -5]], np.int64)
    turning = np.array([[0, 0], [10, 0], [10, 5], [5, 0], [0, 5]], np.int64)
    ok, x, y, t_i, t_j = _touch(crossing, 0, 2)
    assert ok and (x, y) == (5, 0) and (t_i, t_j) == (0.5, 1.0)
    assert _touch(crossing, 0, 3)[:3] == (True, 5, 0)
    assert not _touch(turning, 0, 2)[0] and not _touch(turning, 0, 3)[0]
    assert not _touch(crossing, 0, 1)[0]  # shared end


def test_gather_polygons_takes_any_layout_and_flags_what_cannot_be_drawn():
    """``K x 2``, flat ``2K``, OpenCV's ``K x 1 x 2`` and lists give the same int32 points (truncated towards zero);
    fewer than ``least`` points or a non-finite coordinate make a polygon unusable (its bad points become 0); an
    odd number of coordinates is a ValueError naming the polygon."""
    box = np.array([[1.7, 2.2], [10.9, 2.0], [10.5, -8.5], [1.0, 9.0]], np.float32)
    points, ends, usable = kernels.gather_polygons([box, box.ravel(), box.reshape(-1, 1, 2), box.tolist(),
                                                    [[0, 0], [5, 5]], [[0, 0], [5, np.nan], [9, 9]]])
    np.testing.assert_array_equal(points[:16], np.tile([[1, 2], [10, 2], [10, -8], [1, 9]], (4, 1)))
    assert points.dtype == np.int32 and ends.tolist() == [4, 8, 12, 16, 18, 21]
    assert usable.tolist() == [True] * 4 + [False, False] and points[19].tolist() == [0, 0]
    assert kernels.gather_polygons([[[0, 0], [5, 5]]], least=2)[2].tolist() == [True]
    with pytest.raises(ValueError, match="polygon 1 has 5 coordinates"):
        kernels.gather_polygons([box, [0, 1, 2, 3, 4]])


def test_offset_outlines_are_pyclippers_for_each_request():
    """Many (polygon, distance) requests at once: each outline is ``polygon_offsetter``'s, a repeated request points
    at the same outline, and a split or empty result is an empty slice."""
    from freereal_hf.models.polygons import offset_outlines, polygon_offsetter
    polygons = [np.array([[0, 0], [40, 0], [40, 20], [0, 20]]), np.array([[0, 0], [20, 0], [20, 9], [40, 9], [40, 0],
                [70, 0], [70, 12], [62, 20], [40, 20], [40, 11], [20, 11], [20, 20], [0, 20]]),  # splits in two
                np.array([[0, 0], [3, 0], [3, 3], [0, 3]])]
    points, ends = np.concatenate(polygons), np.cumsum([len(p) for p in polygons])
    requests = [(0, -2.0), (0, -5.0), (0, -2.0), (1, 0.0), (1, -3.0), (2, -4.0)]
    outlines, first, stop = offset_outlines(points, ends, [p for p, _ in requests], [d for _, d in requests])
    for (p, d), a, b in zip(requests, first, stop):
        np.testing.assert_array_equal(outlines[a:b], polygon_offsetter(polygons[p], np.int32)(d))
    assert (first[0], stop[0]) == (first[2], stop[2]) and first[4] == stop[4] and first[5] == stop[5]
    assert outlines.dtype == np.int32 and stop[3] > first[3]


def test_edges_within_a_pixel_are_apart_where_the_sweep_sees_them_in_one_order():
    """Edges nearer than the margin are still apart for the sweep when their rounded x (``TopX``) keep one order on
    every vertex row both span, tied only on rows where neither starts nor ends: a star's sharp tip is vouched for
    at distance 0. A tie where an edge starts or ends, or rounded x seen the other way round, is not (each of these
    comes out unlike pyclipper's when let through)."""
    star = [[435, 467], [403, 469], [434, 476], [399, 477], [409, 509], [383, 481], [346, 489], [373, 462], [365, 425],
            [386, 451], [407, 423], [397, 454], [419, 430], [402, 460]]
    tie_at_an_end = [[114, 100], [103, 64], [103, 63], [115, 100]]
    crossing = [[313, 96], [283, 92], [294, 104], [260, 100]]
    polygons = [np.array(p, np.int32) for p in (star, tie_at_an_end, crossing)]
    assert plain_outlines(np.concatenate(polygons), np.cumsum([len(p) for p in polygons]))[2].tolist() == \
        [True, False, False]
    assert _disagreements(polygons, kernels.PLAIN_MARGIN) == (1, 0)
    sliver = np.array([[89, 70], [109, -20], [106, -21], [87, 69]], np.int32)  # shrunk by 1: a tie where one ends
    assert _shrink_disagreements([sliver], np.array([[-1.0]]))[1] == 0
