#!/usr/bin/env python
"""Glyph-mask speed and quality: ours (a background model from a band around each character box, strokes where
the colour reaches half way to the text colour) against a reference in the same run, cv2.kmeans on grayscale per
character box (the rule of the first author's earlier code).

Images are 512 x 512 renders of the synthetic demo domain with about 50 characters each, on each background kind
(colour gradients, fine textures, photographs; the text differs in brightness or, in half the images, in hue
only); one thread (images per second per core). Quality is the IoU with the true stroke masks the renderer knows
(alpha > 0.5 of its anti-aliased glyphs), per background kind; characters the mask leaves out count as missed.

  python scripts/benchmark_glyphmix.py [--images 8] [--repeat 3]
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
    parser.add_argument("--images", type=int, default=8, help="images per background kind")
    parser.add_argument("--size", type=int, default=512, help="image side (fonts scale with it)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cv2.setRNGSeed(0)
    kinds = {"gradient": ["gradient"], "texture": [f"texture:{t}" for t in ("gravel", "grass", "brick", "fabric")],
             "photo": ["photo:astronaut", "photo:hopper", "photo:coffee", "photo:chelsea"]}
    samples = {family: [render_sample(np.random.default_rng([11, i, j]), "synthetic", (args.size, args.size), max_words=24,
                                      background=kind, colour_mode=("brightness", "hue")[i % 2])
                        for j, kind in enumerate(members) for i in range(args.images)]
               for family, members in kinds.items()}
    every = [s for group in samples.values() for s in group]
    chars = np.mean([len(s.char_quads) for s in every])
    print(f"{len(every)} images of {args.size} x {args.size}, {chars:.1f} characters each on average, 1 thread, best of {args.repeat}")
    print(f"{'':<30}{'images/s/core':>14}" + "".join(f"{'IoU ' + f:>14}" for f in samples) + f"{'left out':>10}")
    rates = []
    for name, fn in (("ours (band model)", glyph_mask), ("reference (gray cv2.kmeans)", grayscale_kmeans_mask)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            masks = [fn(s.image, s.char_quads) for s in every]
            best = min(best, time.perf_counter() - start)
        counts: dict[str, int] = {}
        if fn is glyph_mask:
            for s in every:
                glyph_mask(s.image, s.char_quads, counts)
        ious, start = {}, 0
        for family, group in samples.items():
            ious[family] = float(np.mean([(m & s.stroke_mask).sum() / max(1, (m | s.stroke_mask).sum())
                                          for m, s in zip(masks[start:start + len(group)], group)]))
            start += len(group)
        left = f"{counts['left_out'] / counts['chars']:.1%}" if counts else "-"
        rates.append(len(every) / best)
        print(f"{name:<30}{rates[-1]:>14.1f}" + "".join(f"{v:>14.3f}" for v in ious.values()) + f"{left:>10}")
    print(f"speed-up over the reference: {rates[0] / rates[1]:.2f}x; target >= 150 images/s/core: "
          f"{'met' if rates[0] >= 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
