#!/usr/bin/env python
"""DBNet speed side by side with MMOCR 1.0.1, in one run: target generation, post-processing, forward.

Runs MMOCR through shared/tools/mmocr-reference (built on first use, about two minutes). Each figure is
the fastest of --repeat runs; MMOCR times itself the same way inside its own process. 640 x 640 images
with 30 polygons and 1280 x 1280 with 120 (convex quads, concave stars of up to 16 vertices, curved bands,
tiny boxes, polygons crossing the border; about 15 % ignored); results are checked equal before timing.

Post-processing rows also get a floor: the steps of MMOCR that ours still makes the same way (thresholding, and
pyclipper's growing offset, minAreaRect and boxPoints of every region grown; findContours and approxPolyDP are
compiled copies in ours), timed alone; MMOCR's time over that floor is the most any code giving MMOCR's results
through those calls could reach.

  python scripts/benchmark_dbnet.py [--repeat 20] [--forward-repeat 5]
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
from polygon_cases import probability_map, random_polygons  # noqa: E402

from freereal_hf.convert.mmocr import mmocr_to_hf  # noqa: E402
from freereal_hf.models.dbnet import dbnet_post_process, dbnet_targets  # noqa: E402
from freereal_hf.models.dbnet.postprocess_dbnet import _thin_contours, _too_thin  # noqa: E402
from freereal_hf.models.raster import polygon_means  # noqa: E402


def floor(prob: np.ndarray, repeat: int) -> float:
    """Seconds of MMOCR's calls that ours still makes (module docstring); MMOCR's defaults (mask 0.3, unclip 1.5,
    epsilon 0.01, min_text_width 5)."""
    contours = cv2.findContours((prob > 0.3).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[0]
    contours = [c.reshape(-1, 2) for c in contours if len(c) >= 4]
    thin = _thin_contours(np.concatenate(contours), np.cumsum([len(c) for c in contours]), 1.5, 5.0)
    contours = [c for c, drop in zip(contours, thin.tolist()) if not drop]  # never approximated
    kept = []  # (approximated points as a list, distance) of the regions grown: not provably thin, scoring >= 0.3
    for contour in contours:
        pts = cv2.approxPolyDP(contour, 0.01 * cv2.arcLength(contour, True), True).reshape(-1, 2)
        if len(pts) < 4:
            continue
        distance = abs(cv2.contourArea(pts)) * 1.5 / cv2.arcLength(pts, True)
        if not _too_thin(pts, distance, 5.0) and polygon_means(prob, pts, [len(pts)])[0] >= 0.3:
            kept.append((pts.tolist(), distance))
    assert len(kept) >= len(dbnet_post_process(prob)["polygons"])

    def calls() -> None:
        np.greater(prob, 0.3)
        for pts, distance in kept:
            pco = pyclipper.PyclipperOffset()
            pco.AddPath(pts, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
            cv2.boxPoints(cv2.minAreaRect(np.array(pco.Execute(distance)[0], np.int32)))

    return fastest(calls, repeat)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--forward-repeat", type=int, default=5, help="0: skip the forward pass")
    parser.add_argument("--model", default="dbnet_r18")
    args = parser.parse_args()
    mmocr = MMOCR(Path(tempfile.mkdtemp(prefix="bench-mmocr-")))
    rng = np.random.default_rng(0)
    rows, floors = [], []

    for size, count in ((640, 30), (1280, 120)):
        polygons, ignored = random_polygons(rng, size, size, count)
        ref, ref_s = mmocr.targets(args.model, size, size, polygons, ignored, repeat=args.repeat)
        ours, ours_s = fastest(lambda: dbnet_targets(polygons, ignored, (size, size)), args.repeat)
        assert np.array_equal(ours["shrink_map"], ref["shrink"][0]), "targets differ from MMOCR's"
        assert np.abs(ours["threshold_map"] - ref["thr"][0]).max() <= 1e-3, "threshold maps differ from MMOCR's"
        rows.append((f"targets ({size}x{size}, {count} polygons)", ref_s, ours_s))

        prob = probability_map(rng, size, size, count)
        ref, ref_s = mmocr.postprocess(args.model, prob, repeat=args.repeat)
        ours, ours_s = fastest(lambda: dbnet_post_process(prob), args.repeat)
        assert len(ours["polygons"]) == len(ref["polygons"]), "post-processing differs from MMOCR's"
        rows.append((f"post-processing ({size}x{size}, {len(ref['polygons'])} regions)", ref_s, ours_s))
        floors.append((rows[-1][0], ref_s, floor(prob, args.repeat)))
    if args.forward_repeat < 1:
        return report(rows, floors)

    ckpt = mmocr.checkpoint(args.model)
    model = mmocr_to_hf(ckpt, args.model).eval()
    x = rng.normal(size=(1, 3, 640, 640)).astype(np.float32)
    ref, ref_s = mmocr.forward(args.model, ckpt, x, repeat=args.forward_repeat)
    with torch.no_grad():
        out, ours_s = fastest(lambda: model(torch.from_numpy(x)), args.forward_repeat)
    assert np.abs(out.prob.numpy() - ref["prob"]).max() <= 1e-4, "forward differs from MMOCR's"
    rows.append((f"forward {args.model} (1x3x640x640, {torch.get_num_threads()} threads)", ref_s, ours_s))

    report(rows, floors)


def report(rows: list[tuple[str, float, float]], floors: list[tuple[str, float, float]]) -> None:
    print(f"{'':48s} {'MMOCR ms':>10s} {'ours ms':>10s} {'speed-up':>9s}")
    for name, theirs, mine in rows:
        print(f"{name:48s} {theirs * 1e3:10.2f} {mine * 1e3:10.2f} {theirs / mine:8.2f}x")
    title = "floor: MMOCR's steps that ours still makes"
    print(f"\n{title:48s} {'MMOCR ms':>10s} {'floor ms':>10s} {'at most':>9s}")
    for name, theirs, least in floors:
        print(f"{name:48s} {theirs * 1e3:10.2f} {least * 1e3:10.2f} {theirs / least:8.2f}x")


if __name__ == "__main__":
    main()
