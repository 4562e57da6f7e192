"""Glyph (stroke) masks of synthetic text: which pixels inside each character box are the letter.

SynthText renders its words on photographs, so the background behind a letter is a gradient, a texture or
clutter. Each character box is split from its background by a model of that background taken from a band of
pixels around the box: a linear colour trend (gradients, uneven light) and the spread around it (textures), in
CIELAB; the text colour is the direction the box's pixels leave that spread in, and a pixel is stroke where it
reaches more than half way to the text colour (an estimate of the renderer's alpha > 0.5). Characters with no
clean split are left out of the mask and counted. The image's mask is the union over its characters (``False``
outside every box). The method and its measured quality per background kind: ``docs/method.md``.

The mask is deterministic per image, so it is computed once, as a ``datasets.map`` step
(:func:`add_glyph_masks`, cached by the dataset's fingerprint), and stored as a PNG-compressed
``H x W`` 0/1 image in a ``glyph_mask`` column (a few hundred bytes an image), with the number of characters
left out in ``glyph_left_out``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import cv2
import numba
import numpy as np
from datasets import Features, Value

from ..data.records import RecordError, decode_image, image_bytes
from ..data.schema import char_quads_as_array

GLYPH_COLUMN = "glyph_mask"
LEFT_OUT_COLUMN = "glyph_left_out"
logger = logging.getLogger("freereal_hf.glyphmix")


RING = 2  # width in pixels of the band around a character box that shows its background
SIGMA_FLOOR = 1.0  # Lab units (8-bit scale) added to the background's spread: flat backgrounds still vary
FAR = 16.0  # squared whitened distance beyond which a pixel is not background (chi-square(3)'s 99.9 %)
NEAR = 9.0  # squared whitened distance within which a pixel is background whatever its direction
ALPHA = 0.5  # a stroke pixel reaches more than half way to the text colour: the renderer's mask is alpha > 0.5
MIN_CONTRAST = 4.0  # whitened distance of the text colour below which no split is clean
MIN_SOLID = 0.6  # fraction of stroke pixels with two stroke neighbours (of 4) below which it is speckle, not text
MIN_FILL, MAX_FILL = 0.02, 0.97  # stroke fraction of the box outside which the split is not trusted
MAX_RING_TEXT = 0.4  # fraction of the band that looks like text beyond which the split is not clean
TRIM = 0.7  # the trend is refitted on this fraction of the band most like it (neighbouring letters drop out)


@numba.njit(cache=True)
def _solve3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` with ``a @ x = b`` for ``3 x 3`` float64 ``a`` and ``b`` (Gaussian elimination, partial pivoting)."""
    a, b = a.copy(), b.copy()
    for c in range(3):
        p = c
        for r in range(c + 1, 3):
            if abs(a[r, c]) > abs(a[p, c]):
                p = r
        for k in range(3):
            a[c, k], a[p, k] = a[p, k], a[c, k]
            b[c, k], b[p, k] = b[p, k], b[c, k]
        for r in range(c + 1, 3):
            f = a[r, c] / a[c, c]
            for k in range(3):
                a[r, k] -= f * a[c, k]
                b[r, k] -= f * b[c, k]
    x = np.zeros((3, 3))
    for r in range(2, -1, -1):
        for k in range(3):
            v = b[r, k]
            for j in range(r + 1, 3):
                v -= a[r, j] * x[j, k]
            x[r, k] = v / a[r, r]
    return x


@numba.njit(cache=True)
def _trend(design: np.ndarray, pixels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Least-squares ``3 x 3`` coefficients of ``pixels ~ design @ coef`` over the rows where ``keep``
    (``P x 3`` design ``(1, x, y)``, ``P x 3`` Lab)."""
    a, b = np.zeros((3, 3)), np.zeros((3, 3))
    for i in range(len(design)):
        if keep[i]:
            for r in range(3):
                for c in range(3):
                    a[r, c] += design[i, r] * design[i, c]
                    b[r, c] += design[i, r] * pixels[i, c]
    for r in range(3):
        a[r, r] += 1e-4
    return _solve3(a, b)


@numba.njit(cache=True)
def _residual(design: np.ndarray, pixels: np.ndarray, coef: np.ndarray) -> np.ndarray:
    out = np.empty_like(pixels)
    for i in range(len(pixels)):
        for k in range(3):
            out[i, k] = pixels[i, k] - (design[i, 0] * coef[0, k] + design[i, 1] * coef[1, k]
                                        + design[i, 2] * coef[2, k])
    return out


@numba.njit(cache=True)
def _char_strokes(lab: np.ndarray, x0: int, y0: int, x1: int, y1: int, quad: np.ndarray, mask: np.ndarray) -> bool:
    """Splits one character box ``[x0, x1) x [y0, y1)`` of ``lab`` (``H x W x 3`` uint8 CIELAB) from its
    background and sets its stroke pixels inside ``quad`` (``4 x 2``, pixel centres at +0.5) in ``mask``; returns
    False, and sets nothing, where no clean split exists.

    The background is modelled from the band of ``RING`` pixels around the box (its own border where the box
    fills the image): a linear colour trend over the position (gradients, uneven light), fitted with the band's
    pixels least like it trimmed away twice (neighbouring letters; ``TRIM`` kept), and the spread of the kept
    pixels around it (textures), by which every residual is whitened. The text colour is the mean residual of the
    box's pixels far outside that spread (``FAR``); along it, the mean of the upper half of those pixels is the
    full text colour (anti-aliased edges pull the plain mean in). A pixel is stroke where it reaches more than
    ``ALPHA`` of the way there and is not near the background (``NEAR``): an estimate of the renderer's alpha >
    0.5, which is what the stroke mask of anti-aliased text means. No clean split: too few far pixels or too
    little contrast, a stroke fill outside ``[MIN_FILL, MAX_FILL]``, speckle (under ``MIN_SOLID`` of the stroke
    pixels with two stroke neighbours of 4), or a band more than ``MAX_RING_TEXT`` stroke-like."""
    height, width = lab.shape[0], lab.shape[1]
    rx0, ry0, rx1, ry1 = max(x0 - RING, 0), max(y0 - RING, 0), min(x1 + RING, width), min(y1 + RING, height)
    rw, rh = rx1 - rx0, ry1 - ry0
    sx, sy = 1.0 / (x1 - x0 + 2 * RING), 1.0 / (y1 - y0 + 2 * RING)
    # the band: the rectangle around the box, or the box's own border where it fills the image
    border = rw * rh - (x1 - x0) * (y1 - y0) < 8
    n_band = 2 * (x1 - x0 + y1 - y0) - 4 if border else rw * rh - (x1 - x0) * (y1 - y0)
    band_design, band_pixels = np.empty((n_band, 3)), np.empty((n_band, 3))
    j = 0
    for y in range(ry0, ry1):
        for x in range(rx0, rx1):
            inside = y0 <= y < y1 and x0 <= x < x1
            if (inside and (y == y0 or y == y1 - 1 or x == x0 or x == x1 - 1)) if border else not inside:
                band_design[j, 0], band_design[j, 1], band_design[j, 2] = 1.0, (x - x0 + RING) * sx, (y - y0 + RING) * sy
                for k in range(3):
                    band_pixels[j, k] = lab[y, x, k]
                j += 1
    keep = np.ones(n_band, np.bool_)
    for _ in range(2):  # trimmed least squares: the band's pixels least like the trend drop out
        err = (_residual(band_design, band_pixels, _trend(band_design, band_pixels, keep)) ** 2).sum(1)
        kept = np.sort(err[keep])
        if len(kept):
            keep &= err <= kept[max(int(math.floor(TRIM * (len(kept) - 1))), 0)]
    coef = _trend(band_design, band_pixels, keep)
    band_residual = _residual(band_design, band_pixels, coef)[keep]
    count = max(float(len(band_residual)), 2.0)
    mean = np.zeros(3)
    for i in range(len(band_residual)):
        mean += band_residual[i]
    mean /= count
    spread = np.eye(3) * SIGMA_FLOOR ** 2
    for i in range(len(band_residual)):
        for a in range(3):
            for b in range(3):
                spread[a, b] += (band_residual[i, a] - mean[a]) * (band_residual[i, b] - mean[b]) / (count - 1)
    metric = _solve3(spread, np.eye(3))  # the background ~ N(0, spread)
    # every box pixel: its residual weighted by the metric and its whitened distance; the text colour is the mean
    # residual of the far ones. (Band pixels only count as strokes for the band test below.)
    weighted, distance = np.empty((rh, rw, 3)), np.empty((rh, rw))
    text, far_weighted = np.zeros(3), np.zeros(3)
    n_far = 0
    for r in range(rh):
        y = ry0 + r
        dy = (y - y0 + RING) * sy
        for c in range(rw):
            x = rx0 + c
            dx = (x - x0 + RING) * sx
            e0 = lab[y, x, 0] - (coef[0, 0] + dx * coef[1, 0] + dy * coef[2, 0])
            e1 = lab[y, x, 1] - (coef[0, 1] + dx * coef[1, 1] + dy * coef[2, 1])
            e2 = lab[y, x, 2] - (coef[0, 2] + dx * coef[1, 2] + dy * coef[2, 2])
            w0 = e0 * metric[0, 0] + e1 * metric[1, 0] + e2 * metric[2, 0]
            w1 = e0 * metric[0, 1] + e1 * metric[1, 1] + e2 * metric[2, 1]
            w2 = e0 * metric[0, 2] + e1 * metric[1, 2] + e2 * metric[2, 2]
            weighted[r, c, 0], weighted[r, c, 1], weighted[r, c, 2] = w0, w1, w2
            d = w0 * e0 + w1 * e1 + w2 * e2
            distance[r, c] = d
            if d > FAR and y0 <= y < y1 and x0 <= x < x1:
                n_far += 1
                text[0] += e0
                text[1] += e1
                text[2] += e2
                far_weighted[0] += w0
                far_weighted[1] += w1
                far_weighted[2] += w2
    text /= max(n_far, 1)
    norm = max((text @ metric) @ text, 1e-12)
    direction = text / norm  # along = weighted . direction, in units of the text colour
    far_mean = (far_weighted @ direction) / max(n_far, 1)
    upper_sum, n_upper = 0.0, 0
    for r in range(y0 - ry0, y1 - ry0):  # anti-aliased edges pull the mean in: the text is the far pixels' upper half
        for c in range(x0 - rx0, x1 - rx0):
            along = weighted[r, c, 0] * direction[0] + weighted[r, c, 1] * direction[1] + weighted[r, c, 2] * direction[2]
            if distance[r, c] > FAR and along >= far_mean:
                upper_sum += along
                n_upper += 1
    reach = max(upper_sum / max(n_upper, 1), 1e-6)
    strokes = np.zeros((rh, rw), np.bool_)
    n_strokes, band_strokes = 0, 0
    for r in range(rh):
        for c in range(rw):
            along = weighted[r, c, 0] * direction[0] + weighted[r, c, 1] * direction[1] + weighted[r, c, 2] * direction[2]
            if along > ALPHA * reach and distance[r, c] > NEAR:
                strokes[r, c] = True
                y, x = ry0 + r, rx0 + c
                inside = y0 <= y < y1 and x0 <= x < x1
                n_strokes += inside
                band_strokes += ((inside and (y == y0 or y == y1 - 1 or x == x0 or x == x1 - 1)) if border
                                 else not inside)
    solid = 0
    for r in range(y0 - ry0, y1 - ry0):
        for c in range(x0 - rx0, x1 - rx0):
            if strokes[r, c]:
                neighbours = ((r > 0 and strokes[r - 1, c]) + (r < rh - 1 and strokes[r + 1, c])
                              + (c > 0 and strokes[r, c - 1]) + (c < rw - 1 and strokes[r, c + 1]))
                solid += neighbours >= 2
    n_box = (x1 - x0) * (y1 - y0)
    fill = n_strokes / n_box
    if not (n_far >= max(2.0, MIN_FILL * n_box) and math.sqrt(norm) * reach >= MIN_CONTRAST
            and solid >= MIN_SOLID * max(n_strokes, 1) and MIN_FILL <= fill <= MAX_FILL
            and band_strokes <= MAX_RING_TEXT * n_band):
        return False
    for r in range(y0 - ry0, y1 - ry0):
        for c in range(x0 - rx0, x1 - rx0):
            if not strokes[r, c]:
                continue
            px, py = rx0 + c + 0.5, ry0 + r + 0.5
            above, below = True, True  # the pixel centre is on one side of all four edges: inside the quad
            for e in range(4):
                ax, ay, bx, by = quad[e, 0], quad[e, 1], quad[(e + 1) % 4, 0], quad[(e + 1) % 4, 1]
                side = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
                above &= side >= 0
                below &= side <= 0
            if above or below:
                mask[ry0 + r, rx0 + c] = True
    return True


@numba.njit(cache=True)
def _strokes(lab: np.ndarray, boxes: np.ndarray, quads: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`_char_strokes` for every box (``M x 4`` int ``(x0, y0, x1, y1)``, ``M x 4 x 2`` float quads);
    returns ``M`` bool: whether each had a clean split."""
    clean = np.zeros(len(boxes), np.bool_)
    for b in range(len(boxes)):
        clean[b] = _char_strokes(lab, boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], quads[b], mask)
    return clean


def glyph_mask(image: np.ndarray, char_quads: np.ndarray, counts: dict[str, int] | None = None) -> np.ndarray:
    """The stroke pixels of the characters of one image.

    Each character's box is split from its background (:func:`_strokes`: a background model from a band around
    the box, strokes where the colour reaches more than half way to the text colour); characters with no clean
    split (too little contrast, nearly none or nearly all of the box, a band that looks like text) are left out
    of the mask rather than pasted as garbage.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        char_quads: ``M x 4 x 2`` float, ``(x, y)`` pixel corners of each character (origin at the top-left
            corner of the top-left pixel); quads with non-finite coordinates or under 2 pixels a side are skipped.
        counts: if given, ``counts["chars"]`` and ``counts["left_out"]`` are increased by the characters seen
            and those left out (skipped quads included).

    Returns:
        ``H x W`` bool, True on stroke pixels (``False`` outside the quads).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"glyph_mask needs an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    quads = np.asarray(char_quads, np.float32).reshape(-1, 4, 2)
    usable = np.isfinite(quads).all((1, 2))
    boxes = np.zeros((len(quads), 4), np.int64)
    if usable.any():
        low, high = quads[usable].min(1), quads[usable].max(1)
        boxes[usable] = np.stack([np.maximum(0, np.floor(low[:, 0])), np.maximum(0, np.floor(low[:, 1])),
                                  np.minimum(w, np.ceil(high[:, 0])), np.minimum(h, np.ceil(high[:, 1]))], 1)
    usable &= (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    kept = 0
    if usable.any():
        chosen = np.flatnonzero(usable)
        clean = _strokes(cv2.cvtColor(image, cv2.COLOR_RGB2Lab), boxes[chosen], quads[chosen].astype(np.float64), mask)
        kept = int(clean.sum())
    if counts is not None:
        counts["chars"] = counts.get("chars", 0) + len(quads)
        counts["left_out"] = counts.get("left_out", 0) + len(quads) - kept
    return mask


def encode_mask(mask: np.ndarray) -> bytes:
    """PNG bytes of an ``H x W`` bool mask, one bit per pixel: smaller than an 8-bit PNG, and at SynthText's size
    (384 x 512, 20 characters) about 5x faster to write, which made PNG writing the larger part of the glyph-mask
    step (8 of 12 ms per image with 8 bits). :func:`decode_mask` reads both kinds."""
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8), [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("PNG encoding of a glyph mask failed")
    return buf.tobytes()


def decode_mask(data: bytes) -> np.ndarray:
    """The ``H x W`` bool mask of :func:`encode_mask` bytes."""
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError("glyph mask does not decode")
    return mask > 0


def glyph_masks_batch(batch: dict[str, list]) -> dict[str, list]:
    """The ``datasets.map`` function (batched): a ``glyph_mask`` PNG per record (``None`` for an image that
    does not decode: that record is then skipped in training, with a warning naming it) and, in
    ``glyph_left_out``, how many of its characters had no clean split and were left out of the mask."""
    out, left = [], []
    for key, image, quads in zip(batch["key"], batch["image"], batch["char_polygons"]):
        try:
            rgb, _ = decode_image(image_bytes(image), key)
        except (RecordError, OSError, AttributeError):
            out.append(None)
            left.append(len(quads or []))
            continue
        counts: dict[str, int] = {}
        out.append(encode_mask(glyph_mask(rgb, char_quads_as_array({"char_polygons": quads}), counts)))
        left.append(counts["left_out"])
    return {GLYPH_COLUMN: out, LEFT_OUT_COLUMN: left}


def left_out_fraction(dataset: Any) -> tuple[int, int]:
    """``(left out, characters)`` over a dataset with glyph masks (a map-style one: it reads two columns)."""
    left = sum(dataset[LEFT_OUT_COLUMN]) if LEFT_OUT_COLUMN in dataset.column_names else 0
    return int(left), int(sum(len(q or []) for q in dataset["char_polygons"]))


def add_glyph_masks(dataset: Any, num_proc: int | None = None, batch_size: int = 64, desc: str = "glyph masks"):
    """``dataset`` (schema of :mod:`freereal_hf.data.schema`, with character quads) with a ``glyph_mask``
    column, computed by a batched ``datasets.map`` (cached by fingerprint for datasets on disk; ``num_proc``
    processes). The image column is returned undecoded (``Image(decode=False)``), as the training transforms
    read it. A streaming ``IterableDataset`` gets the same step lazily. Idempotent."""
    from datasets import Image, IterableDataset

    if dataset.column_names is not None and GLYPH_COLUMN in dataset.column_names:
        return dataset.cast_column("image", Image(decode=False))
    dataset = dataset.cast_column("image", Image(decode=False))
    features = (Features({**dataset.features, GLYPH_COLUMN: Value("binary"), LEFT_OUT_COLUMN: Value("int32")})
                if dataset.features else None)
    if isinstance(dataset, IterableDataset):
        return dataset.map(glyph_masks_batch, batched=True, batch_size=batch_size, features=features)
    dataset = dataset.map(glyph_masks_batch, batched=True, batch_size=batch_size, num_proc=num_proc,
                          features=features, desc=desc)
    left, chars = left_out_fraction(dataset)
    if left:
        logger.warning("glyph masks: %d of %d characters (%.1f%%) had no clean split from their background and are "
                       "left out of the masks", left, chars, 100.0 * left / max(chars, 1))
    return dataset


__all__ = ["glyph_mask", "encode_mask", "decode_mask", "add_glyph_masks", "glyph_masks_batch", "left_out_fraction",
           "GLYPH_COLUMN", "LEFT_OUT_COLUMN"]
