"""What the MMOCR converter needs to know about PANet: the MMOCR 1.x config text of a ``PANetConfig``.

Our state-dict keys are MMOCR's already (see ``modeling_panet``), so no key mapping is needed.
"""

from __future__ import annotations

from ..mmocr_config import config_text, data_preprocessor, resnet_backbone, resnet_channels
from .configuration_panet import PANetConfig


def mmocr_config_text(config: PANetConfig) -> str:
    """MMOCR 1.0.1 config (Python text) building the same PANet, with its test pipeline."""
    model = dict(
        type="PANet",
        backbone=resnet_backbone(config, stem_channels=128, deep_stem=True),
        neck=dict(type="FPEM_FFM", in_channels=resnet_channels(config), conv_out=config.neck_channels,
                  fpem_repeat=config.fpem_repeat),
        det_head=dict(
            type="PANHead", in_channels=[config.neck_channels] * 4, hidden_dim=config.head_hidden,
            out_channel=2 + config.embedding_dim,
            module_loss=dict(type="PANModuleLoss", weight_text=config.loss_text_weight,
                             weight_kernel=config.loss_kernel_weight, weight_embedding=config.loss_embedding_weight,
                             ohem_ratio=config.negative_ratio, shrink_ratio=(1.0, config.kernel_ratio),
                             max_shrink_dist=config.max_shrink_dist),
            postprocessor=dict(type="PANPostprocessor", **config.post_process_params())),
        data_preprocessor=data_preprocessor(),
    )
    return config_text(model, config)
