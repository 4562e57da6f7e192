"""PSENet training targets from polygons, equal to MMOCR 1.0.1's ``PSEModuleLoss.get_targets`` (binarised, as
its loss uses them). Maps are at the network input size; polygons ``K x 2`` arrays of ``(x, y)`` pixels.

- ``text``: ``H x W`` uint8, 1 inside every polygon (ratio 1.0), else 0.
- ``kernels``: ``K x H x W`` uint8, the polygons shrunk by each further ratio (0.9 ... 0.4 by default), the
  shrink distance ``min(int(A (1 - r^2) / (L + 0.001) + 0.5), max_shrink_dist)``.
- ``mask``: ``H x W`` uint8, 0 inside ignored polygons, else 1.

As in MMOCR, ignored polygons are drawn into ``text`` and ``kernels`` too; the mask removes them from the loss.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..kernels import kernel_targets


def psenet_targets(polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None, size: tuple[int, int],
                   kernel_ratios: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4), max_shrink_dist: float = 20
                   ) -> dict[str, np.ndarray]:
    """PSENet's targets for one image of ``size = (H, W)`` (see the module docstring)."""
    flags = list(ignore) if ignore is not None else [False] * len(polygons)
    kernels, mask = kernel_targets(polygons, flags, size, kernel_ratios, max_shrink_dist, ids=False)
    return {"text": kernels[0], "kernels": kernels[1:], "mask": mask}


__all__ = ["psenet_targets"]
