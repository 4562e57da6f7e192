"""Pictures people look at: detected polygons drawn on images."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def draw_polygons(image: np.ndarray, polygons: Sequence[np.ndarray], scores: Sequence[float] | None = None,
                  color: tuple[int, int, int] = (255, 40, 40), thickness: int = 2) -> np.ndarray:
    """A copy of an ``H x W x 3`` uint8 RGB image with polygons (``K x 2`` ``(x, y)`` pixels) outlined and
    their scores written at their first vertex."""
    canvas = np.array(image, dtype=np.uint8, order="C")  # a C-ordered copy, as cv2 draws in place
    for i, poly in enumerate(polygons):
        pts = np.round(np.asarray(poly, np.float32).reshape(-1, 2)).astype(np.int32)
        if len(pts) < 2:
            continue
        cv2.polylines(canvas, [pts], True, color, thickness, cv2.LINE_AA)
        if scores is not None:
            x, y = pts[0]
            cv2.putText(canvas, f"{scores[i]:.2f}", (int(x), max(10, int(y) - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        color, 1, cv2.LINE_AA)
    return canvas


def draw_evaluation(image: np.ndarray, prediction: dict, reference: dict | None = None) -> np.ndarray:
    """Labels in green (ignored ones in grey), predictions in red with their scores, on a copy of ``image``."""
    canvas = image
    if reference is not None:
        ignore = list(reference.get("ignore") or [False] * len(reference["polygons"]))
        cares = [p for p, i in zip(reference["polygons"], ignore) if not i]
        dont = [p for p, i in zip(reference["polygons"], ignore) if i]
        canvas = draw_polygons(draw_polygons(canvas, cares, color=(40, 220, 40)), dont, color=(150, 150, 150))
    return draw_polygons(canvas, prediction["polygons"], prediction.get("scores"))
