"""Pictures of what the student sees: real, synthetic and GlyphMix images with the mixed targets drawn."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..image_processing import MMOCR_MEAN, MMOCR_STD


def to_uint8(pixel_values: torch.Tensor) -> np.ndarray:
    """``N x 3 x H x W`` normalised pixel values -> ``N x H x W x 3`` uint8 RGB."""
    mean = torch.tensor(MMOCR_MEAN, device=pixel_values.device).view(1, 3, 1, 1)
    std = torch.tensor(MMOCR_STD, device=pixel_values.device).view(1, 3, 1, 1)
    image = (pixel_values.detach().float() * std + mean).clamp(0, 255).round().byte()
    return image.permute(0, 2, 3, 1).cpu().numpy()


def overlay_targets(image: np.ndarray, text: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """``image`` (``H x W x 3`` uint8) with text pixels (``text > 0.5``) tinted red and ignored pixels
    (``weight == 0``) hatched grey."""
    out = image.astype(np.float32)
    t = text > 0.5
    out[t] = 0.45 * out[t] + 0.55 * np.array([255, 30, 30])
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


def glyphmix_grid(real: torch.Tensor, synthetic: torch.Tensor, mixed: torch.Tensor,
                  mixed_targets: dict[str, torch.Tensor], text_key: str, weight_key: str | None,
                  synthetic_glyph: torch.Tensor | None = None, max_images: int = 4, cell: int = 192) -> np.ndarray:
    """Rows: real (strong view), synthetic (glyph mask tinted), GlyphMix image, GlyphMix image with its targets
    (text red, ignored hatched). Tensors are one batch (``N x 3 x H x W`` / ``N x H x W``)."""
    k = min(max_images, real.shape[0])
    syn = to_uint8(synthetic[:k])
    if synthetic_glyph is not None:
        syn = np.stack([overlay_targets(s, g) for s, g in zip(syn, synthetic_glyph[:k].float().cpu().numpy())])
    mix = to_uint8(mixed[:k])
    text = mixed_targets[text_key][:k].float().cpu().numpy()
    weight = mixed_targets[weight_key][:k].float().cpu().numpy() if weight_key else [None] * k
    drawn = np.stack([overlay_targets(m, t, w) for m, t, w in zip(mix, text, weight)])
    return mix_grid([("real\n(strong view)", to_uint8(real[:k])), ("synthetic\n(glyphs red)", syn),
                     ("GlyphMix", mix), ("GlyphMix targets\n(text red,\nignored grey)", drawn)], cell=cell)


__all__ = ["to_uint8", "overlay_targets", "mix_grid", "glyphmix_grid"]
