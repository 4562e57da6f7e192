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
from typing import Any

import cv2
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
GROUP = 24  # characters processed together (sorted by box size, so that little padding is computed)
TRIM = 0.7  # the trend is refitted on this fraction of the band most like it (neighbouring letters drop out)


def _kth(values: np.ndarray, keep: np.ndarray, fraction: float) -> np.ndarray:
    """Per row of ``values`` (``M x P``), the ``fraction`` quantile (nearest rank) of the entries where ``keep``."""
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    rank = np.clip(np.floor(fraction * (keep.sum(1) - 1)).astype(np.int64), 0, values.shape[1] - 1)
    return ordered[np.arange(len(values)), rank]


def _weighted_fit(design: np.ndarray, pixels: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per character, the least-squares ``3 x 3`` coefficients of ``pixels ~ design @ coef`` over the weighted
    pixels (``M x P x 3`` design, ``M x P x 3`` Lab, ``M x P`` weights)."""
    weighted = (design * weight[..., None]).transpose(0, 2, 1)
    return np.linalg.solve(weighted @ design + np.eye(3, dtype=np.float32) * 1e-4, weighted @ pixels)


def _strokes(lab: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stroke pixels of every character box of one image at once (boxes padded to one size).

    ``lab``: ``H x W x 3`` float32 CIELAB; ``boxes``: ``M x 4`` int ``(x0, y0, x1, y1)``. The background of each
    box is modelled from a band of ``RING`` pixels around it: a linear colour trend over the position (gradients,
    uneven light) fitted with the band's pixels least like it trimmed away (neighbouring letters), and the spread
    of the rest around it (textures), by which every residual is whitened. The text colour is the median
    direction of the residuals far outside that spread, at the ``TEXT_QUANTILE`` distance; a pixel is stroke where
    its residual reaches more than half way to it: an estimate of the renderer's alpha > 0.5, which is what the
    stroke mask of anti-aliased text means. Returns ``(strokes M x h x w bool, in_box M x h x w bool, clean M
    bool)``, patches anchored at ``(x0 - RING, y0 - RING)``; ``clean`` is False where no clean split exists (too
    little contrast, nearly none or nearly all of the box, a band that looks like text).
    """
    height, width = lab.shape[:2]
    m = len(boxes)
    ox0, oy0 = boxes[:, 0] - RING, boxes[:, 1] - RING
    ph = int((boxes[:, 3] - boxes[:, 1]).max()) + 2 * RING
    pw = int((boxes[:, 2] - boxes[:, 0]).max()) + 2 * RING
    iy = oy0[:, None] + np.arange(ph)[None]  # M x ph image rows, M x pw image columns
    ix = ox0[:, None] + np.arange(pw)[None]
    on_image = ((iy >= 0) & (iy < height))[:, :, None] & ((ix >= 0) & (ix < width))[:, None, :]
    in_box = (((iy >= boxes[:, 1:2]) & (iy < boxes[:, 3:4]))[:, :, None]
              & ((ix >= boxes[:, 0:1]) & (ix < boxes[:, 2:3]))[:, None, :])
    band = on_image & ~in_box & ((iy < boxes[:, 3:4] + RING)[:, :, None] & (ix < boxes[:, 2:3] + RING)[:, None, :])
    thin = band.sum((1, 2)) < 8  # a box filling the image: its own border stands in for the band
    if thin.any():
        edge = (((iy == boxes[:, 1:2]) | (iy == boxes[:, 3:4] - 1))[:, :, None]
                | ((ix == boxes[:, 0:1]) | (ix == boxes[:, 2:3] - 1))[:, None, :])
        band[thin] = (in_box & edge)[thin]
    pixels = lab[np.clip(iy, 0, height - 1)[:, :, None], np.clip(ix, 0, width - 1)[:, None, :]].reshape(m, -1, 3)
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).astype(np.float32) + 2 * RING
    yy, xx = np.meshgrid(np.arange(ph, dtype=np.float32), np.arange(pw, dtype=np.float32), indexing="ij")
    design = np.stack([np.ones((m, ph * pw), np.float32), xx.ravel()[None] / size[:, :1],
                       yy.ravel()[None] / size[:, 1:]], -1)
    # the band's pixels gathered per character (padded by repeating one with weight 0): the fit touches only them
    flat_band = band.reshape(m, -1)
    where = [np.flatnonzero(row) for row in flat_band]
    length = max(len(w) for w in where)
    index = np.stack([np.pad(w, (0, length - len(w)), mode="edge") for w in where])
    valid = np.arange(length)[None] < np.array([len(w) for w in where])[:, None]
    rows = np.arange(m)[:, None]
    band_design, band_pixels = design[rows, index], pixels[rows, index]
    sample = valid
    for _ in range(2):  # trimmed least squares: the band's pixels least like the fit (neighbouring letters) drop out
        coef = _weighted_fit(band_design, band_pixels, sample.astype(np.float32))
        err = np.square(band_pixels - band_design @ coef).sum(-1)
        sample = sample & (err <= _kth(err, sample, TRIM)[:, None])
    coef = _weighted_fit(band_design, band_pixels, sample.astype(np.float32))
    band_residual = band_pixels - band_design @ coef
    weight = sample.astype(np.float32)
    count = np.maximum(weight.sum(1), 2.0)[:, None, None]
    mean = (weight[:, None, :] @ band_residual) / count
    centred = (band_residual - mean) * np.sqrt(weight)[..., None]
    spread = centred.transpose(0, 2, 1) @ centred / (count - 1)
    metric = np.linalg.inv(spread + np.eye(3, dtype=np.float32) * SIGMA_FLOOR ** 2)  # background ~ N(0, spread)
    residual = pixels - design @ coef
    weighted = residual @ metric
    distance = (weighted * residual).sum(-1)
    box = in_box.reshape(m, -1)
    far = (distance > FAR) & box
    n_far = np.maximum(far.sum(1), 1)
    text = (far[:, None, :].astype(np.float32) @ residual)[:, 0] / n_far[:, None]  # mean far residual: direction
    norm = np.maximum(((text[:, None, :] @ metric) @ text[..., None])[:, 0, 0], 1e-12)
    along = (weighted @ text[..., None])[..., 0] / norm[:, None]  # in units of that mean
    upper = far & (along >= ((along * far).sum(1) / n_far)[:, None])  # anti-aliased edges pull the mean in:
    reach = np.maximum((along * upper).sum(1) / np.maximum(upper.sum(1), 1), 1e-6)  # the text is the upper half
    alpha = along / reach[:, None]
    contrast = np.sqrt(norm) * reach
    strokes = (alpha > ALPHA) & (distance > NEAR) & on_image.reshape(m, -1)
    fill = (strokes & box).sum(1) / np.maximum(box.sum(1), 1)
    # strokes are solid: most stroke pixels have two stroke neighbours (of 4); speckle of noise does not
    grid = strokes.reshape(m, ph, pw)
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    neighbours = (padded[:, :-2, 1:-1].astype(np.uint8) + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2]
                  + padded[:, 1:-1, 2:])
    solid = ((neighbours >= 2) & grid & in_box).sum((1, 2)) / np.maximum((grid & in_box).sum((1, 2)), 1)
    ring_text = (strokes & band.reshape(m, -1)).sum(1) / np.maximum(band.reshape(m, -1).sum(1), 1)
    clean = ((far.sum(1) >= np.maximum(2, MIN_FILL * box.sum(1))) & (contrast >= MIN_CONTRAST) & (solid >= MIN_SOLID)
             & (fill >= MIN_FILL) & (fill <= MAX_FILL) & (ring_text <= MAX_RING_TEXT))
    return strokes.reshape(m, ph, pw), in_box, clean


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
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
        chosen = np.flatnonzero(usable)
        # boxes of similar size together: each group is padded to its largest box only
        chosen = chosen[np.argsort((boxes[chosen, 2] - boxes[chosen, 0]) * (boxes[chosen, 3] - boxes[chosen, 1]))]
        results = []
        for group in np.array_split(chosen, max(1, round(len(chosen) / GROUP))):
            strokes, _, clean = _strokes(lab, boxes[group])
            results += [(quads[i], boxes[i], strokes[k], clean[k]) for k, i in enumerate(group)]
        for quad, (x0, y0, x1, y1), found, ok in results:
            if not ok:
                continue
            kept += 1
            inside = np.zeros((y1 - y0, x1 - x0), np.uint8)  # the quad (pixel centres at +0.5), 4 bits of sub-pixel
            cv2.fillPoly(inside, [np.round((quad - [x0 + 0.5, y0 + 0.5]) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            mask[y0:y1, x0:x1] |= found[RING:RING + y1 - y0, RING:RING + x1 - x0] & inside.astype(bool)
    if counts is not None:
        counts["chars"] = counts.get("chars", 0) + len(quads)
        counts["left_out"] = counts.get("left_out", 0) + len(quads) - kept
    return mask


def encode_mask(mask: np.ndarray) -> bytes:
    """PNG bytes of an ``H x W`` bool mask (stored as 0/1)."""
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
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
