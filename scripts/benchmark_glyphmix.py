#!/usr/bin/env python
"""Glyph-mask speed and quality: ours (2-means on CIELAB colour, half-space updates) against a reference in
the same run, cv2.kmeans on grayscale per character box (the rule of the first author's earlier code).

Images are 512 x 512 demo renders with about 50 characters each; one thread (images per second per core).
Quality is the IoU with the true stroke masks the renderer knows.

  python scripts/benchmark_glyphmix.py [--images 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import time

import cv2
import numpy as np
import torch

from freereal_hf.data.demo import render_sample
from freereal_hf.glyphmix import glyph_mask


def grayscale_kmeans_mask(image: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """The reference: cv2.kmeans (k=2) on the grayscale pixels of each box; background = border majority."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    mask = np.zeros((h, w), bool)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    for q in quads:
        x0, y0 = (max(0, math.floor(v)) for v in q.min(0))
        x1, y1 = min(w, math.ceil(q[:, 0].max())), min(h, math.ceil(q[:, 1].max()))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        patch = gray[y0:y1, x0:x1].reshape(-1, 1).astype(np.float32)
        _, labels, _ = cv2.kmeans(patch, 2, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        labels = labels.reshape(y1 - y0, x1 - x0).astype(bool)
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        mask[y0:y1, x0:x1] |= ~labels if border.mean() > 0.5 else labels
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cv2.setRNGSeed(0)
    samples = [render_sample(np.random.default_rng([11, i]), "synthetic", (512, 512), max_words=24)
               for i in range(args.images)]
    chars = np.mean([len(s.char_quads) for s in samples])
    rows = []
    for name, fn in (("ours (Lab 2-means)", glyph_mask), ("reference (gray cv2.kmeans)", grayscale_kmeans_mask)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            masks = [fn(s.image, s.char_quads) for s in samples]
            best = min(best, time.perf_counter() - start)
        ious = [float((m & s.stroke_mask).sum() / max(1, (m | s.stroke_mask).sum())) for m, s in zip(masks, samples)]
        rows.append((name, len(samples) / best, float(np.mean(ious))))
    print(f"{len(samples)} images of 512 x 512, {chars:.1f} characters each on average, 1 thread, best of {args.repeat}")
    print(f"{'':<30}{'images/s/core':>14}{'mean IoU':>10}")
    for name, rate, iou in rows:
        print(f"{name:<30}{rate:>14.1f}{iou:>10.3f}")
    print(f"speed-up over the reference: {rows[0][1] / rows[1][1]:.2f}x; target >= 100 images/s/core: "
          f"{'met' if rows[0][1] >= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
