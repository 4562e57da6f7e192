"""PANet (Wang et al., ICCV 2019) as a transformers model, laid out like MMOCR 1.0.1's.

State-dict keys are MMOCR's: ``backbone.stem.{0,1,3,4,6,7}`` (mmdet's deep stem) and ``backbone.layerX``,
``neck.reduce_conv_cX.{0,1}``, ``neck.fpems.i.{up,down}_addJ.{depthwise_conv,pointwise_conv,bn}``,
``det_head.{conv1,bn1,conv2}``.
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
from ..losses import masked_square_dice, ohem_text_mask, pan_embedding_loss
from ..necks import FPEMFFM
from .configuration_panet import PANetConfig
from .postprocess_panet import DOWNSAMPLE_RATIO, panet_instance_labels, panet_post_process
from .targets_panet import panet_targets

STRIDE = round(1 / DOWNSAMPLE_RATIO)
TARGETS = TargetSpec(
    maps=(TargetMap("text_instances", MapKind.INSTANCE), TargetMap("kernel_instances", MapKind.INSTANCE),
          TargetMap("mask", MapKind.WEIGHT)),
    text="text_instances",
    confidence_map="mask",
    confidence="max(p, 1 - p) of the text probability, upsampled to the input size; text pixels that join no "
               "kernel in pixel aggregation are ignored too",
)


@dataclass
class PANetOutput(ModelOutput):
    """Outputs of [`PANetForTextDetection`].

    Args:
        loss: ``loss_text + loss_kernel + loss_embedding`` (when labels are given).
        loss_text: ``loss_text_weight`` x square dice of the text map over OHEM-selected pixels.
        loss_kernel: ``loss_kernel_weight`` x square dice of the kernel map inside the text.
        loss_embedding: ``loss_embedding_weight`` x the embedding loss (aggregation, discrimination).
        logits: ``N x (2 + D) x H/4 x W/4``, the head's raw output: text logit, kernel logit, D-dim embedding.
    """

    loss: torch.Tensor | None = None
    loss_text: torch.Tensor | None = None
    loss_kernel: torch.Tensor | None = None
    loss_embedding: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    def probability_maps(self) -> np.ndarray:
        """``N x (2 + D) x h x w`` float32: sigmoid of the text and kernel logits, the embedding unchanged."""
        maps = self.logits.detach().float().clone()
        maps[:, :2] = torch.sigmoid(maps[:, :2])
        return maps.cpu().numpy()

    def post_process(self, scale_factors: Sequence[tuple[float, float]] | None = None, **params: Any
                     ) -> list[dict[str, list]]:
        """``panet_post_process`` on each image (``params``: its thresholds; the model passes its config's)."""
        maps = self.probability_maps()
        scale_factors = scale_factors if scale_factors is not None else [(1.0, 1.0)] * len(maps)
        return [panet_post_process(m, tuple(s), **params) for m, s in zip(maps, scale_factors)]


class PANetForTextDetection(TextDetectionPreTrainedModel):
    """PANet: deep-stem ResNet-18 (timm) -> FPEM-FFM neck -> PAN head; pixel-aggregation post-processing.

    ``forward(pixel_values)`` takes ``N x 3 x H x W`` images normalised as MMOCR does, ``H, W`` multiples of 32,
    and returns ``logits`` ``N x 6 x H/4 x W/4``.

    Example:
        >>> from freereal_hf import PANetForTextDetection, config_from_preset
        >>> model = PANetForTextDetection(config_from_preset("panet_r18")).eval()
        >>> model(torch.zeros(1, 3, 64, 64)).logits.shape
        torch.Size([1, 6, 16, 16])
    """

    config_class = PANetConfig
    output_class = PANetOutput
    config: PANetConfig
    target_spec = TARGETS

    def __init__(self, config: PANetConfig) -> None:
        super().__init__(config)
        bb = config.backbone_config
        self.backbone = build_resnet_backbone(bb.backbone, out_indices=bb.out_indices, style=config.backbone_style,
                                              pretrained=config.use_pretrained_backbone, deep_stem=True)
        channels = self.backbone.feature_info.channels()
        self.neck = FPEMFFM(channels, config.neck_channels, config.fpem_repeat)
        self.det_head = KernelHead(config.neck_channels * len(channels), config.head_hidden, 2 + config.embedding_dim)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: dict[str, torch.Tensor] | None = None,
                return_dict: bool | None = None, detect_only: bool = False, **kwargs: Any) -> PANetOutput | tuple:
        """Runs PANet. ``labels``: the ``build_targets`` maps stacked over the batch. ``detect_only`` changes
        nothing: post-processing reads every output."""
        logits = self.det_head(torch.cat(self.neck(self.backbone(pixel_values)), dim=1))
        out = PANetOutput(logits=logits)
        if labels is not None:
            out = PANetOutput(**self.loss(out, labels), logits=logits)
        return out if return_dict is not False else out.to_tuple()

    def loss(self, outputs: PANetOutput, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MMOCR's ``PANModuleLoss``: logits upsampled (bilinear) to the label size; square dice of the text over
        OHEM-selected pixels, square dice of the kernel inside the text, and the embedding loss on the instance
        ids. Weights may be fractional."""
        cfg = self.config
        missing = [k for k in self.target_spec.names if k not in labels]
        if missing:
            raise KeyError(f"PANet labels lack {missing}; build them with model.build_targets")
        mask = labels["mask"].to(outputs.logits)
        logits = upsample_logits(outputs.logits, tuple(mask.shape[-2:]))
        text_ids, kernel_ids = labels["text_instances"], labels["kernel_instances"]
        loss_embedding = cfg.loss_embedding_weight * pan_embedding_loss(
            logits[:, 2:], text_ids, kernel_ids, mask, cfg.delta_aggregation, cfg.delta_discrimination).mean()
        gt_text = (text_ids > 0.5).to(logits)
        gt_kernel = (kernel_ids > 0.5).to(logits)
        sampled = ohem_text_mask(logits[:, 0], gt_text, mask, cfg.negative_ratio)
        loss_text = cfg.loss_text_weight * masked_square_dice(torch.sigmoid(logits[:, 0]), gt_text, sampled)
        loss_kernel = cfg.loss_kernel_weight * masked_square_dice(torch.sigmoid(logits[:, 1]), gt_kernel,
                                                                  gt_text * mask)
        return {"loss": loss_text + loss_kernel + loss_embedding, "loss_text": loss_text,
                "loss_kernel": loss_kernel, "loss_embedding": loss_embedding}

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool] | None,
                      size: tuple[int, int]) -> dict[str, np.ndarray]:
        """PANet's targets for one image (see ``targets_panet``); ``size = (H, W)``."""
        return panet_targets(polygons, ignore, size, self.config.kernel_ratio, self.config.max_shrink_dist)

    @torch.no_grad()
    def pseudo_targets(self, outputs: PANetOutput, confidence: float | None = None) -> dict[str, torch.Tensor]:
        """PANet targets from a teacher's outputs: instances from the teacher's own pixel aggregation (at 1/4,
        on the CPU, as post-processing does), brought to the input size with nearest neighbours (border pixels the
        coarse labels miss take a neighbouring id) and cut to the teacher's text (``p_text > 0.5`` of the upsampled logits); kernel ids are the instance ids inside
        ``p_kernel > 0.5``. ``mask`` is 0 where ``max(p_text, 1 - p_text) < confidence`` and on text pixels that
        joined no kernel."""
        cfg = self.config
        logits = outputs.logits.detach().float()
        maps = PANetOutput(logits=logits).probability_maps()
        labels = np.stack([panet_instance_labels(m, 0.5, 0.5, cfg.distance_threshold)[0] for m in maps])
        ids = torch.from_numpy(labels).to(logits.device)
        ids = ids.repeat_interleave(STRIDE, dim=1).repeat_interleave(STRIDE, dim=2)
        prob = torch.sigmoid(upsample_logits(logits[:, :2], tuple(ids.shape[-2:])))
        text = prob[:, 0] > 0.5
        kernel = (prob[:, 1] > 0.5) & text
        for _ in range(STRIDE // 2):  # text pixels the coarse labels miss at instance borders take a neighbour's id
            grown = torch.nn.functional.max_pool2d(ids[:, None].float(), 3, 1, 1)[:, 0].to(ids.dtype)
            ids = torch.where(text & (ids == 0), grown, ids)
        text_ids = torch.where(text, ids, 0).int()
        confident = torch.maximum(prob[:, 0], 1 - prob[:, 0]) >= self._confidence(confidence)
        mask = confident & ~(text & (ids == 0))
        return {"text_instances": text_ids, "kernel_instances": torch.where(kernel, text_ids, 0).int(),
                "mask": mask.float()}

    def outputs_from_targets(self, targets: dict[str, torch.Tensor]) -> PANetOutput:
        """Logits of +-10 at 1/4 of the input (a pixel is on when most of its 4 x 4 block is) and an embedding
        ``(4 * id, 0, ...)`` from the instance id at the block's centre, so that neighbouring instances are at
        least 4 apart (more than ``distance_threshold``)."""
        text_ids = targets["text_instances"]
        text = binary_logits(text_ids > 0, STRIDE)
        kernel = binary_logits(targets["kernel_instances"] > 0, STRIDE)
        centre = text_ids[:, STRIDE // 2::STRIDE, STRIDE // 2::STRIDE].float()
        embedding = torch.zeros(text.shape[0], self.config.embedding_dim, *text.shape[1:])
        embedding[:, 0] = 4 * centre[:, :text.shape[1], :text.shape[2]]
        return PANetOutput(logits=torch.cat([text[:, None], kernel[:, None], embedding], dim=1))

    def target_region(self, targets: dict[str, Any]) -> Any:
        """Text and ignored regions: ``text_instances > 0 | mask == 0`` (numpy arrays or tensors)."""
        return (targets["text_instances"] > 0) | (targets["mask"] == 0)


__all__ = ["PANetForTextDetection", "PANetOutput"]
