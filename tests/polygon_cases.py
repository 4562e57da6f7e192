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


def text_polygons(rng: np.random.Generator, height: int, width: int, count: int) -> tuple[list, list]:
    """``count`` polygons shaped like text annotations, without stars: rotated quads, 14-point curved bands
    (Total-Text-like: random length, width, bend and tilt), convex polygons of 5 to 14 points (CTW-like boundaries
    of short words) and tiny boxes, with about 15% flagged ignored. Returns ``(polygons as K x 2 float32, ignored
    flags)``."""
    polygons, ignored = [], []
    for i in range(count):
        kind = i % 4
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if kind == 0:  # rotated rectangle
            poly = cv2.boxPoints(((cx, cy), (rng.uniform(20, 200), rng.uniform(10, 60)), rng.uniform(-90, 90)))
        elif kind == 1:  # curved band, tilted
            length, thick = rng.uniform(80, 300), rng.uniform(12, 40)
            xs = np.linspace(-length / 2, length / 2, 7)
            ys = rng.uniform(5, 40) * np.sin(np.linspace(0, np.pi, 7) + rng.uniform(0, np.pi))
            band = np.concatenate([np.stack([xs, ys - thick / 2], 1), np.stack([xs[::-1], ys[::-1] + thick / 2], 1)])
            c, s = np.cos(tilt := rng.uniform(-0.6, 0.6)), np.sin(tilt)
            poly = band @ np.array([[c, s], [-s, c]]) + (cx, cy)
        elif kind == 2:  # convex polygon of 5 to 14 points
            angles, radius = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 15)))), rng.uniform(15, 80)
            points = np.stack([cx + radius * np.cos(angles) * rng.uniform(1, 3), cy + radius * np.sin(angles)], 1)
            poly = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
        else:  # tiny box
            side = rng.uniform(0.3, 7)
            poly = np.array([[cx, cy], [cx + side, cy], [cx + side, cy + side * 0.8], [cx, cy + side * 0.8]])
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


def awkward_polygons(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` integer polygons (``K x 2`` int32) where exact geometry matters: sharp spikes, U shapes whose arms
    nearly touch, slivers under a pixel wide, flat parts and repeated or collinear points, random point sets on a
    tiny grid (self-intersecting, degenerate), random star-shaped outlines and thin curved bands; half of them
    reversed."""
    out: list[np.ndarray] = []
    while len(out) < count:
        kind = len(out) % 8
        base = rng.uniform(0, 300, 2)
        if kind == 0:
            poly = random_polygons(rng, 640, 640, 1)[0][0]
        elif kind == 1:  # sharp spikes
            n = int(rng.integers(3, 9))
            angles = np.sort(rng.uniform(0, 2 * np.pi, 2 * n))
            radii = np.where(np.arange(2 * n) % 2 == 0, rng.uniform(20, 200), rng.uniform(0.5, 5))
            poly = base + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
        elif kind == 2:  # a U whose arms are 0 to 4 pixels apart, slightly rotated
            gap, length, height, thick = rng.uniform(0, 4), rng.uniform(5, 100), rng.uniform(3, 40), rng.uniform(0.5, 6)
            poly = np.array([[0, 0], [length, 0], [length, height], [length - thick, height], [length - thick, thick],
                             [gap + thick, thick], [gap + thick, height], [gap, height], [gap, thick / 2], [0, thick / 2]])
            a = rng.uniform(-0.5, 0.5)
            poly = base + poly @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        elif kind == 3:  # random points on a tiny grid
            size = int(rng.integers(3, 12))
            poly = rng.integers(0, size, (int(rng.integers(3, 9)), 2)) + rng.integers(0, 300, 2)
        elif kind == 4:  # star-shaped, random radii
            k = int(rng.integers(3, 20))
            angles, radii = np.sort(rng.uniform(0, 2 * np.pi, k)), rng.uniform(1, 60, k)
            poly = base + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
        elif kind == 5:  # axis-aligned box with collinear and repeated points
            x0, y0 = rng.integers(0, 300, 2)
            w, h = rng.integers(1, 40, 2)
            poly = np.array([[x0, y0], [x0 + w // 2, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0 + w, y0 + h],
                             [x0, y0 + h], [x0, y0 + h // 3], [x0, y0]])
        elif kind == 6:  # slanted sliver, 0.3 to 5 pixels wide
            d = rng.uniform(-100, 100, 2)
            normal = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * rng.uniform(0.3, 5) * rng.choice([-1, 1])
            poly = np.array([base, base + d, base + d + normal, base + normal])
        else:  # thin curved band
            xs = np.linspace(0, rng.uniform(20, 200), int(rng.integers(3, 10)))
            ys = rng.uniform(-20, 20) * np.sin(xs / 30 + rng.uniform(0, 3))
            thick = rng.uniform(0.5, 8)
            poly = base + np.concatenate([np.stack([xs, ys], 1), np.stack([xs[::-1], ys[::-1] + thick], 1)])
        poly = np.asarray(poly, np.float64).reshape(-1, 2)
        out.append((poly[::-1] if rng.random() < 0.5 else poly).astype(np.int32))
    return out
