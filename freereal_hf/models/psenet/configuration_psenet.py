"""PSENet configuration: MMOCR 1.0.1's ``PSENet`` (ResNet-50 + FPNF + PSEHead) as a transformers config."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..base import DetectorConfigMixin

_R50 = {"model_type": "timm_backbone", "backbone": "resnet50", "out_indices": [1, 2, 3, 4]}

# MMOCR's two PSENet configs. Values are the fields that differ from the defaults below.
PSENET_PRESETS: dict[str, dict] = {
    "psenet_r50": dict(backbone_config=_R50, backbone_style="pytorch", text_repr_type="quad",
                       test_scale=[2240, 2240]),
    "psenet_r50_ctw1500": dict(backbone_config=_R50, backbone_style="caffe", text_repr_type="poly",
                               test_scale=[1280, 1280]),
}


@strict
class PSENetConfig(DetectorConfigMixin, PreTrainedConfig):
    r"""Configuration of [`PSENetForTextDetection`]; defaults give MMOCR's ``psenet_resnet50_fpnf`` for ICDAR2015
    (``psenet_r50``). ``PSENetConfig.from_preset("psenet_r50" | "psenet_r50_ctw1500", **overrides)``.

    Args:
        preset: the MMOCR config this one follows (used by the MMOCR converter).
        backbone_config: a nested ``TimmBackboneConfig`` (timm ResNet, ``out_indices`` ``[1, 2, 3, 4]``).
        use_pretrained_backbone: start from timm's ImageNet weights (needs the Hub; offline a warning).
        backbone_style: ``"pytorch"`` (IC15 config) or ``"caffe"`` (CTW1500 config).
        norm_eval: keep the backbone's batch-norm statistics frozen while training (MMOCR: True).
        neck_channels: FPNF width; head_hidden: the head's 3x3 conv width.
        kernel_ratios: shrink ratios of the text map and the kernels (the head predicts one map per ratio).
        max_shrink_dist: the shrink distance is capped at this many pixels.
        loss_text_weight / loss_kernel_weight: MMOCR's 0.7 / 0.3; negative_ratio: OHEM negatives per positive.
        text_repr_type, min_kernel_confidence, score_threshold, min_kernel_area, min_text_area: post-processing
            (MMOCR's PSEPostprocessor).
        pseudo_confidence: teacher pixels whose text confidence ``max(p, 1 - p)`` is below this get weight 0.
        test_scale: keep-ratio test resize ``[long, short]`` (MMOCR's test pipeline).
    """

    model_type = "freereal_psenet"
    presets = PSENET_PRESETS
    score_field = "score_threshold"
    post_process_fields = ("text_repr_type", "min_kernel_confidence", "score_threshold", "min_kernel_area",
                           "min_text_area")
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="timm_backbone", init_kwargs=_R50),
    }

    preset: str = "psenet_r50"
    backbone_config: dict | PreTrainedConfig | None = None
    use_pretrained_backbone: bool = False
    backbone_style: str = "pytorch"
    norm_eval: bool = True
    neck_channels: int = 256
    head_hidden: int = 256
    kernel_ratios: list[float] | tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
    max_shrink_dist: int = 20
    loss_text_weight: float = 0.7
    loss_kernel_weight: float = 0.3
    negative_ratio: float = 3.0
    text_repr_type: str = "quad"
    min_kernel_confidence: float = 0.5
    score_threshold: float = 0.3
    min_kernel_area: int = 0
    min_text_area: int = 16
    pseudo_confidence: float = 0.7
    test_scale: list[int] | tuple[int, ...] = (2240, 2240)

    def __post_init__(self, **kwargs):
        self.kernel_ratios = [float(v) for v in self.kernel_ratios]
        self.test_scale = [int(v) for v in self.test_scale]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Checks the fields that have a fixed set of values."""
        self.check_choices()
        if len(self.kernel_ratios) < 2 or self.kernel_ratios[0] != 1.0:
            raise ValueError(f"kernel_ratios must start with 1.0 (the text map) and name >= 1 kernel, "
                             f"got {self.kernel_ratios}")


__all__ = ["PSENetConfig", "PSENET_PRESETS"]
