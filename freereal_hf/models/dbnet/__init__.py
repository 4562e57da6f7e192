"""DBNet: configuration, model, targets and post-processing (MMOCR 1.0.1 layout)."""

from .configuration_dbnet import DBNET_PRESETS, DBNetConfig
from .modeling_dbnet import DBNetForTextDetection, DBNetOutput
from .postprocess_dbnet import dbnet_post_process
from .targets_dbnet import dbnet_targets

__all__ = ["DBNET_PRESETS", "DBNetConfig", "DBNetForTextDetection", "DBNetOutput", "dbnet_post_process", "dbnet_targets"]
