"""PSENet: configuration, model, targets, post-processing and MMOCR conversion (MMOCR 1.0.1 layout)."""

from .configuration_psenet import PSENET_PRESETS, PSENetConfig
from .modeling_psenet import PSENetForTextDetection, PSENetOutput
from .postprocess_psenet import psenet_post_process
from .targets_psenet import psenet_targets

__all__ = ["PSENET_PRESETS", "PSENetConfig", "PSENetForTextDetection", "PSENetOutput", "psenet_post_process",
           "psenet_targets"]
