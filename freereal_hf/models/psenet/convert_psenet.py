"""What the MMOCR converter needs to know about PSENet: the MMOCR 1.x config text of a ``PSENetConfig``.

Our state-dict keys are MMOCR's already (see ``modeling_psenet``), so no key mapping is needed.
"""

from __future__ import annotations

from ..mmocr_config import config_text, data_preprocessor, resnet_backbone, resnet_channels
from .configuration_psenet import PSENetConfig


def mmocr_config_text(config: PSENetConfig) -> str:
    """MMOCR 1.0.1 config (Python text) building the same PSENet, with its test pipeline."""
    model = dict(
        type="PSENet",
        backbone=resnet_backbone(config),
        neck=dict(type="FPNF", in_channels=resnet_channels(config), out_channels=config.neck_channels,
                  fusion_type="concat"),
        det_head=dict(
            type="PSEHead", in_channels=[config.neck_channels], hidden_dim=config.head_hidden,
            out_channel=len(config.kernel_ratios),
            module_loss=dict(type="PSEModuleLoss", weight_text=config.loss_text_weight,
                             weight_kernel=config.loss_kernel_weight, ohem_ratio=config.negative_ratio,
                             shrink_ratio=tuple(config.kernel_ratios), max_shrink_dist=config.max_shrink_dist),
            postprocessor=dict(type="PSEPostprocessor", **config.post_process_params())),
        data_preprocessor=data_preprocessor(),
    )
    return config_text(model, config)
