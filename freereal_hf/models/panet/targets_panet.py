"""PANet training targets from polygons, equal to MMOCR 1.0.1's ``PANModuleLoss.get_targets``. Maps are at the
network input size; polygons ``K x 2`` arrays of ``(x, y)`` pixels.

- ``text_instances``: ``H x W`` int16, polygon ``i`` filled with ``i + 1`` (later polygons over earlier ones).
- ``kernel_instances``: ``H x W`` int16, the same ids in the polygons shrunk by ``kernel_ratio`` (distance
  ``min(int(A (1 - r^2) / (L + 0.001) + 0.5), max_shrink_dist)``).
- ``mask``: ``H x W`` uint8, 0 inside ignored polygons, else 1.

As in MMOCR, ignored polygons are drawn into the instance maps too; the mask removes them from the loss.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..kernels import kernel_targets


def panet_targets(polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None, size: tuple[int, int],
                  kernel_ratio: float = 0.5, max_shrink_dist: float = 20) -> dict[str, np.ndarray]:
    """PANet's targets for one image of ``size = (H, W)`` (see the module docstring)."""
    flags = list(ignore) if ignore is not None else [False] * len(polygons)
    (text, kernel), mask = kernel_targets(polygons, flags, size, (1.0, kernel_ratio), max_shrink_dist)
    return {"text_instances": text, "kernel_instances": kernel, "mask": mask}


__all__ = ["panet_targets"]
