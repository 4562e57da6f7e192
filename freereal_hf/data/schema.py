"""The one ``datasets.Features`` schema of labeled (and unlabeled) text-detection data.

One record per image:

- ``key`` (string): a name unique in the dataset, normally the image path relative to the release root.
  Warnings name records by it, and augmentation draws its randomness from it (reproducible anywhere).
- ``image`` (Image): the encoded image, RGB 8-bit after ``freereal-prepare``.
- ``polygons`` (list of ``K x 2`` float32): word or line polygons, ``(x, y)`` pixels, origin at the top-left
  corner of the top-left pixel, in the order the release gives (clockwise for most).
- ``ignore`` (list of bool): per polygon; ``True`` for "do not care" regions (``###``, illegible, difficult).
- ``texts`` (list of string): per polygon; empty strings where the release has no transcription.
- ``char_polygons`` (list of ``4 x 2`` float32): character quadrilaterals (SynthText and the demo data;
  empty elsewhere), clockwise from the top-left.
- ``char_word`` (list of int32): per character quad, the index of its word in ``polygons``.

Unlabeled real data uses the same schema with empty lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import Features, Image, List, Value

POLYGON = List(List(Value("float32"), length=2))
QUAD = List(List(Value("float32"), length=2), length=4)

FEATURES = Features({
    "key": Value("string"),
    "image": Image(),
    "polygons": List(POLYGON),
    "ignore": List(Value("bool")),
    "texts": List(Value("string")),
    "char_polygons": List(QUAD),
    "char_word": List(Value("int32")),
})

LABEL_COLUMNS = ("polygons", "ignore", "texts", "char_polygons", "char_word")


def empty_labels() -> dict[str, list]:
    """The label columns of an unlabeled image."""
    return {name: [] for name in LABEL_COLUMNS}


def polygons_as_arrays(record: dict[str, Any]) -> list[np.ndarray]:
    """``record["polygons"]`` as a list of ``K x 2`` float32 arrays."""
    return [np.asarray(p, np.float32).reshape(-1, 2) for p in record["polygons"]]


def char_quads_as_array(record: dict[str, Any]) -> np.ndarray:
    """``record["char_polygons"]`` as an ``M x 4 x 2`` float32 array (``M`` may be 0)."""
    return np.asarray(record.get("char_polygons") or np.zeros((0, 4, 2)), np.float32).reshape(-1, 4, 2)


__all__ = ["FEATURES", "LABEL_COLUMNS", "POLYGON", "QUAD", "empty_labels", "polygons_as_arrays",
           "char_quads_as_array"]
