"""Pieces of MMOCR 1.0.1 config text that every detector's converter writes the same way: the mmdet ResNet,
the data preprocessor, the test pipeline and the file around them. ``meta['cfg']`` of an exported checkpoint
holds such text, so MMOCR's ``TextDetInferencer(weights=...)`` runs the file alone."""

from __future__ import annotations

from typing import Any

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def resnet_backbone(config: Any, **extra: Any) -> dict[str, Any]:
    """mmdet ``ResNet`` of a detector config with a timm ResNet ``backbone_config`` (depth from its name)."""
    name = config.backbone_config.backbone
    depth = int("".join(ch for ch in name if ch.isdigit()) or 18)
    backbone = dict(type="mmdet.ResNet", depth=depth, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                    norm_cfg=dict(type="BN", requires_grad=True), norm_eval=bool(config.norm_eval),
                    style=getattr(config, "backbone_style", "pytorch"))
    dcn = getattr(config, "dcn_stages", None)
    if dcn and any(dcn):
        backbone.update(dcn=dict(type="DCNv2", deform_groups=config.deform_groups, fallback_on_stride=False),
                        stage_with_dcn=tuple(bool(v) for v in dcn))
    backbone.update(extra)
    return backbone


def resnet_channels(config: Any) -> list[int]:
    """C2..C5 widths of the config's ResNet."""
    depth = int("".join(ch for ch in config.backbone_config.backbone if ch.isdigit()) or 18)
    return [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]


def data_preprocessor() -> dict[str, Any]:
    return dict(type="TextDetDataPreprocessor", mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)


def test_resize(config: Any) -> dict[str, Any]:
    """MMOCR's test-time resize of the config: keep-ratio into ``test_scale`` or the short side to
    ``test_short_side`` (PANet's ``ShortScaleAspectJitter`` with fixed ratios)."""
    short = getattr(config, "test_short_side", None)
    if short:
        return dict(type="ShortScaleAspectJitter", short_size=int(short), scale_divisor=1, ratio_range=(1.0, 1.0),
                    aspect_ratio_range=(1.0, 1.0))
    return dict(type="Resize", scale=tuple(config.test_scale), keep_ratio=True)


def config_text(model: dict[str, Any], config: Any) -> str:
    """The whole MMOCR config file: ``model``, the test pipeline and what the inferencer needs."""
    test_pipeline = [
        dict(type="LoadImageFromFile", color_type="color_ignore_orientation"),
        test_resize(config),
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
