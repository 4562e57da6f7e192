"""FCENet: configuration, model, targets, post-processing and MMOCR conversion (MMOCR 1.0.1 layout)."""

from .configuration_fcenet import FCENET_PRESETS, FCENetConfig
from .modeling_fcenet import FCENetForTextDetection, FCENetOutput
from .postprocess_fcenet import fcenet_post_process
from .targets_fcenet import fcenet_targets

__all__ = ["FCENET_PRESETS", "FCENetConfig", "FCENetForTextDetection", "FCENetOutput", "fcenet_post_process",
           "fcenet_targets"]
