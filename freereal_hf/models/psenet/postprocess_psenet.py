"""PSENet post-processing: text and kernel probabilities -> text polygons, as MMOCR 1.0.1's
``PSEPostprocessor`` with mmcv 2.0.1's ``contour_expand``.

Input: ``K x h x w`` probabilities at 1/4 of the network input (text first, then the kernels from large to
small). Output: polygons (``M x 2`` float32 ``(x, y)``) in original-image pixels and their scores.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..kernels import expand_kernels, instances, points_to_boundary

DOWNSAMPLE_RATIO = 0.25  # the head predicts at 1/4 of the input size


def psenet_post_process(
    prob: np.ndarray,
    scale_factor: tuple[float, float] = (1.0, 1.0),
    text_repr_type: str = "quad",
    min_kernel_confidence: float = 0.5,
    score_threshold: float = 0.3,
    min_kernel_area: int = 0,
    min_text_area: int = 16,
) -> dict[str, list]:
    """Text instances of one image.

    Every map is thresholded at ``min_kernel_confidence`` and the kernels are cut to the text mask. The
    smallest kernel's 4-connected components are the instances; they grow through the TEXT mask (mmcv 2.0.1's
    ``contour_expand`` floods the first plane only; the intermediate kernels play no part, unlike the paper's
    progressive expansion). An instance is kept when it has at least ``min_text_area`` pixels OR a mean text
    probability above ``score_threshold`` (MMOCR's condition, ``or`` not ``and``); its pixels become the
    min-area rectangle (``"quad"``) or their outer contour (``"poly"``).

    Returns:
        ``{"polygons": [M x 2 float32 (x, y)], "scores": [float]}``, divided by ``scale_factor * 0.25``.
    """
    prob = np.asarray(prob, np.float32)
    masks = prob > min_kernel_confidence
    text = masks[0]
    smallest = (masks[-1] & text).astype(np.uint8)
    _, labels = cv2.connectedComponents(smallest, connectivity=4)
    labels = expand_kernels(text, labels, min_kernel_area, rounds=len(prob) - 1)
    scale = np.asarray(scale_factor, np.float32) * DOWNSAMPLE_RATIO
    polygons, scores = [], []
    for _, score, points in instances(labels, prob[0]):
        if not (len(points) >= min_text_area or score > score_threshold):
            continue
        polygon = points_to_boundary(points, text_repr_type)
        if polygon is not None:
            polygons.append((polygon / scale).astype(np.float32))
            scores.append(score)
    return {"polygons": polygons, "scores": scores}


__all__ = ["psenet_post_process"]
