"""FCENet (Zhu et al., CVPR 2021) as a transformers model, laid out like MMOCR 1.0.1's.

State-dict keys are MMOCR's: ``backbone.*`` (mmdet ResNet-50; ``conv2.conv_offset`` for DCNv2 stages),
``neck.lateral_convs.i.conv.*`` / ``neck.fpn_convs.i.conv.*`` (mmdet FPN), ``det_head.out_conv_cls.*`` and
``det_head.out_conv_reg.*``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ..backbones import build_resnet_backbone
from ..base import MapKind, TargetMap, TargetSpec, TextDetectionPreTrainedModel
from ..losses import balanced_bce_with_logits
from ..necks import FPN
from .configuration_fcenet import FCENetConfig
from .postprocess_fcenet import fcenet_post_process
from .targets_fcenet import fcenet_targets

STRIDES = (8, 16, 32)
MAP_NAMES = ("text", "center", "mask", "fourier")


@functools.lru_cache(maxsize=None)
def target_spec(fourier_degree: int = 5) -> TargetSpec:
    """FCENet's targets: per level (stride 8, 16, 32) ``text_sS`` (text region), ``center_sS`` (text centre
    region), ``mask_sS`` (weight) and ``fourier_sS`` (``2 (2k + 1)`` Fourier coefficient maps)."""
    maps = []
    for s in STRIDES:
        maps += [TargetMap(f"text_s{s}", MapKind.TEXT, s), TargetMap(f"center_s{s}", MapKind.KERNEL, s),
                 TargetMap(f"mask_s{s}", MapKind.WEIGHT, s),
                 TargetMap(f"fourier_s{s}", MapKind.REGRESSION, s, channels=2 * (2 * fourier_degree + 1))]
    return TargetSpec(maps=tuple(maps), text=tuple(f"text_s{s}" for s in STRIDES),
                      confidence_map=tuple(f"mask_s{s}" for s in STRIDES),
                      confidence="at each level, max(p, 1 - p) of the text-region probability; the teacher's text "
                                 "region, centre region and Fourier coefficients become the level's targets")


@dataclass
class FCENetOutput(ModelOutput):
    """Outputs of [`FCENetForTextDetection`].

    Args:
        loss: ``loss_text + loss_center + loss_reg_x + loss_reg_y`` (when labels are given), each summed over
            the three levels.
        loss_text: OHEM-balanced BCE of the text region (from the logit difference: MMOCR's value wherever its
            float32 probability is not exactly 0 or 1, and a gradient where MMOCR's would die).
        loss_center: BCE of the centre region inside the text, plus half of it outside (MMOCR applies
            BCE-with-logits to the softmax probability here; kept, see ``docs/method.md``).
        loss_reg_x / loss_reg_y: smooth L1 between the ``num_sample`` points of the predicted and the target
            Fourier contours, weighted by ``(text + centre) / 2``, over the text pixels.
        cls_res: per level (strides 8, 16, 32) ``N x 4 x H/s x W/s`` logits: text-region pair, centre-region pair.
        reg_res: per level ``N x 2 (2k + 1) x H/s x W/s``: real parts, then imaginary parts of ``c_-k .. c_k`` in
            level pixels (``c_0`` relative to the pixel).
    """

    loss: torch.Tensor | None = None
    loss_text: torch.Tensor | None = None
    loss_center: torch.Tensor | None = None
    loss_reg_x: torch.Tensor | None = None
    loss_reg_y: torch.Tensor | None = None
    cls_res: tuple[torch.Tensor, ...] | None = None
    reg_res: tuple[torch.Tensor, ...] | None = None

    def post_process(self, scale_factors: Sequence[tuple[float, float]] | None = None, **params: Any
                     ) -> list[dict[str, list]]:
        """``fcenet_post_process`` on each image (``params``: its thresholds; the model passes its config's)."""
        cls = [c.detach().float().cpu().numpy() for c in self.cls_res]
        reg = [r.detach().float().cpu().numpy() for r in self.reg_res]
        n = len(cls[0])
        scale_factors = scale_factors if scale_factors is not None else [(1.0, 1.0)] * n
        return [fcenet_post_process([c[i] for c in cls], [r[i] for r in reg], tuple(scale_factors[i]), STRIDES,
                                    **params) for i in range(n)]


class FCEHead(nn.Module):
    """MMOCR's ``FCEHead``: one 3x3 conv to 4 class logits and one to ``2 (2k + 1)`` Fourier maps, shared by
    every level. Both start from N(0, 0.01) weights and zero biases (MMOCR's init)."""

    def __init__(self, in_channels: int, fourier_degree: int) -> None:
        super().__init__()
        self.out_conv_cls = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.out_conv_reg = nn.Conv2d(in_channels, 2 * (2 * fourier_degree + 1), 3, padding=1)
        self.out_conv_cls._init_std = self.out_conv_reg._init_std = 0.01

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        return tuple(self.out_conv_cls(f) for f in features), tuple(self.out_conv_reg(f) for f in features)


def fourier_contours(coeffs: torch.Tensor, num_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``M x 2 (2k + 1)`` coefficient rows (real parts, imaginary parts) -> the ``x`` and ``y`` (``M x num_points``)
    of their contours, ``z_n = sum_j c_j exp(2 pi i j n / num_points)`` (MMOCR's ``_fourier2poly``)."""
    k = coeffs.shape[1] // 2
    degree = (k - 1) // 2
    angles = 2 * math.pi / num_points * torch.outer(
        torch.arange(-degree, degree + 1, dtype=torch.float32, device=coeffs.device),
        torch.arange(num_points, dtype=torch.float32, device=coeffs.device))
    cos, sin = torch.cos(angles).to(coeffs.dtype), torch.sin(angles).to(coeffs.dtype)
    real, imag = coeffs[:, :k], coeffs[:, k:]
    return real @ cos - imag @ sin, real @ sin + imag @ cos


def _masked_bce(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``sum(BCE-with-logits(pred, target) * mask) / (sum(mask) + eps)`` (MMOCR's ``MaskedBCEWithLogitsLoss``)."""
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    return (loss * mask).sum() / (mask.sum() + eps)


class FCENetForTextDetection(TextDetectionPreTrainedModel):
    """FCENet: ResNet-50 C3..C5 (timm) -> mmdet FPN -> FCE head at strides 8, 16, 32; Fourier contours.

    ``forward(pixel_values)`` takes ``N x 3 x H x W`` images normalised as MMOCR does, ``H, W`` multiples of 32,
    and returns ``cls_res`` and ``reg_res``, one tensor per level.

    Example:
        >>> from freereal_hf import FCENetForTextDetection, config_from_preset
        >>> model = FCENetForTextDetection(config_from_preset("fcenet_r50")).eval()
        >>> out = model(torch.zeros(1, 3, 64, 64))
        >>> [tuple(c.shape) for c in out.cls_res], tuple(out.reg_res[0].shape)
        ([(1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)], (1, 22, 8, 8))
    """

    config_class = FCENetConfig
    output_class = FCENetOutput
    config: FCENetConfig

    def __init__(self, config: FCENetConfig) -> None:
        super().__init__(config)
        bb = config.backbone_config
        self.backbone = build_resnet_backbone(bb.backbone, out_indices=bb.out_indices, style=config.backbone_style,
                                              dcn_stages=config.dcn_stages, deform_groups=config.deform_groups,
                                              pretrained=config.use_pretrained_backbone)
        self.neck = FPN(self.backbone.feature_info.channels(), config.neck_channels)
        self.det_head = FCEHead(config.neck_channels, config.fourier_degree)
        self.post_init()

    @property
    def target_spec(self) -> TargetSpec:  # type: ignore[override]
        """The declared maps (the Fourier maps' channels follow ``config.fourier_degree``)."""
        return target_spec(self.config.fourier_degree)

    def forward(self, pixel_values: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                return_dict: bool | None = None, detect_only: bool = False, **kwargs: Any) -> FCENetOutput | tuple:
        """Runs FCENet. ``labels``: the ``build_targets`` maps stacked over the batch. ``detect_only`` changes
        nothing: post-processing reads every output."""
        cls_res, reg_res = self.det_head(self.neck(self.backbone(pixel_values)))
        out = FCENetOutput(cls_res=cls_res, reg_res=reg_res)
        if labels is not None:
            out = FCENetOutput(**self.loss(out, labels), cls_res=cls_res, reg_res=reg_res)
        return out if return_dict is not False else out.to_tuple()

    def loss(self, outputs: FCENetOutput, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MMOCR's ``FCEModuleLoss``, per level and summed over the levels. Weights may be fractional (GlyphMix,
        teacher confidence): they scale the regression weights too; with 0/1 weights this is MMOCR's loss."""
        missing = [k for k in self.target_spec.names if k not in labels]
        if missing:
            raise KeyError(f"FCENet labels lack {missing}; build them with model.build_targets")
        cfg = self.config
        parts = {"loss_text": 0.0, "loss_center": 0.0, "loss_reg_x": 0.0, "loss_reg_y": 0.0}
        for cls, reg, s in zip(outputs.cls_res, outputs.reg_res, STRIDES):
            tr, tcl = labels[f"text_s{s}"].to(cls), labels[f"center_s{s}"].to(cls)
            train, fourier = labels[f"mask_s{s}"].to(cls), labels[f"fourier_s{s}"].to(reg)
            # MMOCR takes BCE of the softmax probability; the same value from the logit difference (the softmax of
            # a pair is the sigmoid of the difference), without the dead gradient of a saturated probability
            parts["loss_text"] = parts["loss_text"] + balanced_bce_with_logits(cls[:, 1] - cls[:, 0], tr, train,
                                                                               cfg.negative_ratio)
            # "mmocr": BCE-with-logits of the softmax probability (MMOCR's); "bce": of the logit difference
            center = torch.softmax(cls[:, 2:4], dim=1)[:, 1] if cfg.center_loss == "mmocr" else cls[:, 3] - cls[:, 2]
            tr_train = tr * train
            parts["loss_center"] = parts["loss_center"] + _masked_bce(center, tcl, tr_train) \
                + 0.5 * _masked_bce(center, tcl, 1 - tr_train)
            on = tr_train > 0
            if on.any():
                weight = ((tr[on] + tcl[on]) / 2 * train[on])[:, None]
                gx, gy = fourier_contours(fourier.movedim(1, -1)[on], cfg.num_sample)
                px, py = fourier_contours(reg.movedim(1, -1)[on], cfg.num_sample)
                parts["loss_reg_x"] = parts["loss_reg_x"] + (weight * F.smooth_l1_loss(px, gx, reduction="none")).mean()
                parts["loss_reg_y"] = parts["loss_reg_y"] + (weight * F.smooth_l1_loss(py, gy, reduction="none")).mean()
        zero = outputs.cls_res[0].sum() * 0  # keeps the graph when a part has no pixel
        parts = {k: zero + v for k, v in parts.items()}
        return {"loss": sum(parts.values()), **parts}

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None,
                      size: tuple[int, int]) -> dict[str, np.ndarray]:
        """FCENet's targets for one image (see ``targets_fcenet``); ``size = (H, W)``; maps at the declared
        shapes (``ceil(H / s) x ceil(W / s)``; MMOCR's ``H // s`` for sizes that are multiples of 32)."""
        cfg = self.config
        levels = fcenet_targets(polygons, ignore, size, STRIDES, cfg.level_proportion_range, cfg.fourier_degree,
                                cfg.resample_step, cfg.center_region_shrink_ratio)
        out = {}
        for s, maps in zip(STRIDES, levels):
            for name in MAP_NAMES:
                declared = self.target_spec[f"{name}_s{s}"].shape(size)
                value = maps[name]
                if value.shape != declared:  # sizes that are not multiples of the stride: pad the last row/column
                    pad = [(0, d - v) for d, v in zip(declared, value.shape)]
                    value = np.pad(value, pad, constant_values=1 if name == "mask" else 0)
                out[f"{name}_s{s}"] = value.astype(self.target_spec[f"{name}_s{s}"].dtype, copy=False)
        return out

    @torch.no_grad()
    def pseudo_targets(self, outputs: FCENetOutput, confidence: float | None = None) -> dict[str, torch.Tensor]:
        """FCENet targets from a teacher's outputs, level by level: text = ``p_text > 0.5``, centre =
        ``p_center > 0.5`` inside the text, Fourier maps = the teacher's coefficients on its text (0 elsewhere),
        and ``mask`` 0 where ``max(p_text, 1 - p_text) < confidence``."""
        c = self._confidence(confidence)
        out = {}
        for cls, reg, s in zip(outputs.cls_res, outputs.reg_res, STRIDES):
            cls, reg = cls.detach().float(), reg.detach().float()
            p_text = torch.softmax(cls[:, 0:2], dim=1)[:, 1]
            text = p_text > 0.5
            center = (torch.softmax(cls[:, 2:4], dim=1)[:, 1] > 0.5) & text
            out[f"text_s{s}"] = text.float()
            out[f"center_s{s}"] = center.float()
            out[f"mask_s{s}"] = (torch.maximum(p_text, 1 - p_text) >= c).float()
            out[f"fourier_s{s}"] = torch.where(text[:, None], reg, torch.zeros_like(reg))
        return {name: out[name] for name in self.target_spec.names}

    def outputs_from_targets(self, targets: dict[str, torch.Tensor]) -> FCENetOutput:
        """Logit pairs ``(0, +-10)`` from the text and centre maps, and the target Fourier maps as regression."""
        cls_res, reg_res = [], []
        for s in STRIDES:
            text, center = targets[f"text_s{s}"].float(), targets[f"center_s{s}"].float()
            zero = torch.zeros_like(text)
            cls_res.append(torch.stack([zero, 20 * text - 10, zero, 20 * center - 10], dim=1))
            reg_res.append(targets[f"fourier_s{s}"].float())
        return FCENetOutput(cls_res=tuple(cls_res), reg_res=tuple(reg_res))

    def target_region(self, targets: dict[str, Any]) -> Any:
        """Text and ignored regions of every level, ``text > 0.5 | mask == 0``, scaled up to the input resolution
        (``H x W`` of the finest level times 8; numpy arrays or tensors)."""
        finest = targets[f"text_s{STRIDES[0]}"]
        size = (finest.shape[-2] * STRIDES[0], finest.shape[-1] * STRIDES[0])
        region = None
        for s in STRIDES:
            level = (targets[f"text_s{s}"] > 0.5) | (targets[f"mask_s{s}"] == 0)
            if isinstance(level, torch.Tensor):
                level = level.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)
            else:
                level = np.repeat(np.repeat(level, s, axis=-2), s, axis=-1)
            level = level[..., :size[0], :size[1]]
            region = level if region is None else region | level
        return region


__all__ = ["FCENetForTextDetection", "FCENetOutput", "FCEHead", "fourier_contours", "target_spec"]
