"""Per-image data transforms of pre-training (``Dataset.with_transform``; CPU work in DataLoader workers).

- :class:`RealViews`, on unlabeled real images: ONE random geometry per image gives the weak view (geometry
  only; the teacher sees it) and the strong view (the same pixels plus colour jitter, blur, grayscale and
  noise; GlyphMix and the student see it). Both are ``3 x S x S`` and line up pixel for pixel.
- :class:`SyntheticSample`, on SynthText-schema data with a ``glyph_mask`` column (see
  :func:`~freereal_hf.glyphmix.masks.add_glyph_masks`): the image, its glyph mask and its polygons go
  through one geometry; the detector's targets are built from the character quads (``char_mode``) or the
  word polygons, and ``text_region`` (the pixels those targets speak about) comes from the detector.

Randomness is drawn from ``(seed, epoch, record key)`` (see :mod:`freereal_hf.data.transforms`), so a
resumed run sees the same augmentations. A record that cannot be used (image or mask that does not decode)
is warned about by key, counted in ``report``, and replaced by an all-zero sample whose weight maps are 0,
so the batch keeps its shape and the sample teaches nothing.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
import torch

from ..data.records import Report
from ..data.transforms import (AugmentConfig, apply_geometry, color_jitter, load_sample, per_record, record_rng,
                               sample_geometry, to_pixels, zero_targets)
from .masks import GLYPH_COLUMN, decode_mask


@functools.cache
def _normal_levels() -> np.ndarray:
    """The 65,536 quantiles ``(k + 0.5) / 65536`` of the standard normal (float32): Gaussian noise drawn as
    uint16 indices into them is four times cheaper than ``Generator.normal`` and as Gaussian for pixel noise."""
    inv_cdf = statistics.NormalDist().inv_cdf
    return np.array([inv_cdf((k + 0.5) / 65536) for k in range(65536)], np.float32)


@dataclass
class StrongAugment:
    """Photometric noise of the strong view (FreeReal: colour jitter, blur, grayscale, JPEG/noise).

    Args:
        brightness / contrast / saturation / hue: colour-jitter strengths (torchvision's meanings).
        blur_prob, blur_sigma: Gaussian blur with sigma drawn from ``blur_sigma``.
        grayscale_prob: probability of converting to grayscale (kept 3-channel).
        noise_prob, noise_std: additive Gaussian noise, std drawn from ``noise_std`` (0..255 units).
        jpeg_prob, jpeg_quality: JPEG re-compression with a quality drawn from ``jpeg_quality``.
    """

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    grayscale_prob: float = 0.2
    noise_prob: float = 0.3
    noise_std: tuple[float, float] = (2.0, 10.0)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The strong version of an ``H x W x 3`` uint8 RGB image (same size, uint8)."""
        out = color_jitter(image, rng, self.brightness, self.contrast, self.saturation, self.hue)
        if rng.random() < self.blur_prob:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*self.blur_sigma))
        if rng.random() < self.grayscale_prob:
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        if rng.random() < self.noise_prob:
            noise = _normal_levels()[rng.integers(0, 1 << 16, out.shape, dtype=np.uint16)]
            noise *= np.float32(rng.uniform(*self.noise_std))
            out = cv2.add(out, noise, dtype=cv2.CV_8U)  # rounded and clipped
        if rng.random() < self.jpeg_prob:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else out
        return out


@dataclass
class RealViews:
    """``with_transform`` of unlabeled real images -> ``weak_pixel_values`` and ``strong_pixel_values``
    (``3 x S x S`` uint8 RGB; ``data.transforms.normalize_batch`` normalises them on the device), ``valid``
    (1.0, or 0.0 for an image that did not decode: its pseudo-targets then get weight 0) and ``key``. Labels in
    the records are not used, unless ``build_targets`` is given (previews of labeled real data): then the
    detector's targets of the record's polygons, moved by the same geometry, come along (``S x S`` each)."""

    augment: AugmentConfig = field(default_factory=AugmentConfig)
    strong: StrongAugment = field(default_factory=StrongAugment)
    build_targets: Callable[..., dict[str, np.ndarray]] | None = None
    seed: int = 0
    epoch: int = 0
    report: Report = field(default_factory=Report)

    def one(self, record: dict[str, Any]) -> dict[str, Any]:
        s = self.augment.size
        sample = load_sample(record, self.report)
        if sample is None:
            zeros = torch.zeros(3, s, s, dtype=torch.uint8)
            out = {"weak_pixel_values": zeros, "strong_pixel_values": zeros, "valid": torch.tensor(0.0),
                   "key": str(record.get("key"))}
            if self.build_targets is not None:
                out.update(zero_targets(self.build_targets, (s, s)))
            return out
        rng = record_rng(self.seed, self.epoch, sample["key"])
        h, w = sample["image"].shape[:2]
        geometry = sample_geometry(rng, h, w, [], None, self.augment)
        moved = apply_geometry(sample, geometry)
        weak = moved["image"]
        out = {"weak_pixel_values": to_pixels(weak), "strong_pixel_values": to_pixels(self.strong(weak, rng)),
               "valid": torch.tensor(1.0), "key": sample["key"]}
        if self.build_targets is not None:
            targets = self.build_targets(moved["polygons"], moved["ignore"], geometry.size)
            out.update({k: torch.from_numpy(v) for k, v in targets.items()})
        return out

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        return per_record(self.one, batch)


@dataclass
class SyntheticSample:
    """``with_transform`` of labeled synthetic data with glyph masks -> ``pixel_values`` (``3 x S x S`` uint8
    RGB), ``glyph_mask`` and ``text_region`` (``S x S`` uint8 0/1), one ``S x S`` tensor per detector target,
    ``key``.

    ``build_targets`` and ``target_region`` are the detector's (the protocol); with ``char_mode`` the
    targets are built from the character quads, each character one text instance.
    """

    build_targets: Callable[..., dict[str, np.ndarray]]
    target_region: Callable[[dict[str, np.ndarray]], np.ndarray]
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    char_mode: bool = True
    seed: int = 0
    epoch: int = 0
    report: Report = field(default_factory=Report)

    def _empty(self, key: str) -> dict[str, Any]:
        size = (self.augment.size, self.augment.size)
        zeros = torch.zeros(size, dtype=torch.uint8)
        return {"pixel_values": torch.zeros(3, *size, dtype=torch.uint8), "glyph_mask": zeros, "text_region": zeros,
                **zero_targets(self.build_targets, size), "key": key}

    def one(self, record: dict[str, Any]) -> dict[str, Any]:
        key = str(record.get("key"))
        if GLYPH_COLUMN not in record:
            raise KeyError("synthetic records need a 'glyph_mask' column: run freereal_hf.glyphmix.add_glyph_masks "
                           "on the dataset first (a cached datasets.map step)")
        sample = load_sample(record, self.report)
        if sample is None:
            return self._empty(key)
        try:
            glyph = decode_mask(record[GLYPH_COLUMN]) if record[GLYPH_COLUMN] is not None else None
        except ValueError:
            glyph = None
        if glyph is None or glyph.shape != sample["image"].shape[:2]:
            self.report.add("synthetic images skipped (glyph mask)", key, "glyph mask missing or of the wrong size")
            return self._empty(key)
        rng = record_rng(self.seed, self.epoch, key)
        h, w = glyph.shape
        geometry = sample_geometry(rng, h, w, sample["polygons"], sample["ignore"], self.augment)
        sample = apply_geometry(sample, geometry)
        glyph = geometry.image(glyph.astype(np.uint8), cv2.INTER_NEAREST)
        size = geometry.size
        try:
            if self.char_mode:
                targets = self.build_targets(list(sample["char_quads"]), [False] * len(sample["char_quads"]), size)
            else:
                targets = self.build_targets(sample["polygons"], sample["ignore"], size)
        except ValueError as exc:  # labels the detector cannot take (e.g. more instances than its ids hold)
            self.report.add("synthetic images skipped (targets)", key, str(exc))
            return self._empty(key)
        region = np.asarray(self.target_region(targets), np.uint8)
        return {"pixel_values": to_pixels(sample["image"]), "glyph_mask": torch.from_numpy(glyph),
                "text_region": torch.from_numpy(region), **{k: torch.from_numpy(v) for k, v in targets.items()},
                "key": key}

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        return per_record(self.one, batch)


__all__ = ["StrongAugment", "RealViews", "SyntheticSample"]
