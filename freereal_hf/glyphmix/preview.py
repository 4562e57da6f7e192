"""Pictures of what the student sees: real, synthetic and GlyphMix images with the mixed targets drawn."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..image_processing import MMOCR_MEAN, MMOCR_STD
from ..models.base import MapKind, TargetSpec


def to_uint8(pixel_values: torch.Tensor) -> np.ndarray:
    """``N x 3 x H x W`` normalised pixel values -> ``N x H x W x 3`` uint8 RGB."""
    mean = torch.tensor(MMOCR_MEAN, device=pixel_values.device).view(1, 3, 1, 1)
    std = torch.tensor(MMOCR_STD, device=pixel_values.device).view(1, 3, 1, 1)
    image = (pixel_values.detach().float() * std + mean).clamp(0, 255).round().byte()
    return image.permute(0, 2, 3, 1).cpu().numpy()


def instance_colours(ids: np.ndarray) -> np.ndarray:
    """A distinct, stable RGB colour per instance id (``... `` int array) -> ``... x 3`` float32."""
    hue = (ids.astype(np.int64) * 47) % 180
    hsv = np.stack([hue, np.full_like(hue, 220), np.full_like(hue, 255)], -1).astype(np.uint8)
    return cv2.cvtColor(hsv.reshape(-1, 1, 3), cv2.COLOR_HSV2RGB).reshape(*ids.shape, 3).astype(np.float32)


def overlay_targets(image: np.ndarray, text: np.ndarray, weight: np.ndarray | None = None,
                    instances: bool = False) -> np.ndarray:
    """``image`` (``H x W x 3`` uint8) with text pixels (``text > 0.5``) tinted red, or with ``instances`` each
    instance id in its own colour, and ignored pixels (``weight == 0``) hatched grey. Maps smaller than the
    image (a stride > 1) are scaled up with nearest neighbours."""
    h, w = image.shape[:2]
    text = cv2.resize(text.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    if weight is not None:
        weight = cv2.resize(weight.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    out = image.astype(np.float32)
    t = text > 0.5
    tint = instance_colours(text[t]) if instances else np.array([255, 30, 30])
    out[t] = 0.45 * out[t] + 0.55 * tint
    if weight is not None:
        hatch = ((np.add.outer(np.arange(image.shape[0]), np.arange(image.shape[1])) // 3) % 2 == 0)
        ig = (weight <= 0) & hatch
        out[ig] = 0.3 * out[ig] + 0.7 * 128
    return out.clip(0, 255).astype(np.uint8)


def mix_grid(rows: list[tuple[str, np.ndarray]], cell: int = 192, pad: int = 4) -> np.ndarray:
    """A grid image: one row per ``(title, N x H x W x 3 uint8 images)``, titles on the left."""
    label_w = 130
    n = max(len(images) for _, images in rows)
    grid = np.full((len(rows) * (cell + pad) + pad, label_w + n * (cell + pad) + pad, 3), 255, np.uint8)
    for r, (title, images) in enumerate(rows):
        y = pad + r * (cell + pad)
        for i, line in enumerate(title.split("\n")):
            cv2.putText(grid, line, (6, y + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for c, image in enumerate(images):
            x = label_w + pad + c * (cell + pad)
            grid[y:y + cell, x:x + cell] = cv2.resize(image, (cell, cell), interpolation=cv2.INTER_AREA)
    return grid


def level_overlays(images: np.ndarray, targets: dict[str, torch.Tensor], spec: TargetSpec
                   ) -> list[tuple[str, np.ndarray]]:
    """Per level of the detector (``spec.levels``), a title and ``images`` (``N x H x W x 3`` uint8) with that
    level's text map drawn (text red, or instances in distinct colours) and its confidence map's ignored pixels
    hatched; maps are taken at their strides (``N x h x w``) and scaled up to the images."""
    rows = []
    for text, confidence in spec.levels:
        maps = targets[text.name][:len(images)].float().cpu().numpy()
        weight = targets[confidence.name][:len(images)].float().cpu().numpy()
        instances = text.kind is MapKind.INSTANCE
        drawn = np.stack([overlay_targets(m, t, w, instances) for m, t, w in zip(images, maps, weight)])
        title = "GlyphMix targets\n(instances in\ncolours," if instances else "GlyphMix targets\n(text red,"
        if len(spec.levels) > 1:
            title = f"targets at\nstride {text.stride}\n({'instances' if instances else 'text red'},"
        rows.append((title + "\nignored grey)", drawn))
    return rows


def glyphmix_grid(real: torch.Tensor, synthetic: torch.Tensor, mixed: torch.Tensor,
                  mixed_targets: dict[str, torch.Tensor], spec: TargetSpec,
                  synthetic_glyph: torch.Tensor | None = None, max_images: int = 4, cell: int = 192) -> np.ndarray:
    """Rows: real (strong view), synthetic (glyph mask tinted), GlyphMix image, then per level of the detector the
    GlyphMix image with that level's targets (``level_overlays``). Tensors are one batch (``N x 3 x H x W``
    images, maps at their strides)."""
    k = min(max_images, real.shape[0])
    syn = to_uint8(synthetic[:k])
    if synthetic_glyph is not None:
        syn = np.stack([overlay_targets(s, g) for s, g in zip(syn, synthetic_glyph[:k].float().cpu().numpy())])
    mix = to_uint8(mixed[:k])
    return mix_grid([("real\n(strong view)", to_uint8(real[:k])), ("synthetic\n(glyphs red)", syn),
                     ("GlyphMix", mix), *level_overlays(mix, mixed_targets, spec)], cell=cell)


__all__ = ["to_uint8", "instance_colours", "overlay_targets", "mix_grid", "level_overlays", "glyphmix_grid"]
