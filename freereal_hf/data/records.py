"""Checking and repairing records: images that decode, polygons that make sense, counts that agree.

Every problem is a warning naming the record and a count in a :class:`Report`; a record is skipped only
when no correct label can be made of it (an image that does not decode, text and polygon counts that
disagree). Never a crash midway, never a silently wrong label.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np
import shapely
from PIL import Image as PILImage
from shapely.geometry import Polygon, box

from ..image_processing import to_rgb_array

logger = logging.getLogger("freereal_hf.data")


class RecordError(ValueError):
    """A record that cannot be used at all (the message names it)."""


@dataclass
class Report:
    """Counts of what was read, repaired and skipped; ``summary()`` is printed at the end of a job."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, key: str | None = None, message: str | None = None, warn: bool = True) -> None:
        self.counts[what] += 1
        if key is not None and message is not None:
            text = message if message.startswith(key) else f"{key}: {message}"
            self.examples.setdefault(what, text)
            if warn:
                logger.warning("%s", text)

    def merge(self, other: "Report") -> None:
        self.counts.update(other.counts)
        for k, v in other.examples.items():
            self.examples.setdefault(k, v)

    def summary(self) -> str:
        if not self.counts:
            return "nothing read"
        lines = [f"{what}: {n}" for what, n in sorted(self.counts.items())]
        return "\n".join(lines)


def image_bytes(image: dict[str, Any]) -> bytes:
    """The encoded bytes of an undecoded ``datasets.Image`` cell (``{"bytes", "path"}``), read from ``path``
    when ``bytes`` is empty."""
    data = image.get("bytes")
    if data is None and image.get("path"):
        with open(image["path"], "rb") as f:
            data = f.read()
    if data is None:
        raise RecordError("image cell has neither bytes nor a path")
    return data


def decode_image(data: bytes, key: str) -> tuple[np.ndarray, bool]:
    """Decodes image bytes to an ``H x W x 3`` uint8 RGB array.

    Returns ``(image, converted)``; ``converted`` is True when the file was not 8-bit RGB (grayscale, RGBA,
    palette, 16-bit...) and was converted. Raises :class:`RecordError` for a corrupt or truncated file.
    """
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("LA", "La", "PA"):  # gray (or palette) with alpha: like RGBA, the alpha is dropped
                im = im.convert("RGBA")
            elif mode not in ("RGB", "RGBA", "L", "I", "F") and not mode.startswith("I;16"):
                im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1-bit...: PIL's own conversion, right colours
            array = np.asarray(im)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        raise RecordError(f"{key}: image does not decode ({type(exc).__name__}: {exc})") from exc
    if array.ndim not in (2, 3) or array.shape[0] == 0 or array.shape[1] == 0:
        raise RecordError(f"{key}: image has shape {array.shape}")
    try:
        rgb = to_rgb_array(array)
    except ValueError as exc:
        raise RecordError(f"{key}: {exc}") from exc
    return rgb, not (mode == "RGB" and array.dtype == np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``H x W x 3`` uint8 RGB array."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RecordError("PNG encoding failed")
    return buf.tobytes()


def clean_polygon(points: Any, width: int, height: int) -> tuple[np.ndarray | None, str | None]:
    """Checks one polygon against an image of ``width x height`` pixels.

    Returns ``(polygon, problem)``: ``polygon`` a ``K x 2`` float32 array (``None`` when it must be
    dropped), ``problem`` a short description when something was dropped or repaired, else ``None``.
    Self-intersecting polygons become the largest part of their valid form; parts outside the image are
    clipped away.
    """
    try:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None, "coordinates are not pairs of numbers"
    if len(pts) < 3:
        return None, f"{len(pts)} point(s)"
    if not np.isfinite(pts).all():
        return None, "NaN or infinite coordinates"
    poly = Polygon(pts)
    problem = None
    if not poly.is_valid:
        parts = [g for g in getattr(shapely.make_valid(poly), "geoms", [shapely.make_valid(poly)])
                 if isinstance(g, Polygon) and g.area > 0]
        if not parts:
            return None, "zero area"
        poly = max(parts, key=lambda g: g.area)
        problem = "self-intersecting"
    if poly.area <= 0:
        return None, "zero area"
    frame = box(0, 0, width, height)
    if not frame.contains(poly):
        inside = poly.intersection(frame)
        parts = [g for g in getattr(inside, "geoms", [inside]) if isinstance(g, Polygon) and g.area > 0]
        if not parts:
            return None, "outside the image"
        poly = max(parts, key=lambda g: g.area)
        problem = "clipped to the image"
    if problem is None:
        return pts.astype(np.float32), None
    coords = np.asarray(poly.exterior.coords, np.float32)[:-1]
    return coords, problem


def clean_record(key: str, image_bytes: bytes, polygons: Sequence[Any] = (), ignore: Sequence[bool] | None = None,
                 texts: Sequence[str] | None = None, char_polygons: Sequence[Any] = (),
                 char_word: Sequence[int] | None = None, report: Report | None = None) -> dict[str, Any]:
    """A record in the schema of :mod:`freereal_hf.data.schema`, checked and repaired.

    Raises :class:`RecordError` when the record must be skipped; every repair is counted in ``report``.
    Character quads are kept only when they are all finite ``4 x 2`` quads with a valid word index.
    """
    report = report if report is not None else Report()
    image, converted = decode_image(image_bytes, key)
    h, w = image.shape[:2]
    if converted:
        report.add("images converted to 8-bit RGB", key, "image converted to 8-bit RGB", warn=False)
        image_bytes = encode_png(image)
    n = len(polygons)
    ignore = [False] * n if ignore is None else [bool(v) for v in ignore]
    texts = [""] * n if texts is None else ["" if t is None else str(t) for t in texts]
    if len(ignore) != n or len(texts) != n:
        raise RecordError(f"{key}: {n} polygons but {len(ignore)} ignore flags and {len(texts)} texts")
    undecodable = sum("\ufffd" in t for t in texts)
    if undecodable:  # annotation bytes that were not UTF-8 were replaced while reading
        report.add("texts with bytes that are not UTF-8 (replaced by U+FFFD)", key,
                   f"{undecodable} text(s) held bytes that are not UTF-8; they were replaced by U+FFFD")
    keep_polys, keep_ignore, keep_texts, new_index = [], [], [], {}
    for i, (points, flag, text) in enumerate(zip(polygons, ignore, texts)):
        poly, problem = clean_polygon(points, w, h)
        if problem is not None:
            report.add(("polygons dropped, " if poly is None else "polygons repaired, ") + problem, key,
                       f"polygon {i}: {problem}")
        if poly is None:
            continue
        new_index[i] = len(keep_polys)
        keep_polys.append(poly.tolist())
        keep_ignore.append(flag)
        keep_texts.append(text)
    chars: list = []
    words: list = []
    if len(char_polygons):
        quads = np.asarray(char_polygons, np.float64)
        idx = np.asarray(char_word if char_word is not None else [], np.int64)
        if quads.ndim != 3 or quads.shape[1:] != (4, 2) or len(idx) != len(quads) or not np.isfinite(quads).all():
            report.add("records with unusable character boxes", key,
                       f"{len(char_polygons)} character boxes do not line up with {len(idx)} word indices")
        else:
            for quad, word in zip(quads, idx):
                if int(word) in new_index:
                    chars.append(np.clip(quad, [0, 0], [w, h]).astype(np.float32).tolist())
                    words.append(new_index[int(word)])
    report.add("records written")
    report.counts["polygons written"] += len(keep_polys)
    return {"key": key, "image": {"bytes": image_bytes, "path": None}, "polygons": keep_polys,
            "ignore": keep_ignore, "texts": keep_texts, "char_polygons": chars, "char_word": words}


__all__ = ["Report", "RecordError", "image_bytes", "decode_image", "encode_png", "clean_polygon", "clean_record"]
