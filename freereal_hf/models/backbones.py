"""timm ResNet feature backbones laid out like mmdet's ResNet, with optional DCNv2 stages.

The backbone is timm's ``features_only`` model itself, so its parameter names are torchvision's
(``conv1``, ``bn1``, ``layer1.0.conv1`` ...), the same as mmdet's: MMOCR weights load one to one.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import timm
import torch
import torchvision.ops
from torch import nn

logger = logging.getLogger(__name__)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 laid out like mmcv's ``ModulatedDeformConv2dPack`` (weights ``weight``, ``conv_offset.*``).

    ``conv_offset`` predicts ``3 * deform_groups * k * k`` channels: x/y offsets (the first two thirds,
    concatenated) and the modulation mask (sigmoid of the last third). Computed with
    ``torchvision.ops.deform_conv2d``. Input ``N x C_in x H x W``, output ``N x C_out x H' x W'``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deform_groups: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = (stride, stride), (padding, padding), (dilation, dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(in_channels, deform_groups * 3 * kernel_size * kernel_size, kernel_size,
                                     stride=stride, padding=padding, dilation=dilation, bias=True)
        self.conv_offset._zero_init = True  # starts as a plain convolution, as in mmcv
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1, o2, mask = torch.chunk(self.conv_offset(x), 3, dim=1)
        return torchvision.ops.deform_conv2d(x, torch.cat((o1, o2), dim=1), self.weight, self.bias,
                                             stride=self.stride, padding=self.padding, dilation=self.dilation,
                                             mask=torch.sigmoid(mask))


def _is_meta_init() -> bool:
    """True while transformers builds the empty model of ``from_pretrained`` (weights come from the file)."""
    return torch.empty(0).device.type == "meta"


def build_resnet_backbone(
    name: str,
    out_indices: Sequence[int] = (1, 2, 3, 4),
    style: str = "pytorch",
    dcn_stages: Sequence[bool] = (False, False, False, False),
    deform_groups: int = 1,
    pretrained: bool = False,
    deep_stem: bool = False,
) -> nn.Module:
    """Builds a timm ResNet returning the feature maps of ``out_indices`` (1..4 = C2..C5, strides 4..32).

    Args:
        name: a timm model name, ``"resnet18"`` or ``"resnet50"`` (any timm ResNet works).
        style: ``"pytorch"`` (stride on the 3x3 conv) or ``"caffe"`` (stride on the first 1x1 conv of
            bottleneck blocks, as mmdet's ``style='caffe'``); no effect on basic blocks.
        dcn_stages: per stage (layer1..layer4), whether the 3x3 conv of every block is a DCNv2.
        pretrained: load timm's ImageNet weights. Needs the Hub; offline it warns and keeps random init.
        deep_stem: mmdet's ``deep_stem=True, stem_channels=128`` (PANet): three 3x3 convs 3->64->64->128 with BN
            and ReLU, kept under mmdet's key names ``stem.{0,1,3,4,6,7}``; ``layer1`` then starts from 128
            channels (so ``layer1.0`` has a downsample). No pretrained weights exist for it.
    """
    load_weights = pretrained and not _is_meta_init()
    stem = {"stem_type": "deep", "stem_width": 64} if deep_stem else {}
    if deep_stem and load_weights:
        warnings.warn("no pretrained weights exist for a deep-stem ResNet; the backbone starts from random "
                      "initialisation", stacklevel=2)
        load_weights = False
    try:
        model = timm.create_model(name, pretrained=load_weights, features_only=True, out_indices=tuple(out_indices),
                                  **stem)
    except Exception as err:  # offline, or no such weights: random init is still a valid backbone
        if not load_weights:
            raise
        warnings.warn(f"could not load pretrained weights for timm model {name!r} ({type(err).__name__}: {err}); "
                      "the backbone starts from random initialisation", stacklevel=2)
        model = timm.create_model(name, pretrained=False, features_only=True, out_indices=tuple(out_indices))
        load_weights = False
    if load_weights:  # keep transformers' post_init from re-initialising what was just loaded
        for tensor in list(model.parameters()) + list(model.buffers()):
            tensor._is_hf_initialized = True
    if deep_stem:  # timm's conv1 (Sequential), bn1, act1 -> mmdet's `stem` Sequential, same order of layers
        modules = dict(model.items())
        model.clear()
        model["stem"] = nn.Sequential(*modules["conv1"], modules["bn1"], modules["act1"])
        for key, module in modules.items():
            if key not in ("conv1", "bn1", "act1"):
                model[key] = module
    for stage, with_dcn in enumerate(dcn_stages, start=1):
        layer = getattr(model, f"layer{stage}", None)
        if layer is None:
            continue
        for block in layer:
            if style == "caffe" and hasattr(block, "conv3"):  # bottleneck: move the stride to conv1
                stride = block.conv2.stride
                block.conv1.stride, block.conv2.stride = stride, (1, 1)
            if with_dcn:
                conv = block.conv2
                block.conv2 = ModulatedDeformConv2d(conv.in_channels, conv.out_channels, conv.kernel_size[0],
                                                    stride=conv.stride[0], padding=conv.padding[0],
                                                    dilation=conv.dilation[0], deform_groups=deform_groups)
    return model


def set_norm_eval(module: nn.Module) -> None:
    """Puts every batch norm of ``module`` in eval mode (frozen running statistics; weights still train)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
