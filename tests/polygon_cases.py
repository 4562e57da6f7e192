"""Random polygons and probability maps that exercise target generation and post-processing."""

from __future__ import annotations

import cv2
import numpy as np


def random_polygons(rng: np.random.Generator, height: int, width: int, count: int) -> tuple[list, list]:
    """``count`` polygons mixing convex quads, concave stars, curved bands, tiny boxes and ones crossing the
    border, with about 15% flagged ignored. Returns ``(polygons as K x 2 float32, ignored flags)``."""
    polygons, ignored = [], []
    for i in range(count):
        kind = i % 5
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if kind == 0:  # rotated rectangle (convex quad)
            w, h = rng.uniform(20, 160), rng.uniform(10, 50)
            poly = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(-60, 60)))
        elif kind == 1:  # concave star
            n = int(rng.integers(5, 9))
            angles = np.sort(rng.uniform(0, 2 * np.pi, 2 * n))
            radii = np.where(np.arange(2 * n) % 2 == 0, rng.uniform(25, 60), rng.uniform(8, 20))
            poly = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        elif kind == 2:  # curved text band (Total-Text-like, 14 points)
            xs = cx + np.linspace(-80, 80, 7)
            ys = cy + 25 * np.sin(np.linspace(0, np.pi, 7) + rng.uniform(0, np.pi))
            poly = np.concatenate([np.stack([xs, ys - 12], 1), np.stack([xs[::-1], ys[::-1] + 12], 1)])
        elif kind == 3:  # tiny box (below DBNet's min side length, or area < 1)
            s = rng.uniform(0.3, 7)
            poly = np.array([[cx, cy], [cx + s, cy], [cx + s, cy + s * 0.8], [cx, cy + s * 0.8]])
        else:  # crossing the image border
            edge_x = rng.choice([-20.0, width - 40.0])
            poly = cv2.boxPoints(((edge_x + 30, cy), (rng.uniform(60, 120), rng.uniform(14, 40)), rng.uniform(-20, 20)))
        polygons.append(np.asarray(poly, np.float32))
        ignored.append(bool(rng.random() < 0.15))
    return polygons, ignored


def probability_map(rng: np.random.Generator, height: int, width: int, count: int) -> np.ndarray:
    """A DBNet-like probability map: blurred filled text regions plus noise, values in [0, 1]."""
    canvas = np.zeros((height, width), np.float32)
    polygons, _ = random_polygons(rng, height, width, count)
    for poly in polygons:
        cv2.fillPoly(canvas, [poly.astype(np.int32)], float(rng.uniform(0.45, 0.98)))
    canvas = cv2.GaussianBlur(canvas, (0, 0), 2.0)
    canvas += rng.normal(0, 0.05, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 1)


def kernel_logits(rng: np.random.Generator, height: int, width: int, count: int, kernels: int,
                  embedding_dim: int = 0) -> np.ndarray:
    """PSENet/PANet-like raw head outputs at 1/4 scale: ``(1 + kernels + embedding_dim) x H x W`` float32.

    Text logits over filled random polygons (touching and overlapping ones included), each kernel the text
    eroded a little more, noise everywhere; with ``embedding_dim``, a per-instance embedding (instances 2 to 4
    apart, around the aggregation threshold) plus noise."""
    polygons, _ = random_polygons(rng, height * 4, width * 4, count)
    ids = np.zeros((height, width), np.int32)
    for i, poly in enumerate(polygons):
        cv2.fillPoly(ids, [(poly / 4).astype(np.int32)], i + 1)
    text = (ids > 0).astype(np.uint8)
    maps = [text]
    for k in range(1, kernels + 1):
        maps.append(cv2.erode(text, np.ones((3, 3), np.uint8), iterations=k // 2 + 1) if k > 1 else
                    cv2.erode(text, np.ones((2, 2), np.uint8)))
    logits = [np.where(m > 0, rng.uniform(0.5, 4.0), rng.uniform(-4.0, -0.5)) + rng.normal(0, 0.8, m.shape)
              for m in maps]
    if embedding_dim:
        centres = rng.uniform(0, 2.5, (len(polygons) + 1, embedding_dim)) * np.arange(len(polygons) + 1)[:, None] % 7
        emb = centres[ids].transpose(2, 0, 1) + rng.normal(0, 0.6, (embedding_dim, height, width))
        logits += list(emb)
    return np.stack(logits).astype(np.float32)
