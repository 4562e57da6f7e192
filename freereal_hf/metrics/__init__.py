"""Metrics. ``hmean/`` is an ``evaluate`` module; :func:`hmean_iou` is the same computation on plain inputs."""

from pathlib import Path

from .hmean.hmean import hmean_iou

HMEAN_PATH = str(Path(__file__).parent / "hmean")

__all__ = ["HMEAN_PATH", "hmean_iou"]
