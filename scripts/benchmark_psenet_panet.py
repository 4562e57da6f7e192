#!/usr/bin/env python
"""PSENet and PANet speed side by side with MMOCR 1.0.1, in one run: targets, forward, post-processing.

Runs MMOCR through shared/tools/mmocr-reference (built on first use). Each figure is the fastest of --repeat
runs; MMOCR times itself the same way inside its own process. 640 x 640 images with 30 polygons; results are
checked equal before timing.

Each targets row also gets a floor: the pyclipper calls our targets still make, timed alone, plus allocating the
maps, filling them and the mask from ready outlines; MMOCR's time over that floor is the most any code making the
same calls could reach.

``--sets N`` also times both targets at 640 on N more polygon sets (seeds 1 to N), one line each and the lowest
ratio: the issue's goals are measured on polygons the benchmark has not seen. ``--set-kind`` picks their kinds: the
benchmark's own (``random_polygons``: quads, stars, bands, tiny boxes, ones crossing the border; the default) or text
annotations without stars (``text_polygons``: quads, tilted curved bands, convex polygons of 5 to 14 points, tiny
boxes).

Post-processing is timed on one core against an absolute bar (10 ms per 640 x 640 image with 30 instances),
not against the reference tool: its contour_expand / pixel_group are pure-Python stand-ins for mmcv's compiled
ops, so a ratio against them would flatter us. Their time is printed for information only.

  python scripts/benchmark_psenet_panet.py [--repeat 30] [--forward-repeat 3] [--sets 0] [--set-kind benchmark]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pyclipper
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mmocr_reference import MMOCR, fastest  # noqa: E402
from polygon_cases import kernel_logits, random_polygons, text_polygons  # noqa: E402

from freereal_hf.convert.mmocr import mmocr_to_hf  # noqa: E402
from freereal_hf.models.kernels import kernel_targets, plain_outlines  # noqa: E402
from freereal_hf.models.polygons import polygon_offsetter, shrink_distances  # noqa: E402
from freereal_hf.models.panet import panet_post_process, panet_targets  # noqa: E402
from freereal_hf.models.psenet import psenet_post_process, psenet_targets  # noqa: E402
from freereal_hf.models.shrink import shrunk_outlines  # noqa: E402


def floor(polygons: list, ignored: list, size: int, ratios: tuple, ids: bool, repeat: int) -> float:
    """Seconds of the work no faster code making the same calls can skip (see the module docstring)."""
    points = [np.asarray(p).reshape(-1, 2).astype(np.int32) for p in polygons]
    flat, point_ends = np.concatenate(points), np.cumsum([len(p) for p in points])
    outlines, ends, plain = plain_outlines(flat, point_ends)
    distances = shrink_distances(flat, point_ends, ratios, 20)
    shrunk, shrunk_ends, vouched = shrunk_outlines(flat, point_ends, distances)  # not pyclipper's to make
    shrunk_cut = np.concatenate([[0], shrunk_ends])
    calls, drawn = [], [[] for _ in ratios]  # pyclipper's (path, distances); each kernel's (outline, value)
    for i, (p, zero_vouched, row) in enumerate(zip(points, plain, distances.tolist())):
        got = {0: outlines[ends[i - 1] if i else 0:ends[i]]} if zero_vouched else {}
        for k, d in enumerate(row):
            if d not in got and vouched[i, k]:
                got[d] = shrunk[shrunk_cut[i * len(ratios) + k]:shrunk_cut[i * len(ratios) + k + 1]]
        asked = sorted(set(row) - set(got))
        calls.append((p.tolist(), asked))
        offset = polygon_offsetter(p, np.int32)
        got.update({d: offset(d) for d in asked})
        for k, d in enumerate(row):
            if len(got[d]):
                drawn[k].append((got[d], i + 1 if ids else 1))

    def clipper() -> None:
        for path, distances in calls:
            pco = pyclipper.PyclipperOffset()
            pco.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
            for d in distances:
                pco.Execute(d)

    def fills() -> tuple:
        out = np.zeros((len(ratios), size, size), np.int16 if ids else np.uint8)
        for k, kernel in enumerate(drawn):
            for outline, value in kernel:
                cv2.fillPoly(out[k], [outline], value)
        mask = np.ones((size, size), np.uint8)
        for polygon, flag in zip(points, ignored):
            if flag:
                cv2.fillPoly(mask, [polygon], 0)
        return out, mask

    (maps, mask), fills_s = fastest(fills, repeat)
    ours = kernel_targets(polygons, ignored, (size, size), ratios, 20, ids)
    assert np.array_equal(maps, ours[0]) and np.array_equal(mask, ours[1]), "floor's maps differ"
    return fastest(clipper, repeat)[1] + fills_s


def time_targets(mmocr: MMOCR, polygons: list, ignored: list, size: int, repeat: int) -> list[tuple[float, float]]:
    """PSENet's and PANet's targets for one ``size x size`` image, MMOCR's and ours: ``[(theirs, ours)]`` seconds
    for each (fastest of ``repeat``), after checking the results equal."""
    times = []
    for preset, targets, key, theirs in (("psenet_r50", psenet_targets, "kernels", lambda r: r[1:, 0] > 0.5),
                                         ("panet_r18", panet_targets, "kernel_instances", lambda r: r[1, 0])):
        ref, ref_s = mmocr.targets(preset, size, size, polygons, ignored, repeat=repeat)
        ours, ours_s = fastest(lambda: targets(polygons, ignored, (size, size)), repeat)
        assert np.array_equal(ours[key], theirs(ref["kernels"])), f"{preset} targets differ from MMOCR's"
        times.append((ref_s, ours_s))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--forward-repeat", type=int, default=3, help="0: skip the forward pass")
    parser.add_argument("--sets", type=int, default=0, help="more polygon sets to time the targets on at 640")
    parser.add_argument("--set-kind", choices=("benchmark", "text"), default="benchmark",
                        help="the more sets' polygons: the benchmark's kinds, or text annotations without stars")
    args = parser.parse_args()
    if args.repeat < 1 or args.forward_repeat < 0 or args.sets < 0:
        parser.error("--repeat must be at least 1, --forward-repeat and --sets at least 0")
    mmocr = MMOCR(Path(tempfile.mkdtemp(prefix="bench-mmocr-")))
    rng = np.random.default_rng(0)
    rows, absolute, floors = [], [], []
    for size, count in ((640, 30), (1280, 120)):
        # the 1280 case draws from its own generator, so the post-processing maps below stay those of earlier runs
        polygons, ignored = random_polygons(rng if size == 640 else np.random.default_rng(size), size, size, count)
        (pse_ref, pse_ours), (pan_ref, pan_ours) = time_targets(mmocr, polygons, ignored, size, args.repeat)
        rows.append((f"PSENet targets ({size}x{size}, {count} polygons)", pse_ref, pse_ours))
        floors.append((rows[-1][0], pse_ref, floor(polygons, ignored, size, (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4), False,
                                                   args.repeat)))
        rows.append((f"PANet targets ({size}x{size}, {count} polygons)", pan_ref, pan_ours))
        floors.append((rows[-1][0], pan_ref, floor(polygons, ignored, size, (1.0, 0.5), True, args.repeat)))
    make = random_polygons if args.set_kind == "benchmark" else text_polygons
    sets = [(seed, time_targets(mmocr, *make(np.random.default_rng(seed), 640, 640, 30), 640, args.repeat))
            for seed in range(1, args.sets + 1)]

    torch.set_num_threads(1)
    logits = kernel_logits(rng, 160, 160, 30, 6)
    prob = torch.sigmoid(torch.from_numpy(logits)).numpy()
    ref, ref_s = mmocr.postprocess("psenet_r50", logits, repeat=1)
    ours, ours_s = fastest(lambda: psenet_post_process(prob), args.repeat)
    assert len(ours["polygons"]) == len(ref["polygons"]), "PSENet post-processing differs from MMOCR's"
    absolute.append((f"PSENet post-processing (640x640, {len(ours['polygons'])} instances)", ours_s, ref_s))
    logits = kernel_logits(rng, 160, 160, 30, 1, 4)
    maps = logits.copy()
    maps[:2] = torch.sigmoid(torch.from_numpy(logits[:2])).numpy()
    ref, ref_s = mmocr.postprocess("panet_r18", logits, repeat=1)
    ours, ours_s = fastest(lambda: panet_post_process(maps), args.repeat)
    assert len(ours["polygons"]) == len(ref["polygons"]), "PANet post-processing differs from MMOCR's"
    absolute.append((f"PANet post-processing (640x640, {len(ours['polygons'])} instances)", ours_s, ref_s))
    torch.set_num_threads(2)

    x = rng.normal(size=(1, 3, 640, 640)).astype(np.float32)
    for preset in ("psenet_r50", "panet_r18") if args.forward_repeat > 0 else ():
        ckpt = mmocr.checkpoint(preset)
        model = mmocr_to_hf(ckpt, preset).eval()
        ref, ref_s = mmocr.forward(preset, ckpt, x, repeat=args.forward_repeat)
        with torch.no_grad():
            out, ours_s = fastest(lambda: model(torch.from_numpy(x)), args.forward_repeat)
        assert np.abs(out.logits.numpy() - ref["logits"]).max() <= 1e-4, "forward differs from MMOCR's"
        rows.append((f"forward {preset} (1x3x640x640, {torch.get_num_threads()} threads)", ref_s, ours_s))

    print(f"{'':52s} {'MMOCR ms':>10s} {'ours ms':>10s} {'speed-up':>9s}")
    for name, theirs, mine in rows:
        print(f"{name:52s} {theirs * 1e3:10.2f} {mine * 1e3:10.2f} {theirs / mine:8.2f}x")
    print(f"\n{'floor: pyclipper calls + maps, fills, mask':52s} {'MMOCR ms':>10s} {'floor ms':>10s} {'at most':>9s}")
    for name, theirs, least in floors:
        print(f"{name:52s} {theirs * 1e3:10.2f} {least * 1e3:10.2f} {theirs / least:8.2f}x")
    if sets:
        print(f"\n{'more ' + args.set_kind + ' sets (640x640, 30 polygons), ms':52s} {'PSENet MMOCR/ours':>18s} "
              f"{'PANet MMOCR/ours':>17s} {'speed-ups':>16s}")
        for seed, ((a, b), (c, d)) in sets:
            pse, pan = f"{a * 1e3:.2f}/{b * 1e3:.2f}", f"{c * 1e3:.2f}/{d * 1e3:.2f}"
            print(f"{'seed ' + str(seed):52s} {pse:>18s} {pan:>17s} {a / b:7.2f}x {c / d:7.2f}x")
        print(f"{'lowest':52s} {'':>18s} {'':>17s} {min(a / b for _, ((a, b), _) in sets):7.2f}x "
              f"{min(c / d for _, (_, (c, d)) in sets):7.2f}x")
    print(f"\n{'one core':52s} {'ours ms':>10s} {'bar ms':>10s} {'pure-Python reference ms':>26s}")
    for name, mine, reference in absolute:
        print(f"{name:52s} {mine * 1e3:10.2f} {10.0:10.2f} {reference * 1e3:26.1f}")


if __name__ == "__main__":
    main()
