"""The base class every detector derives from, and the detector protocol.

The protocol is what GlyphMix, the teacher, both training loops, the image processor and the CLIs use of a
detector, and nothing else (``docs/design.md``, "The detector protocol"):

- ``target_spec`` (class attribute, a :class:`TargetSpec`): the target maps the detector trains on, each a
  :class:`TargetMap` with a name, a :class:`MapKind` and a stride relative to the input, plus, per level
  (stride) the detector predicts at, the map whose pixels ``> 0.5`` are text and the weight map that holds the
  teacher's confidence. GlyphMix mixes maps by kind and stride and never by name.
- ``forward(pixel_values, labels=None)``: ``pixel_values`` is ``N x 3 x H x W``, normalised like MMOCR's
  preprocessor (RGB, ImageNet mean/std in 0..255 units), ``H`` and ``W`` multiples of 32. Returns a
  ``ModelOutput`` with the head's raw maps and, when ``labels`` (the ``build_targets`` maps stacked over the
  batch) is given, ``loss`` and its named parts ``loss_*``. ``forward(pixel_values, detect_only=True)`` may leave
  out what post-processing does not read (DBNet's threshold branch); detection and evaluation ask for it, the
  teacher and the losses do not.
- ``build_targets(polygons, ignore, size)``: one image; polygons ``K x 2`` arrays of ``(x, y)`` pixels at the
  training size ``size = (H, W)`` -> dict of numpy maps, each ``[C x] H/s x W/s`` as declared.
- ``pseudo_targets(outputs, confidence=None)``: teacher outputs -> the same dict as stacked ``build_targets``
  maps (``N x [C x] H/s x W/s`` tensors on the outputs' device), with weight 0 in every weight map where the
  teacher is less confident than ``confidence`` (default ``config.pseudo_confidence``). How confidence is
  judged is the detector's (``target_spec.confidence`` says it in words).
- ``outputs_from_targets(targets)``: the output a perfect model would give for stacked targets (tests of the
  protocol, previews).
- ``target_region(targets)``: ``... x H x W`` bool at the input resolution, the pixels the targets of a set of
  polygons speak about (text, the margin the targets need, ignored regions). GlyphMix labels pasted
  synthetic text with it.
- ``post_process(outputs, scale_factors=None)``: per image ``{"polygons": [K x 2 float32 (x, y) in original
  pixels], "scores": [float]}``, ``scale_factors`` = per image ``(sx, sy)`` input size / original size.
  Its parameters are the config's (``config.post_process_params()``); every output class also has
  ``post_process(scale_factors, **params)``, which the model, the image processor and the CLIs all reach
  through the model's config.

Everything model-specific lives in one folder per detector (configuration, modeling, targets,
post-processing, conversion); this module holds what they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .backbones import ModulatedDeformConv2d, set_norm_eval

MAX_INSTANCES = int(np.iinfo(np.int16).max)
"""Text instances one image's ``INSTANCE`` maps can number (their ids are int16: half of int32's bytes through the
DataLoader's workers, and far more instances than fit a training crop)."""


class MapKind(str, Enum):
    """What a target map holds, which decides how GlyphMix mixes it and how tests check it.

    - ``TEXT``: binary text region (1 text, 0 background).
    - ``KERNEL``: binary shrunk text regions (PSENet/PANet kernels, FCENet centre regions).
    - ``WEIGHT``: per-pixel loss weight in [0, 1]; 0 = ignored.
    - ``REGRESSION``: real values regressed where weighted (DBNet's threshold, FCENet's Fourier coefficients);
      never blended: a pixel takes the whole value of the side that owns it.
    - ``INSTANCE``: integer instance ids, 0 = background; never blended, and ids pasted from another image are
      offset so that instances stay distinct.
    """

    TEXT = "text"
    KERNEL = "kernel"
    WEIGHT = "weight"
    REGRESSION = "regression"
    INSTANCE = "instance"


@dataclass(frozen=True)
class TargetMap:
    """One declared target map: ``name`` (its key in the targets dict), ``kind``, ``stride`` (input pixels per
    map pixel) and ``channels`` (0: one ``H/s x W/s`` map per image; C: ``C x H/s x W/s``)."""

    name: str
    kind: MapKind
    stride: int = 1
    channels: int = 0

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of ``build_targets`` maps of this kind: int16 for instance ids (at most
        :data:`MAX_INSTANCES` per image), uint8 for the ``TEXT``, ``KERNEL`` and ``WEIGHT`` maps, which labels
        make 0/1 (a quarter of float32's memory and of what DataLoader workers pass on; losses cast them to the
        logits' dtype), float32 for ``REGRESSION``. ``pseudo_targets`` (torch, on the device) may give other dtypes
        and fractional weights."""
        if self.kind is MapKind.INSTANCE:
            return np.dtype(np.int16)
        return np.dtype(np.float32) if self.kind is MapKind.REGRESSION else np.dtype(np.uint8)

    def shape(self, size: tuple[int, int]) -> tuple[int, ...]:
        """Shape of this map for one image of input size ``(H, W)``."""
        h, w = -(-size[0] // self.stride), -(-size[1] // self.stride)
        return (self.channels, h, w) if self.channels else (h, w)


@dataclass(frozen=True)
class TargetSpec:
    """A detector's declaration of its targets.

    A detector predicts at one or more levels (strides). Each level has a text map and a confidence map at its
    stride; ``text`` and ``confidence_map`` name them, level by level (a single name is a one-level detector).

    Args:
        maps: every target map, in the order ``build_targets`` returns them.
        text: per level, the name of the map whose pixels ``> 0.5`` are text (text-balanced boxes, previews).
        confidence_map: per level, the weight map in which ``pseudo_targets`` sets the pixels the teacher is unsure
            of to 0 (the trainer logs the zero fraction over all levels as the ignored fraction; previews hatch its
            zeros). Paired with ``text`` by position, at the same stride.
        confidence: how the teacher's confidence is judged, in words (docs, model cards).
    """

    maps: tuple[TargetMap, ...]
    text: tuple[str, ...] | str
    confidence_map: tuple[str, ...] | str
    confidence: str

    def __post_init__(self) -> None:
        for field in ("text", "confidence_map"):
            if isinstance(getattr(self, field), str):
                object.__setattr__(self, field, (getattr(self, field),))
        names = [m.name for m in self.maps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate target map names in {names}")
        if len(self.text) != len(self.confidence_map) or not self.text:
            raise ValueError(f"need one text map and one confidence map per level, got {self.text} and "
                             f"{self.confidence_map}")
        weights = [m.name for m in self.maps if m.kind is MapKind.WEIGHT]
        for text, confidence in zip(self.text, self.confidence_map):
            if text not in names:
                raise ValueError(f"text map {text!r} is not one of the declared maps {names}")
            if confidence not in weights:
                raise ValueError(f"confidence map {confidence!r} is not a declared weight map")
            if self[text].stride != self[confidence].stride:
                raise ValueError(f"text map {text!r} and confidence map {confidence!r} of one level differ in stride")

    def __getitem__(self, name: str) -> TargetMap:
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.maps)

    def of_kind(self, *kinds: MapKind) -> tuple[TargetMap, ...]:
        """The declared maps of the given kinds, in declaration order."""
        return tuple(m for m in self.maps if m.kind in kinds)

    @property
    def levels(self) -> tuple[tuple[TargetMap, TargetMap], ...]:
        """Per level, its ``(text map, confidence map)``, in declaration order."""
        return tuple((self[t], self[c]) for t, c in zip(self.text, self.confidence_map))

    def confidence_at(self, stride: int) -> TargetMap | None:
        """The confidence map of the level at ``stride`` (``None`` when no level has that stride)."""
        return next((c for t, c in self.levels if c.stride == stride), None)

    @property
    def strides(self) -> tuple[int, ...]:
        """Every stride the maps use, ascending."""
        return tuple(sorted({m.stride for m in self.maps}))


class DetectorConfigMixin:
    """What every detector config adds to ``PreTrainedConfig``: presets and its post-processing parameters.

    Subclasses set ``presets`` (name -> fields that differ from the defaults) and ``post_process_fields`` (the
    config fields the output's ``post_process`` takes as keyword arguments).
    """

    presets: ClassVar[dict[str, dict]] = {}
    post_process_fields: ClassVar[tuple[str, ...]] = ()
    score_field: ClassVar[str] = ""  # the post-processing field that is the minimum score of a detection

    def __post_init__(self, **kwargs: Any) -> None:
        if getattr(self, "id2label", None) is None:  # one class: what transformers' object-detection pipeline names
            self.id2label = {0: "text"}
            self.label2id = {"text": 0}
        super().__post_init__(**kwargs)

    def check_choices(self) -> None:
        """The checks every detector config shares: ``backbone_style`` and ``text_repr_type`` take fixed values."""
        for name, choices in (("backbone_style", ("pytorch", "caffe")), ("text_repr_type", ("quad", "poly"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")

    def post_process_params(self) -> dict[str, Any]:
        """The keyword arguments of the detector's post-processing, read from this config."""
        return {name: getattr(self, name) for name in self.post_process_fields}

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Any:
        """The config of a named preset (MMOCR's config of that name), with ``overrides`` applied."""
        if name not in cls.presets:
            raise ValueError(f"unknown {cls.__name__} preset {name!r}; choose one of {sorted(cls.presets)}")
        fields = {**cls.presets[name], **overrides}
        return cls(preset=name, **fields)


class TextDetectionPreTrainedModel(PreTrainedModel):
    """Shared ``PreTrainedModel`` behaviour of the detectors: initialisation, BN freezing, remote code."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)
    base_model_prefix = "detector"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming (fan_out, ReLU) convolutions, unit BN with zero bias, zero DCN offset branches; a module with an
        ``_init_std`` attribute (output layers, e.g. FCENet's head) gets N(0, std) weights and zero biases, one marked
        ``_init_xavier`` (mmdet's FPN) Xavier-uniform weights and zero biases."""
        if getattr(module, "_zero_init", False):
            init.zeros_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif getattr(module, "_init_std", None) is not None:
            init.normal_(module.weight, mean=0.0, std=module._init_std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif getattr(module, "_init_xavier", False):  # mmdet's FPN: Xavier (uniform) convolutions, zero biases
            init.xavier_uniform_(module.weight)
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
    target_spec: ClassVar[TargetSpec]
    output_class: ClassVar[type]  # the ModelOutput forward returns (rebuilt from plain fields by pipelines, ONNX)

    @property
    def weight_targets(self) -> tuple[str, ...]:
        """Names of the weight maps (``MapKind.WEIGHT``), in declaration order."""
        return tuple(m.name for m in self.target_spec.of_kind(MapKind.WEIGHT))

    def pseudo_targets(self, outputs: Any, confidence: float | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def outputs_from_targets(self, targets: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def loss(self, outputs: Any, labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def target_region(self, targets: dict[str, Any]) -> Any:
        raise NotImplementedError

    def build_targets(self, polygons: Sequence[np.ndarray], ignore: Sequence[bool], size: tuple[int, int]
                      ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def post_process(self, outputs: Any, scale_factors: Sequence[tuple[float, float]] | None = None
                     ) -> list[dict[str, Any]]:
        """Polygons and scores per image in original pixels, with this config's post-processing parameters
        (``config.post_process_params()``); ``scale_factors`` per image ``(sx, sy)`` = input / original size,
        ``None`` keeps input pixels."""
        return outputs.post_process(scale_factors, **self.config.post_process_params())

    def _confidence(self, confidence: float | None) -> float:
        return float(self.config.pseudo_confidence if confidence is None else confidence)

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


def binary_logits(maps: torch.Tensor, stride: int, magnitude: float = 10.0) -> torch.Tensor:
    """Logits of +-``magnitude`` for binary ``... x H x W`` maps seen at ``stride``: a pixel of the coarse map is
    on when more than half of its ``stride x stride`` block is (what a perfect model at that stride predicts)."""
    maps = maps.float()
    if stride > 1:
        lead = maps.shape[:-2]
        pooled = torch.nn.functional.avg_pool2d(maps.reshape(-1, 1, *maps.shape[-2:]), stride, ceil_mode=True)
        maps = pooled.reshape(*lead, *pooled.shape[-2:])
    return torch.where(maps > 0.5, magnitude, -magnitude)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of ``N x C x h x w`` head outputs to the label size, as MMOCR's PSE/PAN losses do."""
    return torch.nn.functional.interpolate(logits, size=size, mode="bilinear")
