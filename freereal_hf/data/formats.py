"""Readers of the native releases of text-detection datasets into the schema of ``schema.py``.

A format lists the *entries* of a release folder (one per image: cheap, picklable, so a list of them can
be sharded for streaming) and parses the labels of one entry. Paths are found by name anywhere under the
release folder, so a release works as it unpacks (``ch4_training_images/`` next to
``ch4_training_localization_transcription_gt/`` and so on). The split of an image is ``test`` when a
folder on its path names a test set (``test``, ``Test``, ``ch4_test_images``), else ``train``.

Formats (``FORMATS``):

=============  ====================================================================================
icdar2015      ``img_N.jpg`` + ``gt_img_N.txt``: ``x1,y1,...,x4,y4,text``; ``###`` = ignore
icdar2013      ``N.jpg`` + ``gt_N.txt``: ``x1 y1 x2 y2 "text"`` (train) or ``x1, y1, x2, y2, "text"``
totaltext      ``imgN.jpg`` + ``poly_gt_imgN.txt`` (``x: [[..]], y: [[..]], ornt: [..],
               transcriptions: [..]``) or ``poly_gt_imgN.mat`` (``polygt`` cells); ``#`` = ignore
ctw1500        ``N.jpg`` + ``N.xml`` (train: ``<box><label>..</label><segs>28 numbers</segs>``) or
               ``N.txt`` (test: 28 numbers then ``,####text``); ``###`` = ignore
msra_td500     ``IMG_N.JPG`` + ``IMG_N.gt``: ``index difficult x y w h angle`` (rotated rectangle, angle
               in radians about its centre); difficult = ignore
synthtext      ``gt.mat`` (``imnames``, ``wordBB`` 2x4xN or 2x4, ``charBB`` 2x4xM, ``txt``) + images;
               words and character quads line up with the whitespace-split words of ``txt``
art, lsvt      images ``gt_N.jpg`` + one JSON (``{"gt_N": [{"points", "transcription",
               "illegibility"}]}``); illegible = ignore
mlt17, mlt19   ``img_N.jpg`` + ``gt_img_N.txt`` (MLT17) or ``tr_img_N.jpg`` + ``tr_img_N.txt`` (MLT19):
               ``x1,y1,...,x4,y4,script,text``; ``###`` = ignore
ustb_sv1k      images; labels are not read (pre-training does not need them)
imagefolder    any folder of images, unlabeled
=============  ====================================================================================
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .records import RecordError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Entry:
    """One image of a release: ``key`` (path relative to the release root), ``image`` (absolute path),
    ``annotation`` (absolute path or None), ``split``, ``index`` (row in a shared annotation file)."""

    key: str
    image: str
    annotation: str | None
    split: str
    index: int = -1


def _split_of(relative: str) -> str:
    parts = [p.lower() for p in Path(relative).parts[:-1]]
    return "test" if any("test" in p for p in parts) else "train"


def _read_text(path: str) -> list[str]:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return [line.rstrip("\r\n") for line in f]


def _numbers(fields: list[str], count: int, path: str, line_no: int) -> list[float]:
    try:
        return [float(v) for v in fields[:count]]
    except ValueError as exc:
        raise RecordError(f"{path}:{line_no}: expected {count} numbers ({exc})") from exc


def _labels(polygons: list, ignore: list, texts: list, **extra: Any) -> dict[str, Any]:
    return {"polygons": polygons, "ignore": ignore, "texts": texts, **extra}


# -- per-file parsers ---------------------------------------------------------------------------------
def parse_quad_txt(path: str, script_column: bool = False, ignore_text: str = "###") -> dict[str, Any]:
    """ICDAR2015 / MLT lines ``x1,y1,...,x4,y4[,script],text`` (the text may itself hold commas)."""
    polygons, ignore, texts = [], [], []
    for n, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 9:
            raise RecordError(f"{path}:{n}: expected at least 9 comma-separated fields, got {len(fields)}")
        xy = _numbers(fields, 8, path, n)
        text = ",".join(fields[9:] if script_column else fields[8:]).strip()
        polygons.append(np.reshape(xy, (4, 2)).tolist())
        ignore.append(text == ignore_text)
        texts.append(text)
    return _labels(polygons, ignore, texts)


def parse_icdar2013(path: str) -> dict[str, Any]:
    """ICDAR2013 lines ``x1 y1 x2 y2 "text"`` (train) or ``x1, y1, x2, y2, "text"`` (test): boxes."""
    polygons, ignore, texts = [], [], []
    for n, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        m = re.match(r'\s*([-\d.]+)[,\s]+([-\d.]+)[,\s]+([-\d.]+)[,\s]+([-\d.]+)[,\s]*(.*)$', line)
        if m is None:
            raise RecordError(f"{path}:{n}: expected 'x1 y1 x2 y2 \"text\"'")
        x1, y1, x2, y2 = (float(v) for v in m.groups()[:4])
        text = m.group(5).strip()
        text = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
        polygons.append([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
        ignore.append(text == "###")
        texts.append(text)
    return _labels(polygons, ignore, texts)


_TT_FIELD = re.compile(r"(x|y|ornt|transcriptions)\s*:\s*\[\[?(.*?)\]?\]", re.S)


def parse_totaltext_txt(path: str) -> dict[str, Any]:
    """Total-Text ``poly_gt_*.txt``: records ``x: [[...]], y: [[...]], ornt: [u'c'], transcriptions: [u'..']``,
    a record possibly wrapped over several lines; ``#`` = ignore."""
    content = "\n".join(_read_text(path))
    polygons, ignore, texts = [], [], []
    for n, chunk in enumerate(re.split(r"(?=x\s*:\s*\[)", content)):
        if not chunk.strip():
            continue
        fields = {name: value for name, value in _TT_FIELD.findall(chunk)}
        if "x" not in fields or "y" not in fields:
            raise RecordError(f"{path}: record {n} lacks x or y")
        try:
            xs = [float(v) for v in fields["x"].replace(",", " ").split()]
            ys = [float(v) for v in fields["y"].replace(",", " ").split()]
        except ValueError as exc:
            raise RecordError(f"{path}: record {n}: {exc}") from exc
        if len(xs) != len(ys):
            raise RecordError(f"{path}: record {n} has {len(xs)} x and {len(ys)} y values")
        m = re.search(r"""^\s*u?(['"])(.*)\1\s*$""", fields.get("transcriptions", ""), re.S)
        text = m.group(2) if m else "#"
        polygons.append(np.stack([xs, ys], 1).tolist())
        ignore.append(text == "#")
        texts.append(text)
    return _labels(polygons, ignore, texts)


def parse_totaltext_mat(path: str) -> dict[str, Any]:
    """Total-Text legacy ``poly_gt_*.mat``: ``polygt`` rows ``['x:', xs, 'y:', ys, ornt, text]``."""
    from scipy.io import loadmat

    try:
        rows = loadmat(path)["polygt"]
    except Exception as exc:
        raise RecordError(f"{path}: not a Total-Text .mat file ({exc})") from exc
    polygons, ignore, texts = [], [], []
    for n, row in enumerate(rows):
        xs, ys = np.asarray(row[1], np.float64).ravel(), np.asarray(row[3], np.float64).ravel()
        if len(xs) != len(ys):
            raise RecordError(f"{path}: row {n} has {len(xs)} x and {len(ys)} y values")
        text = str(np.asarray(row[5]).ravel()[0]) if len(row) > 5 and np.asarray(row[5]).size else "#"
        polygons.append(np.stack([xs, ys], 1).tolist())
        ignore.append(text == "#")
        texts.append(text)
    return _labels(polygons, ignore, texts)


def parse_ctw1500(path: str) -> dict[str, Any]:
    """CTW1500 train ``.xml`` (``<box><label>text</label><segs>28 numbers</segs>``) or test ``.txt``
    (28 numbers then ``,####text``); ``###`` = ignore."""
    polygons, ignore, texts = [], [], []
    if path.lower().endswith(".xml"):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise RecordError(f"{path}: malformed XML ({exc})") from exc
        for n, node in enumerate(root.iter("box")):
            segs = node.findtext("segs")
            if segs is None:
                raise RecordError(f"{path}: box {n} has no <segs>")
            fields = segs.split(",")
            if len(fields) < 28:
                raise RecordError(f"{path}: box {n}: expected 28 numbers, got {len(fields)}")
            values = _numbers(fields, 28, path, n)
            text = node.findtext("label") or ""
            polygons.append(np.reshape(values, (14, 2)).tolist())
            ignore.append(text == "###")
            texts.append(text)
        return _labels(polygons, ignore, texts)
    for n, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        head, _, text = line.partition("####")
        fields = head.strip(",").split(",")
        if len(fields) < 28:
            raise RecordError(f"{path}:{n}: expected 28 numbers, got {len(fields)}")
        values = _numbers(fields, 28, path, n)
        polygons.append(np.reshape(values, (14, 2)).tolist())
        ignore.append(text == "###")
        texts.append(text)
    return _labels(polygons, ignore, texts)


def parse_msra_td500(path: str) -> dict[str, Any]:
    """MSRA-TD500 ``.gt`` lines ``index difficult x y w h angle``: rectangles at ``(x, y)`` (top-left before
    rotation) of ``w x h`` pixels, rotated by ``angle`` radians about their centre; difficult = ignore."""
    polygons, ignore, texts = [], [], []
    for n, line in enumerate(_read_text(path), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 7:
            raise RecordError(f"{path}:{n}: expected 7 fields, got {len(fields)}")
        _, difficult, x, y, w, h, angle = _numbers(fields, 7, path, n)
        cx, cy = x + w / 2, y + h / 2
        c, s = math.cos(angle), math.sin(angle)
        corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
        polygons.append([[cx + c * dx - s * dy, cy + s * dx + c * dy] for dx, dy in corners])
        ignore.append(bool(difficult))
        texts.append("")
    return _labels(polygons, ignore, texts)


@lru_cache(maxsize=4)
def _json_labels(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def parse_art_json(path: str, stem: str) -> dict[str, Any]:
    """ArT / LSVT JSON: ``{"gt_N": [{"points": [[x, y], ...], "transcription": str, "illegibility": bool}]}``."""
    try:
        items = _json_labels(path).get(stem, [])
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: malformed JSON ({exc})") from exc
    polygons, ignore, texts = [], [], []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "points" not in item:
            raise RecordError(f"{path}: {stem}[{n}] has no 'points'")
        polygons.append(item["points"])
        text = str(item.get("transcription", ""))
        ignore.append(bool(item.get("illegibility", False)) or text == "###")
        texts.append(text)
    return _labels(polygons, ignore, texts)


@lru_cache(maxsize=1)
def _synthtext_mat(path: str) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    try:
        gt = loadmat(path, variable_names=["imnames", "wordBB", "charBB", "txt"])
    except Exception as exc:
        raise RecordError(f"{path}: not a SynthText gt.mat ({exc})") from exc
    missing = [k for k in ("imnames", "wordBB", "charBB", "txt") if k not in gt]
    if missing:
        raise RecordError(f"{path}: gt.mat lacks {missing}")
    return {k: gt[k].ravel() for k in ("imnames", "wordBB", "charBB", "txt")}


def _strings(value: Any) -> list[str]:
    """The strings inside a MATLAB cell/char array as loaded by scipy (nested object arrays)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            return [str(v) for v in value.ravel()]
        return [s for v in value.ravel() for s in _strings(v)]
    return [str(value)]


def synthtext_labels(word_bb: np.ndarray, char_bb: np.ndarray, txt: Any, where: str) -> dict[str, Any]:
    """Word quads, texts, character quads and their word index from one SynthText ``gt.mat`` row.

    ``word_bb``: ``2 x 4 x N`` (or ``2 x 4`` for one word); ``char_bb``: ``2 x 4 x M``; ``txt``: strings whose
    whitespace-split words are the ``N`` words and whose characters are the ``M`` character boxes.
    """
    words = [w for line in _strings(txt) for w in line.split()]
    word_quads = np.asarray(word_bb, np.float64).reshape(2, 4, -1).transpose(2, 1, 0)
    char_quads = np.asarray(char_bb, np.float64).reshape(2, 4, -1).transpose(2, 1, 0)
    n_chars = sum(len(w) for w in words)
    if len(words) != len(word_quads) or n_chars != len(char_quads):
        raise RecordError(f"{where}: txt has {len(words)} words / {n_chars} characters but wordBB has "
                          f"{len(word_quads)} and charBB {len(char_quads)} boxes")
    char_word = np.repeat(np.arange(len(words)), [len(w) for w in words]).tolist()
    return _labels(word_quads.tolist(), [False] * len(words), words, char_polygons=char_quads.tolist(),
                   char_word=char_word)


# -- formats --------------------------------------------------------------------------------------------
def _index_files(src: Path) -> tuple[list[str], dict[str, str]]:
    """Relative image paths (sorted) and a map ``file name -> absolute path`` of every other file."""
    images, others = [], {}
    for root, _, files in os.walk(src):
        for name in files:
            path = os.path.join(root, name)
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                images.append(os.path.relpath(path, src))
            else:
                others.setdefault(name, path)
    return sorted(images), others


@dataclass(frozen=True)
class Format:
    """A release format: how to find each image's annotation and parse it."""

    name: str
    labeled: bool
    annotation_names: Callable[[str], list[str]] | None = None  # image stem -> candidate file names
    parse: Callable[[str], dict[str, Any]] | None = None
    shared_annotation: tuple[str, ...] = ()  # one file for all images (JSON formats)

    def entries(self, src: str | Path) -> list[Entry]:
        """Every image of the release under ``src`` with its annotation file (``None`` if not found)."""
        src = Path(src)
        if not src.is_dir():
            raise FileNotFoundError(f"{src} is not a folder")
        images, others = _index_files(src)
        shared = next((others[n] for n in self.shared_annotation if n in others), None)
        entries = []
        for rel in images:
            stem = Path(rel).stem
            annotation = shared
            if self.annotation_names is not None:
                annotation = next((others[n] for n in self.annotation_names(stem) if n in others), None)
            entries.append(Entry(rel, str(src / rel), annotation, _split_of(rel)))
        return entries

    def labels(self, entry: Entry) -> dict[str, Any]:
        """The labels of one entry (empty for unlabeled formats). Raises ``RecordError`` when a labeled
        format has no or a malformed annotation for it."""
        if not self.labeled:
            return {}
        if entry.annotation is None:
            raise RecordError(f"{entry.key}: no annotation file found")
        if self.shared_annotation:
            return parse_art_json(entry.annotation, Path(entry.key).stem)
        return self.parse(entry.annotation)


class SynthTextFormat(Format):
    """SynthText: every image listed in ``gt.mat`` (the images themselves under the release folder)."""

    def entries(self, src: str | Path) -> list[Entry]:
        src = Path(src)
        mats = sorted(src.rglob("gt.mat"))
        if not mats:
            raise FileNotFoundError(f"no gt.mat under {src}")
        gt = _synthtext_mat(str(mats[0]))
        root = mats[0].parent
        return [Entry(str(np.asarray(name).ravel()[0]), str(root / str(np.asarray(name).ravel()[0])),
                      str(mats[0]), "train", i) for i, name in enumerate(gt["imnames"])]

    def labels(self, entry: Entry) -> dict[str, Any]:
        gt = _synthtext_mat(entry.annotation)
        return synthtext_labels(gt["wordBB"][entry.index], gt["charBB"][entry.index], gt["txt"][entry.index],
                                f"gt.mat row {entry.index} ({entry.key})")


def _totaltext_parse(path: str) -> dict[str, Any]:
    return parse_totaltext_mat(path) if path.lower().endswith(".mat") else parse_totaltext_txt(path)


FORMATS: dict[str, Format] = {
    "icdar2015": Format("icdar2015", True, lambda s: [f"gt_{s}.txt"], parse_quad_txt),
    "icdar2013": Format("icdar2013", True, lambda s: [f"gt_{s}.txt"], parse_icdar2013),
    "totaltext": Format("totaltext", True,
                        lambda s: [f"poly_gt_{s}.txt", f"poly_gt_{s}.mat", f"gt_{s}.txt", f"{s}.txt"],
                        _totaltext_parse),
    "ctw1500": Format("ctw1500", True, lambda s: [f"{s}.xml", f"{s}.txt"], parse_ctw1500),
    "msra_td500": Format("msra_td500", True, lambda s: [f"{s}.gt"], parse_msra_td500),
    "synthtext": SynthTextFormat("synthtext", True),
    "art": Format("art", True, shared_annotation=("train_labels.json", "train_task2_labels.json")),
    "lsvt": Format("lsvt", True, shared_annotation=("train_full_labels.json", "train_labels.json")),
    "mlt17": Format("mlt17", True, lambda s: [f"gt_{s}.txt"],
                    lambda p: parse_quad_txt(p, script_column=True)),
    "mlt19": Format("mlt19", True, lambda s: [f"{s}.txt", f"gt_{s}.txt"],
                    lambda p: parse_quad_txt(p, script_column=True)),
    "ustb_sv1k": Format("ustb_sv1k", False),
    "imagefolder": Format("imagefolder", False),
}


def get_format(name: str) -> Format:
    """The reader of a release format (see the module docstring for the list)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


__all__ = ["Entry", "Format", "FORMATS", "get_format", "synthtext_labels", "parse_quad_txt", "parse_icdar2013",
           "parse_totaltext_txt", "parse_totaltext_mat", "parse_ctw1500", "parse_msra_td500", "parse_art_json"]
