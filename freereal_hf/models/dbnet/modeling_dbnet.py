"""DBNet (Liao et al., AAAI 2020) as a transformers model, laid out like MMOCR 1.0.1's.

State-dict keys are MMOCR's: ``backbone.*`` (torchvision ResNet names), ``neck.lateral_convs.i.conv``,
``neck.smooth_convs.i.conv``, ``det_head.binarize.{0,1,3,4,6}``, ``det_head.threshold.{0,1,3,4,6}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from transformers.utils import ModelOutput

from ..backbones import build_resnet_backbone
from ..base import MapKind, TargetMap, TargetSpec, TextDetectionPreTrainedModel
from ..losses import balanced_bce_with_logits, masked_dice, masked_l1
from ..necks import FPNC
from .configuration_dbnet import DBNetConfig
from .postprocess_dbnet import dbnet_post_process
from .targets_dbnet import dbnet_targets

TARGETS = TargetSpec(
    maps=(TargetMap("shrink_map", MapKind.TEXT), TargetMap("shrink_mask", MapKind.WEIGHT),
          TargetMap("threshold_map", MapKind.REGRESSION), TargetMap("threshold_mask", MapKind.WEIGHT)),
    text="shrink_map",
    confidence_map="shrink_mask",
    confidence="max(prob, 1 - prob) of the probability map, per pixel",
)
LABEL_KEYS = TARGETS.names


@dataclass
class DBNetOutput(ModelOutput):
    """Outputs of [`DBNetForTextDetection`]; every map is ``N x H x W`` at the input size.

    Args:
        loss: weighted sum of the three parts (when labels are given).
        loss_prob: ``loss_prob_weight`` x balanced BCE (OHEM) of ``prob_logits`` against the shrink map.
        loss_thr: ``loss_thr_weight`` x masked L1 of ``thr`` against the threshold map.
        loss_db: ``loss_db_weight`` x dice of ``binary`` against the shrink map.
        prob_logits: logits of the text (shrink-region) probability.
        prob: ``sigmoid(prob_logits)``.
        thr: predicted threshold map in [0, 1].
        binary: differentiable binarisation ``1 / (1 + exp(-k (prob - thr)))``.
    """

    loss: torch.Tensor | None = None
    loss_prob: torch.Tensor | None = None
    loss_thr: torch.Tensor | None = None
    loss_db: torch.Tensor | None = None
    prob_logits: torch.Tensor | None = None
    prob: torch.Tensor | None = None
    thr: torch.Tensor | None = None
    binary: torch.Tensor | None = None

    def post_process(self, scale_factors: Sequence[tuple[float, float]] | None = None, **params: Any
                     ) -> list[dict[str, list]]:
        """Runs ``dbnet_post_process`` on each ``prob`` map (``params``: its thresholds, MMOCR's by default)."""
        prob = self.prob.detach().float().cpu().numpy()
        scale_factors = scale_factors if scale_factors is not None else [(1.0, 1.0)] * len(prob)
        return [dbnet_post_process(p, tuple(s), **params) for p, s in zip(prob, scale_factors)]


def _branch(channels: int, final_sigmoid: bool) -> nn.Sequential:
    """conv3x3 (no bias) - BN - ReLU - ConvT 2x2/2 - BN - ReLU - ConvT 2x2/2 to one channel: 1/4 -> full size."""
    inner = channels // 4
    layers = [nn.Conv2d(channels, inner, 3, padding=1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
              nn.ConvTranspose2d(inner, inner, 2, 2), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
              nn.ConvTranspose2d(inner, 1, 2, 2)]
    return nn.Sequential(*layers, *([nn.Sigmoid()] if final_sigmoid else []))


class DBHead(nn.Module):
    """The binarize (probability logits) and threshold branches; input ``N x C x H/4 x W/4``."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.binarize = _branch(in_channels, final_sigmoid=False)
        self.threshold = _branch(in_channels, final_sigmoid=True)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.binarize(features).squeeze(1), self.threshold(features).squeeze(1)


class DBNetForTextDetection(TextDetectionPreTrainedModel):
    """DBNet: ResNet backbone (timm, optional DCNv2) -> FPNC neck -> DB head.

    ``forward(pixel_values)`` takes ``N x 3 x H x W`` images normalised as MMOCR does (RGB,
    ``(x - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]``), ``H, W`` multiples of 32.

    Example:
        >>> from freereal_hf import DBNetConfig, DBNetForTextDetection
        >>> model = DBNetForTextDetection(DBNetConfig.from_preset("dbnet_r18")).eval()
        >>> out = model(torch.zeros(1, 3, 64, 64))
        >>> out.prob.shape
        torch.Size([1, 64, 64])
    """

    config_class = DBNetConfig
    output_class = DBNetOutput
    config: DBNetConfig
    target_spec = TARGETS

    def __init__(self, config: DBNetConfig) -> None:
        super().__init__(config)
        bb = config.backbone_config
        self.backbone = build_resnet_backbone(bb.backbone, out_indices=bb.out_indices, style=config.backbone_style,
                                              dcn_stages=config.dcn_stages, deform_groups=config.deform_groups,
                                              pretrained=config.use_pretrained_backbone)
        channels = self.backbone.feature_info.channels()
        self.neck = FPNC(channels, config.neck_lateral_channels, config.neck_out_channels)
        self.det_head = DBHead(config.neck_out_channels * len(channels))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                return_dict: bool | None = None, detect_only: bool = False, **kwargs: Any) -> DBNetOutput | tuple:
        """Runs DBNet. ``labels``: the ``build_targets`` maps stacked to ``N x H x W`` tensors. ``detect_only``
        (without labels): only what post-processing reads, ``prob_logits`` and ``prob``; the threshold branch is
        not run (as MMOCR's predict mode), so ``thr`` and ``binary`` are ``None``."""
        features = self.neck(self.backbone(pixel_values))
        if detect_only and labels is None:
            prob_logits = self.det_head.binarize(features).squeeze(1)
            maps = DBNetOutput(prob_logits=prob_logits, prob=torch.sigmoid(prob_logits))
            return maps if return_dict is not False else maps.to_tuple()
        prob_logits, thr = self.det_head(features)
        prob = torch.sigmoid(prob_logits)
        binary = torch.reciprocal(1.0 + torch.exp(-self.config.k * (prob - thr)))
        maps = DBNetOutput(prob_logits=prob_logits, prob=prob, thr=thr, binary=binary)
        out = maps if labels is None else DBNetOutput(**self.loss(maps, labels), **maps)
        return out if return_dict is not False else out.to_tuple()

    def loss(self, outputs: DBNetOutput, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The three weighted DB losses and their sum, as MMOCR's ``DBModuleLoss``.

        Targets may hold fractional weights (mixed or confidence-masked batches): the shrink map is
        binarised at 0.5 for the balanced BCE, the masks weigh pixels.
        """
        cfg = self.config
        missing = [k for k in LABEL_KEYS if k not in labels]
        if missing:
            raise KeyError(f"DBNet labels lack {missing}; build them with model.build_targets")
        shrink = labels["shrink_map"].to(outputs.prob_logits)
        shrink_mask = labels["shrink_mask"].to(outputs.prob_logits)
        loss_prob = cfg.loss_prob_weight * balanced_bce_with_logits(
            outputs.prob_logits, (shrink > 0.5).to(shrink), shrink_mask, cfg.negative_ratio)
        loss_thr = cfg.loss_thr_weight * masked_l1(outputs.thr, labels["threshold_map"].to(outputs.thr),
                                                   labels["threshold_mask"].to(outputs.thr))
        loss_db = cfg.loss_db_weight * masked_dice(outputs.binary, shrink, shrink_mask)
        return {"loss": loss_prob + loss_thr + loss_db, "loss_prob": loss_prob, "loss_thr": loss_thr,
                "loss_db": loss_db}

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None,
                      size: tuple[int, int]) -> dict[str, np.ndarray]:
        """DBNet's ``H x W`` float32 targets for one image (see ``targets_dbnet``); ``size = (H, W)``."""
        cfg = self.config
        return dbnet_targets(polygons, ignore, size, cfg.shrink_ratio, cfg.thr_min, cfg.thr_max, cfg.min_sidelength)

    @torch.no_grad()
    def pseudo_targets(self, outputs: DBNetOutput, confidence: float | None = None) -> dict[str, torch.Tensor]:
        """DBNet targets (``N x H x W`` float) from a teacher's outputs.

        ``shrink_map`` = ``prob >= 0.5``; ``threshold_map`` = the teacher's ``thr``; both weight maps are 0
        where the teacher is unsure (``max(p, 1 - p) < confidence``, default ``config.pseudo_confidence``), and
        ``threshold_mask`` is also 0 farther than ``pseudo_band`` pixels from pseudo text (the band where
        supervised targets train it).
        """
        prob = outputs.prob.detach().float()
        text = (prob >= 0.5).float()
        confident = (torch.maximum(prob, 1 - prob) >= self._confidence(confidence)).float()
        band = self.config.pseudo_band
        near_text = torch.nn.functional.max_pool2d(text[:, None], 2 * band + 1, 1, band)[:, 0] if band else text
        return {"shrink_map": text, "shrink_mask": confident, "threshold_map": outputs.thr.detach().float(),
                "threshold_mask": confident * near_text}

    def target_region(self, targets: dict[str, Any]) -> Any:
        """Text, its threshold band and ignored regions: ``shrink_map > 0 | threshold_mask > 0 | shrink_mask == 0``
        (numpy arrays or tensors, any leading shape)."""
        return (targets["shrink_map"] > 0) | (targets["threshold_mask"] > 0) | (targets["shrink_mask"] == 0)

    def outputs_from_targets(self, targets: dict[str, torch.Tensor]) -> DBNetOutput:
        """What a perfect DBNet would output for stacked targets: ``prob`` = the shrink map, ``thr`` = the
        threshold map, logits of +-10."""
        prob = targets["shrink_map"].float()
        thr = targets["threshold_map"].float()
        binary = torch.reciprocal(1.0 + torch.exp(-self.config.k * (prob - thr)))
        return DBNetOutput(prob_logits=prob * 20 - 10, prob=prob, thr=thr, binary=binary)


__all__ = ["DBNetForTextDetection", "DBNetOutput", "DBHead"]
