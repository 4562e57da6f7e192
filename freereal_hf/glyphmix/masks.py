"""Glyph (stroke) masks of synthetic text: which pixels inside each character box are the letter.

For each character quad, the pixels of its bounding box are split in two by 2-means on their CIELAB
colour; the background is the cluster holding most of the box's border pixels, the strokes are the other
cluster's pixels inside the quad. Colour, not grayscale: synthetic text often differs from its background
in hue more than in brightness, and a grayscale split then cuts the background instead of the letters.
The image's mask is the union over its characters (``False`` outside every box).

The mask is deterministic per image, so it is computed once, as a ``datasets.map`` step
(:func:`add_glyph_masks`, cached by the dataset's fingerprint), and stored as a PNG-compressed
``H x W`` 0/1 image in a ``glyph_mask`` column (a few hundred bytes an image).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from datasets import Features, Value

from ..data.records import RecordError, decode_image, image_bytes
from ..data.schema import char_quads_as_array

GLYPH_COLUMN = "glyph_mask"


def _two_means(pixels: np.ndarray, seed_mask: np.ndarray, iterations: int = 10) -> np.ndarray:
    """2-means of ``N x 3`` float32 ``pixels``; starts from the mean of ``pixels[seed_mask]`` (the box border)
    and the pixel farthest from it. Returns ``N`` bool: True for the cluster not started from the border.

    The nearer-centre test of 2-means is a half-space, ``p . (c1 - c0) > (|c1|^2 - |c0|^2) / 2``: one
    matrix-vector product per iteration, and the new centres come from one more.
    """
    n = len(pixels)
    total = pixels.sum(0)
    c0 = pixels[seed_mask].mean(0)
    c1 = pixels[int(np.square(pixels - c0).sum(1).argmax())]
    other = np.zeros(n, bool)
    for _ in range(iterations):
        new = pixels @ (c1 - c0) > 0.5 * (c1 @ c1 - c0 @ c0)
        k = int(np.count_nonzero(new))
        if k in (0, n) or np.array_equal(new, other):
            return new
        other = new
        s1 = new.astype(np.float32) @ pixels
        c1, c0 = s1 / k, (total - s1) / (n - k)
    return other


def glyph_mask(image: np.ndarray, char_quads: np.ndarray) -> np.ndarray:
    """The stroke pixels of the characters of one image.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        char_quads: ``M x 4 x 2`` float, ``(x, y)`` pixel corners of each character (origin at the top-left
            corner of the top-left pixel); quads with non-finite coordinates or under 2 pixels a side are skipped.

    Returns:
        ``H x W`` bool, True on stroke pixels (``False`` outside the quads).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"glyph_mask needs an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    quads = np.asarray(char_quads, np.float32).reshape(-1, 4, 2)
    if not len(quads):
        return mask
    for quad in quads:
        if not np.isfinite(quad).all():
            continue
        x0, y0 = (max(0, math.floor(v)) for v in quad.min(0))
        x1, y1 = min(w, math.ceil(quad[:, 0].max())), min(h, math.ceil(quad[:, 1].max()))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        bh, bw = y1 - y0, x1 - x0
        border = np.ones((bh, bw), bool)
        border[1:-1, 1:-1] = False
        lab = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2Lab).astype(np.float32)
        strokes = _two_means(lab.reshape(-1, 3), border.ravel()).reshape(bh, bw)
        if strokes[border].mean() > 0.5:  # the border is mostly the other cluster: that one is the background
            strokes = ~strokes
        inside = np.zeros((bh, bw), np.uint8)  # the quad itself (pixel centres at +0.5), 4 bits of sub-pixel
        cv2.fillPoly(inside, [np.round((quad - [x0 + 0.5, y0 + 0.5]) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        mask[y0:y1, x0:x1] |= strokes & inside.astype(bool)
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
    """The ``datasets.map`` function (batched): a ``glyph_mask`` PNG per record; ``None`` for an image that
    does not decode (that record is then skipped in training, with a warning naming it)."""
    out = []
    for key, image, quads in zip(batch["key"], batch["image"], batch["char_polygons"]):
        try:
            rgb, _ = decode_image(image_bytes(image), key)
        except (RecordError, OSError, AttributeError):
            out.append(None)
            continue
        out.append(encode_mask(glyph_mask(rgb, char_quads_as_array({"char_polygons": quads}))))
    return {GLYPH_COLUMN: out}


def add_glyph_masks(dataset: Any, num_proc: int | None = None, batch_size: int = 64, desc: str = "glyph masks"):
    """``dataset`` (schema of :mod:`freereal_hf.data.schema`, with character quads) with a ``glyph_mask``
    column, computed by a batched ``datasets.map`` (cached by fingerprint for datasets on disk; ``num_proc``
    processes). The image column is returned undecoded (``Image(decode=False)``), as the training transforms
    read it. A streaming ``IterableDataset`` gets the same step lazily. Idempotent."""
    from datasets import Image, IterableDataset

    if dataset.column_names is not None and GLYPH_COLUMN in dataset.column_names:
        return dataset.cast_column("image", Image(decode=False))
    dataset = dataset.cast_column("image", Image(decode=False))
    features = Features({**dataset.features, GLYPH_COLUMN: Value("binary")}) if dataset.features else None
    if isinstance(dataset, IterableDataset):
        return dataset.map(glyph_masks_batch, batched=True, batch_size=batch_size, features=features)
    return dataset.map(glyph_masks_batch, batched=True, batch_size=batch_size, num_proc=num_proc,
                       features=features, desc=desc)


__all__ = ["glyph_mask", "encode_mask", "decode_mask", "add_glyph_masks", "glyph_masks_batch", "GLYPH_COLUMN"]
