"""What the MMOCR converter needs to know about DBNet: the MMOCR 1.x config text of a ``DBNetConfig``.

Our state-dict keys are MMOCR's already (see ``modeling_dbnet``), so no key mapping is needed.
"""

from __future__ import annotations

from ..mmocr_config import config_text, data_preprocessor, resnet_backbone, resnet_channels
from .configuration_dbnet import DBNetConfig


def mmocr_config_text(config: DBNetConfig) -> str:
    """MMOCR 1.0.1 config (Python text) building the same DBNet, with its test pipeline."""
    model = dict(
        type="DBNet",
        backbone=resnet_backbone(config),
        neck=dict(type="FPNC", in_channels=resnet_channels(config), lateral_channels=config.neck_lateral_channels,
                  out_channels=config.neck_out_channels),
        det_head=dict(
            type="DBHead", in_channels=config.neck_out_channels * 4,
            module_loss=dict(type="DBModuleLoss", weight_prob=config.loss_prob_weight,
                             weight_thr=config.loss_thr_weight, shrink_ratio=config.shrink_ratio,
                             thr_min=config.thr_min, thr_max=config.thr_max, min_sidelength=config.min_sidelength),
            postprocessor=dict(type="DBPostprocessor", **config.post_process_params())),
        data_preprocessor=data_preprocessor(),
    )
    return config_text(model, config)
