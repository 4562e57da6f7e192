"""What the MMOCR converter needs to know about FCENet: the MMOCR 1.x config text of an ``FCENetConfig``.

Our state-dict keys are MMOCR's already (see ``modeling_fcenet``), so no key mapping is needed.
"""

from __future__ import annotations

from ..mmocr_config import config_text, data_preprocessor, resnet_backbone, resnet_channels
from .configuration_fcenet import FCENetConfig


def mmocr_config_text(config: FCENetConfig) -> str:
    """MMOCR 1.0.1 config (Python text) building the same FCENet, with its test pipeline."""
    out_indices = tuple(i - 1 for i in config.backbone_config.out_indices)  # timm's C2 = 1, mmdet's C2 = 0
    model = dict(
        type="FCENet",
        backbone=resnet_backbone(config, out_indices=out_indices),
        neck=dict(type="mmdet.FPN", in_channels=[resnet_channels(config)[i] for i in out_indices],
                  out_channels=config.neck_channels, add_extra_convs="on_output", num_outs=len(out_indices),
                  relu_before_extra_convs=True, act_cfg=None),
        det_head=dict(
            type="FCEHead", in_channels=config.neck_channels, fourier_degree=config.fourier_degree,
            module_loss=dict(type="FCEModuleLoss", num_sample=config.num_sample, negative_ratio=config.negative_ratio,
                             resample_step=config.resample_step,
                             center_region_shrink_ratio=config.center_region_shrink_ratio,
                             level_size_divisors=tuple(config.level_strides),
                             level_proportion_range=tuple(tuple(r) for r in config.level_proportion_range)),
            postprocessor=dict(type="FCEPostprocessor", scales=tuple(config.level_strides),
                               **config.post_process_params())),
        data_preprocessor=data_preprocessor(),
    )
    return config_text(model, config)
