"""Polygon-aware augmentation: pixels and polygons move together.

Every geometric step (flip, keep-ratio rescale, rotation, crop) is an affine map, so a sampled
augmentation is one :class:`Geometry` (a ``2 x 3`` matrix from source pixels to output pixels and the output
size). The image is warped once (one interpolation), the polygons and character quads are mapped with the
same matrix and clipped to the output. Coordinates are ``(x, y)`` with the origin at the top-left corner of
the top-left pixel, so a pixel centre is at ``(i + 0.5, j + 0.5)``.

Sharing one ``Geometry`` between two views is how FreeReal's weak and strong views line up pixel for pixel.

Randomness comes from a ``numpy.random.Generator`` the caller passes; :class:`TrainTransform` seeds it from
``(seed, epoch, record key)``, so an augmentation does not depend on worker scheduling or on resuming.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from shapely.geometry import Polygon, box

from ..image_processing import MMOCR_MEAN, MMOCR_STD, normalization_table
from .records import RecordError, Report, decode_image, image_bytes

logger = logging.getLogger("freereal_hf.data")


@dataclass
class AugmentConfig:
    """Defaults follow MMOCR's DBNet training pipeline where it has one.

    Args:
        size: output side (square crops), a multiple of 32.
        scale_range: keep-ratio rescale factor range, relative to the original image.
        rotate_degrees: rotation drawn uniformly in ``[-rotate_degrees, rotate_degrees]``.
        flip_prob: probability of a horizontal flip.
        keep_text_prob: probability that the crop is placed around a (non-ignored) text polygon.
        brightness / contrast / saturation / hue: colour-jitter strengths (torchvision's meanings).
    """

    size: int = 640
    scale_range: tuple[float, float] = (0.5, 3.0)
    rotate_degrees: float = 10.0
    flip_prob: float = 0.5
    keep_text_prob: float = 1.0
    brightness: float = 32 / 255
    contrast: float = 0.0
    saturation: float = 0.5
    hue: float = 0.0


@dataclass
class Geometry:
    """An affine map from source pixels to an output of ``size = (H, W)`` pixels."""

    matrix: np.ndarray  # 2 x 3 float64
    size: tuple[int, int]

    def points(self, points: np.ndarray) -> np.ndarray:
        """Maps ``... x 2`` ``(x, y)`` points."""
        p = np.asarray(points, np.float64)
        return (p @ self.matrix[:, :2].T + self.matrix[:, 2]).astype(np.float32)

    def image(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR, border_value: float = 0) -> np.ndarray:
        """Warps an ``H x W [x C]`` array to the output size. The matrix maps pixel corners, cv2 maps pixel
        centres: shift by half a pixel on both sides."""
        shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
        unshift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        m = (shift @ np.vstack([self.matrix, [0, 0, 1]]) @ unshift)[:2]
        h, w = self.size
        return cv2.warpAffine(image, m, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border_value)


def _affine(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0, 0, 1]])


def sample_geometry(rng: np.random.Generator, height: int, width: int, polygons: Sequence[np.ndarray],
                    ignore: Sequence[bool] | None, cfg: AugmentConfig) -> Geometry:
    """Draws flip, rescale, rotation and a ``cfg.size`` square crop for an ``height x width`` image.

    The crop is placed, with probability ``cfg.keep_text_prob``, so that a randomly chosen non-ignored
    polygon lies inside it (centred on it when it is larger than the crop).
    """
    m = np.eye(3)
    if rng.random() < cfg.flip_prob:
        m = _affine(np.array([[-1.0, 0, width], [0, 1, 0]])) @ m
    s = rng.uniform(*cfg.scale_range)
    m = np.diag([s, s, 1.0]) @ m
    angle = math.radians(rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees)) if cfg.rotate_degrees else 0.0
    if angle:
        cx, cy = width * s / 2, height * s / 2
        c, si = math.cos(angle), math.sin(angle)
        m = _affine(np.array([[c, -si, cx - c * cx + si * cy], [si, c, cy - si * cx - c * cy]])) @ m
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    moved = corners @ m[:2, :2].T + m[:2, 2]
    lo, hi = moved.min(0), moved.max(0)
    size = cfg.size
    keep = [i for i, p in enumerate(polygons) if len(p) >= 3 and not (ignore is not None and ignore[i])]
    start = np.empty(2)
    for axis in range(2):
        low, high = lo[axis], hi[axis] - size  # window [start, start + size) inside the image when possible
        if high < low:  # image smaller than the crop on this axis: place the image randomly inside it
            low, high = high, low
        start[axis] = rng.uniform(low, high) if high > low else low
    if keep and rng.random() < cfg.keep_text_prob:
        p = np.asarray(polygons[keep[rng.integers(len(keep))]], np.float64).reshape(-1, 2) @ m[:2, :2].T + m[:2, 2]
        pmin, pmax = p.min(0), p.max(0)
        for axis in range(2):
            if pmax[axis] - pmin[axis] >= size:
                start[axis] = (pmin[axis] + pmax[axis] - size) / 2
                continue
            low = max(pmax[axis] - size, min(lo[axis], hi[axis] - size))
            high = min(pmin[axis], max(hi[axis] - size, lo[axis]))
            start[axis] = rng.uniform(low, high) if high > low else pmin[axis] - (size - (pmax[axis] - pmin[axis])) / 2
    start = np.round(start)  # whole-pixel crops: no extra resampling when there is no scale or rotation
    m = _affine(np.array([[1.0, 0, -start[0]], [0, 1, -start[1]]])) @ m
    return Geometry(m[:2], (size, size))


def _clip_polygon(points: np.ndarray, frame) -> np.ndarray | None:
    poly = Polygon(points)
    if not poly.is_valid:
        poly = poly.buffer(0)
    if frame.contains(poly):
        return points
    inside = poly.intersection(frame)
    parts = [g for g in getattr(inside, "geoms", [inside]) if isinstance(g, Polygon) and g.area > 0]
    if not parts:
        return None
    return np.asarray(max(parts, key=lambda g: g.area).exterior.coords, np.float32)[:-1]


def apply_geometry(sample: dict[str, Any], geometry: Geometry) -> dict[str, Any]:
    """Warps ``sample["image"]`` (``H x W x 3``) and maps ``polygons`` (list of ``K x 2``), ``ignore``,
    ``char_quads`` (``M x 4 x 2``) and ``char_word`` with the same geometry. Polygons leaving the output are
    clipped to it or dropped (their characters too); character quads whose centre leaves it are dropped."""
    h, w = geometry.size
    frame = box(0, 0, w, h)
    polys, flags, new_index = [], [], {}
    for i, (p, flag) in enumerate(zip(sample["polygons"], sample["ignore"])):
        p = np.asarray(p, np.float32).reshape(-1, 2)
        if len(p) < 3:
            continue
        clipped = _clip_polygon(geometry.points(p), frame)
        if clipped is None:
            continue
        new_index[i] = len(polys)
        polys.append(clipped)
        flags.append(bool(flag))
    out = dict(sample, image=geometry.image(sample["image"]), polygons=polys, ignore=flags)
    quads = np.asarray(sample.get("char_quads", np.zeros((0, 4, 2))), np.float32).reshape(-1, 4, 2)
    if len(quads):
        moved = geometry.points(quads)
        centre = moved.mean(1)
        words = np.asarray(sample["char_word"])
        ok = np.array([int(k) in new_index for k in words]) & (centre >= 0).all(1) & (centre < [w, h]).all(1)
        out["char_quads"] = moved[ok]
        out["char_word"] = np.array([new_index[int(k)] for k in words[ok]], np.int64)
    else:
        out["char_quads"], out["char_word"] = np.zeros((0, 4, 2), np.float32), np.zeros(0, np.int64)
    return out


_LEVELS = np.arange(256, dtype=np.float32)


def _levels(lut: np.ndarray) -> np.ndarray:
    """A float lookup table of the 256 levels -> uint8, rounded and clipped (for ``cv2.LUT``)."""
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


def color_jitter(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0) -> np.ndarray:
    """torchvision-style colour jitter of an ``H x W x 3`` uint8 RGB image, factors drawn from ``rng``
    (brightness/contrast/saturation factors in ``[1 - v, 1 + v]``, hue shift in ``[-hue, hue]`` turns), in a
    random order.

    Every step stays in uint8 (rounded and clipped after each, as torchvision does on uint8 tensors):
    brightness ``x f`` and contrast ``(x - m) f + m`` (``m`` the image's mean) are lookup tables, saturation
    blends each pixel with its channel mean (``cv2.addWeighted``), and hue shifts OpenCV's 0..179 hue channel.
    """
    out = np.ascontiguousarray(image)
    ops = []
    if brightness:
        f = rng.uniform(max(0, 1 - brightness), 1 + brightness)
        ops.append(lambda x: cv2.LUT(x, _levels(_LEVELS * f)))
    if contrast:
        f2 = rng.uniform(max(0, 1 - contrast), 1 + contrast)

        def _contrast(x: np.ndarray) -> np.ndarray:
            m = float(np.mean(cv2.mean(x)[:3]))
            return cv2.LUT(x, _levels((_LEVELS - m) * f2 + m))
        ops.append(_contrast)
    if saturation:
        f3 = rng.uniform(max(0, 1 - saturation), 1 + saturation)

        def _saturation(x: np.ndarray) -> np.ndarray:
            gray = cv2.transform(x, np.full((1, 3), 1 / 3, np.float32))
            return cv2.addWeighted(x, f3, cv2.merge([gray, gray, gray]), 1 - f3, 0)
        ops.append(_saturation)
    if hue:
        shift = int(round(rng.uniform(-hue, hue) * 180))

        def _hue(x: np.ndarray) -> np.ndarray:
            h, s_, v = cv2.split(cv2.cvtColor(x, cv2.COLOR_RGB2HSV))
            h = cv2.LUT(h, ((np.arange(256) + shift) % 180).astype(np.uint8))
            return cv2.cvtColor(cv2.merge([h, s_, v]), cv2.COLOR_HSV2RGB)
        ops.append(_hue)
    for k in rng.permutation(len(ops)):
        out = ops[k](out)
    return out if ops else out.copy()


PIXEL_KEYS = ("pixel_values", "weak_pixel_values", "strong_pixel_values")
"""The batch columns that hold images: uint8 out of the training transforms, normalised on the device."""


def to_pixels(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 RGB -> ``3 x H x W`` uint8 tensor: what the training transforms return, a quarter
    of float32's bytes through the DataLoader's workers and onto the device; :func:`normalize_pixels` there."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image, np.uint8).transpose(2, 0, 1)))


_NORMALIZE_TABLE = torch.from_numpy(normalization_table(MMOCR_MEAN, MMOCR_STD))  # 3 x 256 float32


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """``... x 3 x H x W`` uint8 RGB, on any device -> float32 normalised like MMOCR's preprocessor,
    ``(x - mean) / std`` per channel. A lookup in a table of the 256 levels of each channel (computed once in
    float32), so the values are the same bits on every device and in every batch."""
    if pixels.dtype != torch.uint8 or pixels.dim() < 3 or pixels.shape[-3] != 3:
        raise ValueError(f"normalize_pixels takes ... x 3 x H x W uint8 images, got {tuple(pixels.shape)} "
                         f"{pixels.dtype}")
    table = _NORMALIZE_TABLE.to(pixels.device)
    index = pixels.int() + torch.arange(0, 768, 256, dtype=torch.int32, device=pixels.device).view(3, 1, 1)
    return table.view(-1)[index]


def normalize_batch(batch: dict[str, Any], memory_format: torch.memory_format = torch.contiguous_format
                    ) -> dict[str, Any]:
    """A training batch with its image columns (:data:`PIXEL_KEYS`) normalised where they are (the device, in
    the training loops) and laid out in ``memory_format``; the other columns unchanged. In place; returns it."""
    for key in PIXEL_KEYS:
        if key in batch:
            batch[key] = normalize_pixels(batch[key]).contiguous(memory_format=memory_format)
    return batch


def record_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """The generator of one record's augmentation: a function of ``(seed, epoch, key)`` only."""
    return np.random.default_rng([seed, epoch, zlib.crc32(key.encode("utf-8"))])


def load_sample(record: dict[str, Any], report: Report | None = None) -> dict[str, Any] | None:
    """Decodes one schema record (image stored undecoded: ``{"bytes", "path"}``) into arrays; ``None`` (warned
    and counted) when the image does not decode."""
    key = record.get("key") or "<no key>"
    image = record["image"]
    try:
        if isinstance(image, dict):
            rgb, _ = decode_image(image_bytes(image), key)
        else:
            from ..image_processing import to_rgb_array
            rgb = to_rgb_array(image)
    except (RecordError, OSError, ValueError, TypeError) as exc:
        (report or Report()).add("training images skipped", key, str(exc))
        return None
    polygons = [np.asarray(p, np.float32).reshape(-1, 2) for p in (record.get("polygons") or [])]
    ignore = list(record.get("ignore") or [False] * len(polygons))
    quads = np.asarray(record.get("char_polygons") or np.zeros((0, 4, 2)), np.float32).reshape(-1, 4, 2)
    return {"key": key, "image": rgb, "polygons": polygons, "ignore": ignore, "char_quads": quads,
            "char_word": np.asarray(record.get("char_word") or [], np.int64)}


@dataclass
class TrainTransform:
    """The supervised training transform, for ``Dataset.with_transform`` on a dataset whose ``image`` column
    is not decoded (``cast_column("image", Image(decode=False))``; see :func:`training_view`).

    Per record: decode, one random geometry, colour jitter, and the detector's targets from
    ``build_targets(polygons, ignore, size)``. Returns columns ``pixel_values`` (``3 x S x S`` uint8 RGB, for
    :func:`normalize_batch` on the device) and one ``S x S`` tensor per target map. An image that does not
    decode, or whose labels ``build_targets`` refuses (``ValueError``), is warned about, counted in ``report`` and
    replaced by a black image whose maps, weights included, are zero (it teaches nothing; the batch keeps its
    shape and dtypes).
    """

    build_targets: Callable[..., dict[str, np.ndarray]]
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    epoch: int = 0
    report: Report = field(default_factory=Report)

    def _empty(self) -> dict[str, torch.Tensor]:
        size = (self.augment.size, self.augment.size)
        return {"pixel_values": torch.zeros(3, *size, dtype=torch.uint8), **zero_targets(self.build_targets, size)}

    def one(self, record: dict[str, Any]) -> dict[str, torch.Tensor]:
        size = (self.augment.size, self.augment.size)
        sample = load_sample(record, self.report)
        if sample is None:
            return self._empty()
        rng = record_rng(self.seed, self.epoch, sample["key"])
        h, w = sample["image"].shape[:2]
        geometry = sample_geometry(rng, h, w, sample["polygons"], sample["ignore"], self.augment)
        sample = apply_geometry(sample, geometry)
        a = self.augment
        image = color_jitter(sample["image"], rng, a.brightness, a.contrast, a.saturation, a.hue)
        try:
            targets = self.build_targets(sample["polygons"], sample["ignore"], size)
        except ValueError as exc:  # labels the detector cannot take (e.g. more instances than its ids hold)
            self.report.add("training images skipped (targets)", sample["key"], str(exc))
            return self._empty()
        return {"pixel_values": to_pixels(image), **{k: torch.from_numpy(v) for k, v in targets.items()}}

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        return per_record(self.one, batch)


def zero_targets(build_targets: Callable[..., dict[str, np.ndarray]], size: tuple[int, int]
                 ) -> dict[str, torch.Tensor]:
    """The stand-in targets of an image that cannot be used: every map of ``build_targets`` at ``size``, weights
    included, all 0 and of the dtype the image's neighbours have (a DataLoader worker collates a batch into shared
    memory of its first sample's dtypes)."""
    return {k: torch.from_numpy(np.zeros_like(v)) for k, v in build_targets([], [], size).items()}


def per_record(one: Callable[[dict[str, Any]], dict[str, Any]], batch: dict[str, list]) -> dict[str, list]:
    """A batched ``with_transform`` function from a per-record one: ``{column: [values]}`` in and out."""
    n = len(next(iter(batch.values())))
    rows = [one({k: v[i] for k, v in batch.items()}) for i in range(n)]
    return {k: [r[k] for r in rows] for k in rows[0]}


def training_view(dataset, transform: Callable[[dict[str, list]], dict[str, list]]):
    """``dataset`` with its image column left encoded and ``transform`` applied on access: ``with_transform``
    for a map-style ``Dataset``, a lazy batched ``map`` for an ``IterableDataset``."""
    from datasets import Image, IterableDataset

    dataset = dataset.cast_column("image", Image(decode=False))
    if isinstance(dataset, IterableDataset):
        return dataset.map(transform, batched=True, batch_size=8, remove_columns=list(dataset.column_names or []))
    return dataset.with_transform(transform)


__all__ = ["AugmentConfig", "Geometry", "sample_geometry", "apply_geometry", "color_jitter", "PIXEL_KEYS",
           "to_pixels", "normalize_pixels", "normalize_batch", "record_rng", "load_sample", "TrainTransform",
           "zero_targets", "per_record", "training_view"]
