"""DBNet configuration: MMOCR 1.0.1's ``DBNet`` (ResNet + FPNC + DBHead) as a transformers config."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..base import DetectorConfigMixin

# The three MMOCR variants. Values are the fields that differ from the defaults below.
DBNET_PRESETS: dict[str, dict] = {
    "dbnet_r18": dict(backbone_config={"model_type": "timm_backbone", "backbone": "resnet18", "out_indices": [1, 2, 3, 4]},
                      backbone_style="caffe", norm_eval=False, dcn_stages=[False] * 4, test_scale=[1333, 736]),
    "dbnet_r50": dict(backbone_config={"model_type": "timm_backbone", "backbone": "resnet50", "out_indices": [1, 2, 3, 4]},
                      backbone_style="pytorch", norm_eval=True, dcn_stages=[False] * 4, test_scale=[4068, 1024]),
    "dbnet_r50_dcnv2": dict(backbone_config={"model_type": "timm_backbone", "backbone": "resnet50",
                                             "out_indices": [1, 2, 3, 4]},
                            backbone_style="pytorch", norm_eval=False, dcn_stages=[False, True, True, True],
                            test_scale=[4068, 1024]),
}


@strict
class DBNetConfig(DetectorConfigMixin, PreTrainedConfig):
    r"""Configuration of [`DBNetForTextDetection`]; defaults give MMOCR's ``dbnet_resnet18_fpnc`` (``dbnet_r18``).

    Use ``DBNetConfig.from_preset("dbnet_r18" | "dbnet_r50" | "dbnet_r50_dcnv2", **overrides)`` for the
    three MMOCR variants.

    Args:
        preset: name of the MMOCR variant this config follows (used by the MMOCR converter).
        backbone_config: a nested ``TimmBackboneConfig`` (``backbone`` is the timm model name, ``out_indices``
            the ResNet stages whose features feed the neck, ``[1, 2, 3, 4]`` = C2..C5).
        use_pretrained_backbone: start the backbone from timm's ImageNet weights (needs the Hub; offline a
            warning and random initialisation).
        backbone_style: ``"pytorch"`` or ``"caffe"`` (mmdet ResNet style: where bottleneck blocks stride).
        dcn_stages: per ResNet stage, whether its 3x3 convs are DCNv2 (``[False, True, True, True]`` for
            MMOCR's ``dbnet_resnet50-dcnv2``); ``deform_groups`` their deformable groups.
        norm_eval: keep the backbone's batch-norm statistics frozen while training.
        neck_lateral_channels / neck_out_channels: FPNC widths (the head sees 4 x ``neck_out_channels``).
        k: differentiable-binarisation steepness, ``binary = 1 / (1 + exp(-k (prob - thr)))``.
        loss_prob_weight / loss_thr_weight / loss_db_weight: MMOCR's 5 / 10 / 1.
        negative_ratio: OHEM negatives per positive in the probability loss.
        shrink_ratio, thr_min, thr_max, min_sidelength: target generation (MMOCR's DBModuleLoss).
        mask_thr, min_text_score, min_text_width, unclip_ratio, epsilon_ratio, max_candidates,
        text_repr_type: post-processing (MMOCR's DBPostprocessor; ``"quad"`` or ``"poly"``).
        pseudo_confidence: pseudo-targets from a teacher: pixels whose confidence ``max(p, 1 - p)`` is below
            this get weight 0 (FreeReal's adaptive loss masking).
        pseudo_band: pseudo threshold-map supervision is kept within this many pixels of pseudo text (where
            supervised targets train the threshold branch too).
        test_scale: keep-ratio test resize ``[long, short]`` of the preset (MMOCR's test pipeline).
    """

    model_type = "freereal_dbnet"
    presets = DBNET_PRESETS
    score_field = "min_text_score"
    post_process_fields = ("mask_thr", "min_text_score", "min_text_width", "unclip_ratio", "epsilon_ratio",
                           "max_candidates", "text_repr_type")
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(
            config_class=AutoConfig, model_type="timm_backbone",
            init_kwargs={"backbone": "resnet18", "out_indices": [1, 2, 3, 4]},
        ),
    }

    preset: str = "dbnet_r18"
    backbone_config: dict | PreTrainedConfig | None = None
    use_pretrained_backbone: bool = False
    backbone_style: str = "caffe"
    dcn_stages: list[bool] | tuple[bool, ...] = (False, False, False, False)
    deform_groups: int = 1
    norm_eval: bool = False
    neck_lateral_channels: int = 256
    neck_out_channels: int = 64
    k: float = 50.0
    loss_prob_weight: float = 5.0
    loss_thr_weight: float = 10.0
    loss_db_weight: float = 1.0
    negative_ratio: float = 3.0
    shrink_ratio: float = 0.4
    thr_min: float = 0.3
    thr_max: float = 0.7
    min_sidelength: float = 8.0
    mask_thr: float = 0.3
    min_text_score: float = 0.3
    min_text_width: float = 5.0
    unclip_ratio: float = 1.5
    epsilon_ratio: float = 0.01
    max_candidates: int = 3000
    text_repr_type: str = "quad"
    pseudo_confidence: float = 0.7
    pseudo_band: int = 8
    test_scale: list[int] | tuple[int, ...] = (1333, 736)

    def __post_init__(self, **kwargs):
        self.dcn_stages = [bool(v) for v in self.dcn_stages]
        self.test_scale = [int(v) for v in self.test_scale]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Checks the fields that have a fixed set of values."""
        self.check_choices()
        if len(self.dcn_stages) != 4:
            raise ValueError(f"dcn_stages needs one flag per ResNet stage (4), got {self.dcn_stages}")


__all__ = ["DBNetConfig", "DBNET_PRESETS"]
