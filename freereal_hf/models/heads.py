"""Heads shared by several detectors (MMOCR 1.0.1 layouts and keys)."""

from __future__ import annotations

import torch
from torch import nn


class KernelHead(nn.Module):
    """MMOCR's ``PANHead`` (and ``PSEHead``, its subclass): conv3x3 (bias) - BN - ReLU - conv1x1 (bias) to
    ``out_channels`` logit maps at the input's resolution (1/4 of the image). Keys ``conv1``, ``bn1``, ``conv2``."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn1(self.conv1(features))))
