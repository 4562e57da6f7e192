"""PSENet (Wang et al., CVPR 2019) as a transformers model, laid out like MMOCR 1.0.1's.

State-dict keys are MMOCR's: ``backbone.*`` (torchvision ResNet names), ``neck.lateral_convs.i.{conv,bn}``,
``neck.fpn_convs.i.{conv,bn}``, ``neck.output_convs.{conv,bn}``, ``det_head.{conv1,bn1,conv2}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from transformers.utils import ModelOutput

from ..backbones import build_resnet_backbone
from ..base import (MapKind, TargetMap, TargetSpec, TextDetectionPreTrainedModel, binary_logits,
                    upsample_logits)
from ..heads import KernelHead
from ..losses import masked_square_dice, ohem_text_mask
from ..necks import FPNF
from .configuration_psenet import PSENetConfig
from .postprocess_psenet import DOWNSAMPLE_RATIO, psenet_post_process
from .targets_psenet import psenet_targets

STRIDE = round(1 / DOWNSAMPLE_RATIO)


@dataclass
class PSENetOutput(ModelOutput):
    """Outputs of [`PSENetForTextDetection`].

    Args:
        loss: ``loss_text + loss_kernel`` (when labels are given).
        loss_text: ``loss_text_weight`` x square dice of the text map over OHEM-selected pixels.
        loss_kernel: ``loss_kernel_weight`` x the mean square dice of the kernels, inside predicted text.
        logits: ``N x (1 + K) x H/4 x W/4``, the head's raw output: text, then the kernels from large to small.
    """

    loss: torch.Tensor | None = None
    loss_text: torch.Tensor | None = None
    loss_kernel: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    def post_process(self, scale_factors: Sequence[tuple[float, float]] | None = None, **params: Any
                     ) -> list[dict[str, list]]:
        """``psenet_post_process`` on each image (``params``: its thresholds; the model passes its config's)."""
        prob = torch.sigmoid(self.logits.detach().float()).cpu().numpy()
        scale_factors = scale_factors if scale_factors is not None else [(1.0, 1.0)] * len(prob)
        return [psenet_post_process(p, tuple(s), **params) for p, s in zip(prob, scale_factors)]


class PSENetForTextDetection(TextDetectionPreTrainedModel):
    """PSENet: ResNet backbone (timm) -> FPNF neck -> PSE head; progressive-scale-expansion post-processing.

    ``forward(pixel_values)`` takes ``N x 3 x H x W`` images normalised as MMOCR does, ``H, W`` multiples of 32,
    and returns ``logits`` ``N x 7 x H/4 x W/4``.

    Example:
        >>> from freereal_hf import PSENetForTextDetection, config_from_preset
        >>> model = PSENetForTextDetection(config_from_preset("psenet_r50")).eval()
        >>> model(torch.zeros(1, 3, 64, 64)).logits.shape
        torch.Size([1, 7, 16, 16])
    """

    config_class = PSENetConfig
    output_class = PSENetOutput
    config: PSENetConfig

    def __init__(self, config: PSENetConfig) -> None:
        super().__init__(config)
        bb = config.backbone_config
        self.backbone = build_resnet_backbone(bb.backbone, out_indices=bb.out_indices, style=config.backbone_style,
                                              pretrained=config.use_pretrained_backbone)
        self.neck = FPNF(self.backbone.feature_info.channels(), config.neck_channels)
        self.det_head = KernelHead(config.neck_channels, config.head_hidden, len(config.kernel_ratios))
        self.post_init()

    @property
    def target_spec(self) -> TargetSpec:
        """``text`` (text), ``kernels`` (one channel per kernel ratio after 1.0), ``mask`` (weight); all at the
        input resolution, as MMOCR builds them (its loss upsamples the predictions)."""
        return TargetSpec(
            maps=(TargetMap("text", MapKind.TEXT), TargetMap("kernels", MapKind.KERNEL,
                                                             channels=len(self.config.kernel_ratios) - 1),
                  TargetMap("mask", MapKind.WEIGHT)),
            text="text",
            confidence_map="mask",
            confidence="max(p, 1 - p) of the text probability, upsampled to the input size")

    def forward(self, pixel_values: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                return_dict: bool | None = None, detect_only: bool = False, **kwargs: Any) -> PSENetOutput | tuple:
        """Runs PSENet. ``labels``: the ``build_targets`` maps stacked over the batch. ``detect_only`` changes
        nothing: post-processing reads every output."""
        logits = self.det_head(self.neck(self.backbone(pixel_values)))
        out = PSENetOutput(logits=logits)
        if labels is not None:
            out = PSENetOutput(**self.loss(out, labels), logits=logits)
        return out if return_dict is not False else out.to_tuple()

    def loss(self, outputs: PSENetOutput, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MMOCR's ``PSEModuleLoss``: logits upsampled (bilinear) to the label size; ``loss_text_weight`` x square
        dice of the text over OHEM-selected pixels + ``loss_kernel_weight`` x the mean square dice of the kernels
        over pixels the prediction calls text (``kernel_sample_type='adaptive'``). Weights may be fractional."""
        cfg = self.config
        missing = [k for k in self.target_spec.names if k not in labels]
        if missing:
            raise KeyError(f"PSENet labels lack {missing}; build them with model.build_targets")
        mask = labels["mask"].to(outputs.logits)
        logits = upsample_logits(outputs.logits, tuple(mask.shape[-2:]))
        text_logits = logits[:, 0]
        gt_text = (labels["text"].to(logits) > 0.5).to(logits)
        gt_kernels = (labels["kernels"].to(logits) > 0.5).to(logits)
        sampled = ohem_text_mask(text_logits, gt_text, mask, cfg.negative_ratio)
        loss_text = cfg.loss_text_weight * masked_square_dice(torch.sigmoid(text_logits), gt_text, sampled)
        kernel_mask = (text_logits > 0).to(logits) * mask
        parts = [masked_square_dice(torch.sigmoid(logits[:, 1 + k]), gt_kernels[:, k], kernel_mask)
                 for k in range(gt_kernels.shape[1])]
        loss_kernel = cfg.loss_kernel_weight * sum(parts) / len(parts)
        return {"loss": loss_text + loss_kernel, "loss_text": loss_text, "loss_kernel": loss_kernel}

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None,
                      size: tuple[int, int]) -> dict[str, np.ndarray]:
        """PSENet's targets for one image (see ``targets_psenet``); ``size = (H, W)``."""
        cfg = self.config
        return psenet_targets(polygons, ignore, size, cfg.kernel_ratios, cfg.max_shrink_dist)

    @torch.no_grad()
    def pseudo_targets(self, outputs: PSENetOutput, confidence: float | None = None) -> dict[str, torch.Tensor]:
        """PSENet targets from a teacher's logits, upsampled to the input size as the loss does: ``text`` =
        ``p_text > 0.5``, ``kernels`` = ``p_kernel > 0.5`` inside text, ``mask`` 0 where
        ``max(p_text, 1 - p_text) < confidence`` (default ``config.pseudo_confidence``)."""
        logits = outputs.logits.detach().float()
        prob = torch.sigmoid(upsample_logits(logits, (logits.shape[2] * STRIDE, logits.shape[3] * STRIDE)))
        text = prob[:, 0] > 0.5
        kernels = (prob[:, 1:] > 0.5) & text[:, None]
        confident = torch.maximum(prob[:, 0], 1 - prob[:, 0]) >= self._confidence(confidence)
        return {"text": text.float(), "kernels": kernels.float(), "mask": confident.float()}

    def outputs_from_targets(self, targets: dict[str, torch.Tensor]) -> PSENetOutput:
        """Logits of +-10 at 1/4 of the input: a pixel is on when most of its 4 x 4 block is."""
        maps = torch.cat([targets["text"][:, None].float(), targets["kernels"].float()], dim=1)
        return PSENetOutput(logits=binary_logits(maps, STRIDE))

    def target_region(self, targets: dict[str, Any]) -> Any:
        """Text and ignored regions: ``text > 0 | mask == 0`` (numpy arrays or tensors, any leading shape)."""
        return (targets["text"] > 0) | (targets["mask"] == 0)


__all__ = ["PSENetForTextDetection", "PSENetOutput"]
