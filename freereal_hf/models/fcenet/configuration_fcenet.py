"""FCENet configuration: MMOCR 1.0.1's ``FCENet`` (ResNet-50 C3..C5 + mmdet FPN + FCEHead) as a transformers
config."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..base import DetectorConfigMixin

_R50 = {"model_type": "timm_backbone", "backbone": "resnet50", "out_indices": [2, 3, 4]}

# MMOCR's three FCENet-R50 configs. Values are the fields that differ from the defaults below. The Total-Text
# config keeps the base model's post-processing (quads, alpha 1.2, beta 1.0), as MMOCR's file does.
FCENET_PRESETS: dict[str, dict] = {
    "fcenet_r50": dict(backbone_config=_R50, test_scale=[2260, 2260]),
    "fcenet_r50_dcnv2": dict(backbone_config=_R50, norm_eval=True, dcn_stages=[False, True, True, True],
                             deform_groups=2, level_proportion_range=[[0, 0.25], [0.2, 0.65], [0.55, 1.0]],
                             text_repr_type="poly", alpha=1.0, beta=2.0, test_scale=[1080, 736]),
    "fcenet_r50_totaltext": dict(backbone_config=_R50, test_scale=[1280, 960]),
}


@strict
class FCENetConfig(DetectorConfigMixin, PreTrainedConfig):
    r"""Configuration of [`FCENetForTextDetection`]; defaults give MMOCR's ``fcenet_resnet50_fpn`` for ICDAR2015
    (``fcenet_r50``). ``FCENetConfig.from_preset("fcenet_r50" | "fcenet_r50_dcnv2" | "fcenet_r50_totaltext")``.

    Args:
        preset: the MMOCR config this one follows (used by the MMOCR converter).
        backbone_config: a nested ``TimmBackboneConfig``; ``out_indices`` ``[2, 3, 4]`` = C3..C5 (MMOCR's
            ``out_indices=(1, 2, 3)``).
        use_pretrained_backbone: start from timm's ImageNet weights (needs the Hub; offline a warning and random
            initialisation).
        backbone_style: ``"pytorch"`` or ``"caffe"``; dcn_stages / deform_groups: DCNv2 per stage (the CTW1500
            config: stages 2-4, 2 groups); norm_eval: freeze the backbone's BN statistics while training.
        neck_channels: FPN width (the head's input).
        fourier_degree: ``k``; the head regresses ``2 (2k + 1)`` maps (real parts, then imaginary parts).
        level_strides: the strides of P3, P4, P5; level_proportion_range: per level, the open range of
            ``max(bbox h, bbox w) / image height`` of the polygons it learns (MMOCR's ranges overlap).
        resample_step, center_region_shrink_ratio: text centre region targets (TextSnake's).
        num_sample: points of the polygons compared by the regression loss; negative_ratio: OHEM of the text
            region loss.
        center_loss: ``"bce"`` (BCE of the logit difference, the paper's cross-entropy; the default) or ``"mmocr"``
            (MMOCR's: BCE-with-logits applied to the softmax probability, whose gradient dies once the centre
            probability saturates; trained from scratch it never learned the centre region here, see
            ``docs/method.md``).
        text_repr_type, alpha, beta, score_thr, nms_thr, num_reconstr_points: post-processing (MMOCR's
            ``FCEPostprocessor``: score = ``p_text^alpha * p_center^beta``).
        pseudo_confidence: teacher pixels whose text-region confidence ``max(p, 1 - p)`` is below this get
            weight 0, at every level.
        test_scale: keep-ratio test resize ``[long, short]`` (MMOCR's test pipeline of the preset).
    """

    model_type = "freereal_fcenet"
    presets = FCENET_PRESETS
    score_field = "score_thr"
    post_process_fields = ("text_repr_type", "alpha", "beta", "score_thr", "nms_thr", "num_reconstr_points")
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="timm_backbone", init_kwargs=_R50),
    }

    preset: str = "fcenet_r50"
    backbone_config: dict | PreTrainedConfig | None = None
    use_pretrained_backbone: bool = False
    backbone_style: str = "pytorch"
    dcn_stages: list[bool] | tuple[bool, ...] = (False, False, False, False)
    deform_groups: int = 1
    norm_eval: bool = False
    neck_channels: int = 256
    fourier_degree: int = 5
    level_strides: list[int] | tuple[int, ...] = (8, 16, 32)
    level_proportion_range: list | tuple = ((0, 0.4), (0.3, 0.7), (0.6, 1.0))
    resample_step: float = 4.0
    center_region_shrink_ratio: float = 0.3
    num_sample: int = 50
    negative_ratio: float = 3.0
    center_loss: str = "bce"
    text_repr_type: str = "quad"
    alpha: float = 1.2
    beta: float = 1.0
    score_thr: float = 0.3
    nms_thr: float = 0.1
    num_reconstr_points: int = 50
    pseudo_confidence: float = 0.7
    test_scale: list[int] | tuple[int, ...] = (2260, 2260)

    def __post_init__(self, **kwargs):
        self.dcn_stages = [bool(v) for v in self.dcn_stages]
        self.level_strides = [int(v) for v in self.level_strides]
        self.level_proportion_range = [[float(lo), float(hi)] for lo, hi in self.level_proportion_range]
        self.test_scale = [int(v) for v in self.test_scale]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Checks the fields that have a fixed set of values or must agree with each other."""
        self.check_choices()
        if self.center_loss not in ("mmocr", "bce"):
            raise ValueError(f"center_loss must be 'mmocr' or 'bce', got {self.center_loss!r}")
        if len(self.dcn_stages) != 4:
            raise ValueError(f"dcn_stages needs one flag per ResNet stage (4), got {self.dcn_stages}")
        if self.level_strides != [8, 16, 32]:
            raise ValueError(f"FCENet predicts at strides [8, 16, 32] (C3..C5), got {self.level_strides}")
        if len(self.level_proportion_range) != 3 or any(not 0 <= lo < hi for lo, hi in self.level_proportion_range):
            raise ValueError(f"level_proportion_range needs three ranges (lo, hi) with 0 <= lo < hi, got "
                             f"{self.level_proportion_range}")
        if self.fourier_degree < 1 or self.num_reconstr_points < 2 * self.fourier_degree + 1:
            raise ValueError(f"need fourier_degree >= 1 and num_reconstr_points >= 2 k + 1, got "
                             f"{self.fourier_degree}, {self.num_reconstr_points}")


__all__ = ["FCENetConfig", "FCENET_PRESETS"]
