"""PANet post-processing: text, kernel and embedding maps -> text polygons, as MMOCR 1.0.1's
``PANPostprocessor`` with mmcv 2.0.1's ``pixel_group``.

Input: ``(2 + D) x h x w`` at 1/4 of the network input: text and kernel probabilities (sigmoid already
applied), then the raw ``D``-dim embedding. Output: polygons (``M x 2`` float32 ``(x, y)``) in original-image
pixels and their scores.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..kernels import group_pixels, instances, points_to_boundary

DOWNSAMPLE_RATIO = 0.25  # the head predicts at 1/4 of the input size


def panet_instance_labels(maps: np.ndarray, min_text_confidence: float = 0.5, min_kernel_confidence: float = 0.5,
                          distance_threshold: float = 3.0) -> tuple[np.ndarray, int]:
    """Pixel aggregation: ``(h x w int32 instance labels, number of labels incl. background)``.

    Text = ``p_text > min_text_confidence``; kernels = ``p_kernel > min_kernel_confidence`` inside text, split
    into 4-connected components; text pixels join a kernel breadth-first from the kernel contours when their
    embedding is within ``distance_threshold`` of the kernel's mean embedding.
    """
    maps = np.asarray(maps, np.float32)
    text = maps[0] > min_text_confidence
    kernel = ((maps[1] > min_kernel_confidence) & text).astype(np.uint8)
    embedding = (maps[2:] * text.astype(np.float32)).transpose(1, 2, 0)
    num, labels = cv2.connectedComponents(kernel, connectivity=4)
    contours, _ = cv2.findContours(kernel * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    kernel_contour = np.zeros(text.shape, np.uint8)
    cv2.drawContours(kernel_contour, contours, -1, 255)
    return group_pixels(text, embedding, labels, kernel_contour, num, distance_threshold), num


def panet_post_process(
    maps: np.ndarray,
    scale_factor: tuple[float, float] = (1.0, 1.0),
    text_repr_type: str = "quad",
    score_threshold: float = 0.3,
    min_text_confidence: float = 0.5,
    min_kernel_confidence: float = 0.5,
    distance_threshold: float = 3.0,
    min_text_area: int = 16,
) -> dict[str, list]:
    """Text instances of one image: :func:`panet_instance_labels`, then every instance with at least
    ``min_text_area`` pixels and a mean text probability above ``score_threshold`` becomes its min-area rectangle
    (``"quad"``) or outer contour (``"poly"``).

    Returns:
        ``{"polygons": [M x 2 float32 (x, y)], "scores": [float]}``, divided by ``scale_factor * 0.25``.
    """
    maps = np.asarray(maps, np.float32)
    labels, num = panet_instance_labels(maps, min_text_confidence, min_kernel_confidence, distance_threshold)
    scale = np.asarray(scale_factor, np.float32) * DOWNSAMPLE_RATIO
    polygons, scores = [], []
    for _, score, points in instances(labels, maps[0], num):
        if len(points) < min_text_area or score <= score_threshold:
            continue
        polygon = points_to_boundary(points, text_repr_type)
        if polygon is not None:
            polygons.append((polygon / scale).astype(np.float32))
            scores.append(score)
    return {"polygons": polygons, "scores": scores}


__all__ = ["panet_post_process", "panet_instance_labels"]
