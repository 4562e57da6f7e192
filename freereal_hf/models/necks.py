"""Feature-pyramid necks with MMOCR 1.0.1's layouts and state-dict keys: FPNC (DBNet), FPNF (PSENet),
FPEM-FFM (PANet), mmdet's FPN (FCENet). Inputs are the backbone's C2..C5 maps (strides 4, 8, 16, 32);
FCENet's FPN takes C3..C5."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _Conv(nn.Module):
    """mmcv's ``ConvModule`` without norm and activation: a convolution (bias-free unless ``bias``) stored under
    ``.conv``, so state-dict keys read ``lateral_convs.0.conv.weight``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

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


class ConvBNReLU(nn.Module):
    """mmcv's ``ConvModule`` with BN and ReLU: a bias-free ``conv`` then ``bn`` then ReLU (keys ``conv.weight``,
    ``bn.*``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class FPNF(nn.Module):
    """PSENet's neck (MMOCR ``necks/fpnf.py``, ``fusion_type='concat'``).

    Lateral 1x1 conv+BN+ReLU to ``out_channels``; top-down ``lat[i-1] = fpn_conv(lat[i-1] + up(lat[i]))`` with
    3x3 conv+BN+ReLU (nearest upsampling); every level nearest-upsampled to C2's size, concatenated, and a 3x3
    conv+BN+ReLU back to ``out_channels``. Output ``N x out_channels x H/4 x W/4``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvBNReLU(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvBNReLU(out_channels, out_channels, 3) for _ in in_channels[:-1])
        self.output_convs = ConvBNReLU(out_channels * len(in_channels), out_channels, 3)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
            laterals[i - 1] = self.fpn_convs[i - 1](laterals[i - 1] + up)
        size = laterals[0].shape[2:]
        fused = [laterals[0]] + [F.interpolate(lat, size=size, mode="nearest") for lat in laterals[1:]]
        return self.output_convs(torch.cat(fused, dim=1))


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (with bias) + pointwise 1x1 (with bias) + BN + ReLU (MMOCR's FPEM building block)."""

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv2d(channels, channels, 3, padding=1, stride=stride, groups=channels)
        self.pointwise_conv = nn.Conv2d(channels, channels, 1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.pointwise_conv(self.depthwise_conv(x))))


class FPEM(nn.Module):
    """Feature pyramid enhancement: an up-scale pass (C5 -> C2, stride-1 separable convs) then a down-scale
    pass (C2 -> C5, stride-2 separable convs), each adding the nearest-upsampled coarser map."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        for name, stride in (("up_add", 1), ("down_add", 2)):
            for i in (1, 2, 3):
                setattr(self, f"{name}{i}", SeparableConv2d(channels, stride))

    @staticmethod
    def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=y.shape[2:]) + y

    def forward(self, c2, c3, c4, c5):
        c4 = self.up_add1(self._upsample_add(c5, c4))
        c3 = self.up_add2(self._upsample_add(c4, c3))
        c2 = self.up_add3(self._upsample_add(c3, c2))
        c3 = self.down_add1(self._upsample_add(c3, c2))
        c4 = self.down_add2(self._upsample_add(c4, c3))
        c5 = self.down_add3(self._upsample_add(c5, c4))
        return c2, c3, c4, c5


def _reduce(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels), nn.ReLU())


class FPEMFFM(nn.Module):
    """PANet's neck (MMOCR ``necks/fpem_ffm.py``): 1x1 conv+BN+ReLU reductions to ``conv_out``, ``fpem_repeat``
    FPEMs whose outputs are summed per level (feature fusion), C3..C5 bilinearly upsampled to C2's size.
    Returns the four maps (``N x conv_out x H/4 x W/4`` each); the head concatenates them."""

    def __init__(self, in_channels: Sequence[int], conv_out: int = 128, fpem_repeat: int = 2) -> None:
        super().__init__()
        for level, c in zip((2, 3, 4, 5), in_channels):
            setattr(self, f"reduce_conv_c{level}", _reduce(c, conv_out))
        self.fpems = nn.ModuleList(FPEM(conv_out) for _ in range(fpem_repeat))

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        c = [getattr(self, f"reduce_conv_c{level}")(f) for level, f in zip((2, 3, 4, 5), features)]
        fused = None
        for fpem in self.fpems:
            c = list(fpem(*c))
            fused = c if fused is None else [a + b for a, b in zip(fused, c)]
        size = fused[0].shape[2:]
        return (fused[0], *(F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in fused[1:]))


class FPN(nn.Module):
    """mmdet 3.1.0's ``FPN`` as FCENet configures it (``act_cfg=None``, as many outputs as inputs).

    Input: the C3..C5 maps (strides 8, 16, 32). Output: a tuple of ``N x out_channels x H/s x W/s`` maps at the
    same strides. Biased 1x1 laterals, nearest top-down upsampling to each finer map's size and addition, then a
    biased 3x3 conv per level, all Xavier-initialised as mmdet does. Keys ``lateral_convs.i.conv.*`` and
    ``fpn_convs.i.conv.*``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(_Conv(c, out_channels, 1, bias=True) for c in in_channels)
        self.fpn_convs = nn.ModuleList(_Conv(out_channels, out_channels, 3, bias=True) for _ in in_channels)
        for conv in [*self.lateral_convs, *self.fpn_convs]:
            conv.conv._init_xavier = True  # mmdet's init of its FPN

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        return tuple(conv(lat) for conv, lat in zip(self.fpn_convs, laterals))
