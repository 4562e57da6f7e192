"""The base class every detector derives from, and the detector protocol.

The protocol (what GlyphMix, the teacher and both training loops use, and nothing else):

- ``forward(pixel_values, labels=None)``: ``pixel_values`` is ``N x 3 x H x W``, normalised like MMOCR's
  preprocessor (RGB, ImageNet mean/std in 0..255 units), ``H`` and ``W`` multiples of 32. Returns a
  ``ModelOutput`` with the raw dense maps and, when ``labels`` (the dict made by ``build_targets``,
  stacked to ``N x H x W`` tensors) is given, ``loss`` and its named parts.
- ``build_targets(polygons, ignore, size)``: per image, polygons as ``K x 2`` arrays of ``(x, y)`` pixels
  at the training size ``(H, W)`` -> dict of ``H x W`` float32 maps, weight maps included.
- ``pseudo_targets(outputs)``: teacher outputs (the ``forward`` output, ``N x H x W`` maps) -> the same dict of
  ``N x H x W`` float tensors as stacked ``build_targets`` maps, with low-confidence pixels given weight 0
  in the weight maps. Runs batched on the outputs' device, without gradients.
- ``target_region(targets)``: ``... x H x W`` bool, the pixels the targets of a set of polygons speak about
  (the text and whatever margin around it the targets need, e.g. DBNet's threshold band, ignored regions
  included). GlyphMix labels pasted synthetic text with this region.
- class attributes ``text_target`` (the target map whose pixels > 0.5 are text) and ``weight_targets``
  (the target maps that weigh pixels in the loss; 0 = ignored).
- ``post_process(outputs, scale_factors=None)``: per image ``{"polygons": [K x 2 float arrays (x, y) in
  original pixels], "scores": [float]}``; ``scale_factors`` = ``(sx, sy)`` input size / original size.
  Every output class also has ``post_process(scale_factors, **params)``, which the image processor uses.

Everything model-specific lives in one folder per detector (configuration, modeling, targets,
post-processing); this module holds what they share.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .backbones import ModulatedDeformConv2d, set_norm_eval


class TextDetectionPreTrainedModel(PreTrainedModel):
    """Shared ``PreTrainedModel`` behaviour of the detectors: initialisation, BN freezing, remote code."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)
    base_model_prefix = "detector"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming (fan_out, ReLU) convolutions, unit BN with zero bias, zero DCN offset branches."""
        if getattr(module, "_zero_init", False):
            init.zeros_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, ModulatedDeformConv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)

    def train(self, mode: bool = True) -> "TextDetectionPreTrainedModel":
        """Like ``nn.Module.train``; the backbone's batch norms stay in eval mode when ``config.norm_eval``."""
        super().train(mode)
        if mode and getattr(self.config, "norm_eval", False):
            set_norm_eval(self.backbone)
        return self

    # -- the protocol; each detector implements these ------------------------------------------------
    text_target: str = ""
    weight_targets: tuple[str, ...] = ()

    def pseudo_targets(self, outputs: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def target_region(self, targets: dict[str, Any]) -> Any:
        raise NotImplementedError

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool], size: tuple[int, int]
                      ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def post_process(self, outputs: Any, scale_factors: Sequence[tuple[float, float]] | None = None
                     ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def save_pretrained(self, save_directory, *args, **kwargs):  # noqa: D401
        """``PreTrainedModel.save_pretrained``; after ``register_for_auto_class`` also writes the model's
        code next to the weights (flat, see ``freereal_hf.remote_code``) so that
        ``AutoModel.from_pretrained(repo, trust_remote_code=True)`` works without freereal_hf installed."""
        try:  # absolute on purpose: a flat remote-code copy has no package, and transformers skips try blocks
            from freereal_hf.remote_code import export_remote_code
        except ImportError:  # running as flat remote code: transformers' own copier handles it
            return super().save_pretrained(save_directory, *args, **kwargs)
        auto_class, type(self)._auto_class = type(self)._auto_class, None  # its copier cannot follow `..` imports
        try:
            result = super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            type(self)._auto_class = auto_class
        if auto_class is not None:
            export_remote_code(self, save_directory)
        return result
