"""PANet configuration: MMOCR 1.0.1's ``PANet`` (deep-stem ResNet-18 + FPEM-FFM + PANHead) as a transformers
config."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..base import DetectorConfigMixin

_R18 = {"model_type": "timm_backbone", "backbone": "resnet18", "out_indices": [1, 2, 3, 4]}

# MMOCR's two PANet-R18 configs. Values are the fields that differ from the defaults below.
PANET_PRESETS: dict[str, dict] = {
    "panet_r18": dict(backbone_config=_R18, kernel_ratio=0.5, text_repr_type="quad", test_short_side=736),
    "panet_r18_ctw1500": dict(backbone_config=_R18, kernel_ratio=0.7, text_repr_type="poly", test_short_side=640),
}


@strict
class PANetConfig(DetectorConfigMixin, PreTrainedConfig):
    r"""Configuration of [`PANetForTextDetection`]; defaults give MMOCR's ``panet_resnet18_fpem-ffm`` for
    ICDAR2015 (``panet_r18``). ``PANetConfig.from_preset("panet_r18" | "panet_r18_ctw1500", **overrides)``.

    Args:
        preset: the MMOCR config this one follows (used by the MMOCR converter).
        backbone_config: a nested ``TimmBackboneConfig``; the ResNet always gets mmdet's deep stem
            (``stem_channels=128``), so timm's ImageNet weights do not apply to it.
        use_pretrained_backbone: kept for symmetry with the other detectors; warns (no weights for a deep stem).
        backbone_style: ``"pytorch"`` or ``"caffe"`` (no effect on ResNet-18's basic blocks).
        norm_eval: keep the backbone's batch-norm statistics frozen while training (MMOCR: False).
        neck_channels: FPEM-FFM width; fpem_repeat: number of FPEMs; head_hidden: the head's 3x3 conv width.
        embedding_dim: channels of the instance embedding (the head predicts text, kernel, then these).
        kernel_ratio: shrink ratio of the kernels (0.5 IC15, 0.7 CTW1500); max_shrink_dist: cap in pixels.
        loss_text_weight / loss_kernel_weight / loss_embedding_weight: MMOCR's 1 / 0.5 / 0.25.
        negative_ratio: OHEM negatives per positive; delta_aggregation / delta_discrimination: embedding loss.
        text_repr_type, score_threshold, min_text_confidence, min_kernel_confidence, distance_threshold,
        min_text_area: post-processing (MMOCR's PANPostprocessor).
        pseudo_confidence: teacher pixels whose text confidence ``max(p, 1 - p)`` is below this get weight 0.
        test_short_side: MMOCR's test resize sets the short side to this (736 IC15, 640 CTW1500).
    """

    model_type = "freereal_panet"
    presets = PANET_PRESETS
    score_field = "score_threshold"
    post_process_fields = ("text_repr_type", "score_threshold", "min_text_confidence", "min_kernel_confidence",
                           "distance_threshold", "min_text_area")
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="timm_backbone", init_kwargs=_R18),
    }

    preset: str = "panet_r18"
    backbone_config: dict | PreTrainedConfig | None = None
    use_pretrained_backbone: bool = False
    backbone_style: str = "pytorch"
    norm_eval: bool = False
    neck_channels: int = 128
    fpem_repeat: int = 2
    head_hidden: int = 128
    embedding_dim: int = 4
    kernel_ratio: float = 0.5
    max_shrink_dist: int = 20
    loss_text_weight: float = 1.0
    loss_kernel_weight: float = 0.5
    loss_embedding_weight: float = 0.25
    negative_ratio: float = 3.0
    delta_aggregation: float = 0.5
    delta_discrimination: float = 1.5
    text_repr_type: str = "quad"
    score_threshold: float = 0.3
    min_text_confidence: float = 0.5
    min_kernel_confidence: float = 0.5
    distance_threshold: float = 3.0
    min_text_area: int = 16
    pseudo_confidence: float = 0.7
    test_short_side: int = 736

    def validate_architecture(self):
        """Checks the fields that have a fixed set of values."""
        self.check_choices()
        if not 0 < self.kernel_ratio < 1:
            raise ValueError(f"kernel_ratio must lie in (0, 1), got {self.kernel_ratio}")


__all__ = ["PANetConfig", "PANET_PRESETS"]
