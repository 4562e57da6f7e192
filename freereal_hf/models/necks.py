"""Feature-pyramid necks. FPNC is DBNet's (MMOCR ``necks/fpn_cat.py``); the others join with their detectors."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _Conv(nn.Module):
    """A bias-free convolution stored under ``.conv``, so state-dict keys read ``lateral_convs.0.conv.weight``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FPNC(nn.Module):
    """Top-down FPN whose levels are upsampled to the finest one and concatenated.

    Input: the C2..C5 maps (strides 4, 8, 16, 32). Output: ``N x (out_channels * levels) x H/4 x W/4``.
    Lateral 1x1 convs to ``lateral_channels``, nearest top-down upsample + add, 3x3 smooth convs to
    ``out_channels``, every level nearest-upsampled to the C2 size, concatenated in C2..C5 order.
    """

    def __init__(self, in_channels: Sequence[int], lateral_channels: int = 256, out_channels: int = 64) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(_Conv(c, lateral_channels, 1) for c in in_channels)
        self.smooth_convs = nn.ModuleList(_Conv(lateral_channels, out_channels, 3) for _ in in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        outs = [conv(lat) for conv, lat in zip(self.smooth_convs, laterals)]
        size = outs[0].shape[2:]
        return torch.cat([outs[0]] + [F.interpolate(o, size=size, mode="nearest") for o in outs[1:]], dim=1)
