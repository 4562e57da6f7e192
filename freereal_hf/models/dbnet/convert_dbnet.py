"""What the MMOCR converter needs to know about DBNet: the MMOCR 1.x config text of a ``DBNetConfig``.

Our state-dict keys are MMOCR's already (see ``modeling_dbnet``), so no key mapping is needed.
"""

from __future__ import annotations

from .configuration_dbnet import DBNetConfig

_MEAN, _STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def mmocr_config_text(config: DBNetConfig) -> str:
    """MMOCR 1.0.1 config (Python text) building the same DBNet, with its test pipeline, so that MMOCR's
    ``TextDetInferencer(weights=...)`` runs a converted checkpoint with no other file."""
    bb = config.backbone_config
    depth = int("".join(ch for ch in bb.backbone if ch.isdigit()) or 18)
    backbone = dict(type="mmdet.ResNet", depth=depth, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                    norm_cfg=dict(type="BN", requires_grad=True), norm_eval=bool(config.norm_eval),
                    style=config.backbone_style)
    if any(config.dcn_stages):
        backbone.update(dcn=dict(type="DCNv2", deform_groups=config.deform_groups, fallback_on_stride=False),
                        stage_with_dcn=tuple(bool(v) for v in config.dcn_stages))
    in_channels = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    model = dict(
        type="DBNet",
        backbone=backbone,
        neck=dict(type="FPNC", in_channels=in_channels, lateral_channels=config.neck_lateral_channels,
                  out_channels=config.neck_out_channels),
        det_head=dict(
            type="DBHead", in_channels=config.neck_out_channels * 4,
            module_loss=dict(type="DBModuleLoss", weight_prob=config.loss_prob_weight,
                             weight_thr=config.loss_thr_weight, shrink_ratio=config.shrink_ratio,
                             thr_min=config.thr_min, thr_max=config.thr_max, min_sidelength=config.min_sidelength),
            postprocessor=dict(type="DBPostprocessor", text_repr_type=config.text_repr_type,
                               mask_thr=config.mask_thr, min_text_score=config.min_text_score,
                               min_text_width=config.min_text_width, unclip_ratio=config.unclip_ratio,
                               epsilon_ratio=config.epsilon_ratio, max_candidates=config.max_candidates)),
        data_preprocessor=dict(type="TextDetDataPreprocessor", mean=_MEAN, std=_STD, bgr_to_rgb=True,
                               pad_size_divisor=32),
    )
    test_pipeline = [
        dict(type="LoadImageFromFile", color_type="color_ignore_orientation"),
        dict(type="Resize", scale=tuple(config.test_scale), keep_ratio=True),
        dict(type="LoadOCRAnnotations", with_polygon=True, with_bbox=True, with_label=True),
        dict(type="PackTextDetInputs", meta_keys=("img_path", "ori_shape", "img_shape", "scale_factor")),
    ]
    lines = [
        "default_scope = 'mmocr'",
        f"model = {model!r}",
        f"test_pipeline = {test_pipeline!r}",
        "test_dataloader = dict(batch_size=1, num_workers=0, dataset=dict(type='OCRDataset', pipeline=test_pipeline))",
        "visualizer = dict(type='TextDetLocalVisualizer', name='visualizer', vis_backends=[dict(type='LocalVisBackend')])",
    ]
    return "\n".join(lines) + "\n"
