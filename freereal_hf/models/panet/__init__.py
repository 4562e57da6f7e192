"""PANet: configuration, model, targets, post-processing and MMOCR conversion (MMOCR 1.0.1 layout)."""

from .configuration_panet import PANET_PRESETS, PANetConfig
from .modeling_panet import PANetForTextDetection, PANetOutput
from .postprocess_panet import panet_post_process
from .targets_panet import panet_targets

__all__ = ["PANET_PRESETS", "PANetConfig", "PANetForTextDetection", "PANetOutput", "panet_post_process",
           "panet_targets"]
