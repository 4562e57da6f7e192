"""``freereal-detect INPUT... --model DIR_OR_ID | --onnx FILE``: detect text in files, folders and globs.

Writes into OUTPUT_DIR (a new folder; ``--overwrite`` replaces a used one), per ``--save``:
  json   json/<name>.json per image (file, size, polygons as lists of (x, y) original pixels, scores) and
         detections.json, every image in one file
  png    <name>.png: the polygons drawn on the image
  icdar  submission.zip: res_<name>.txt per image, one ``x1,y1,...,x4,y4`` line (clockwise) per detection, what
         the ICDAR 2015 evaluation takes (polygons become their minimum-area rectangle)
  coco   coco.json: COCO-style images, categories and annotations (segmentation polygon, bbox, area, score)

Post-processing parameters default to the model config's; --score-threshold, --unclip-ratio (DBNet) and
--output-type override them. A file that is not a readable image (or is missing) is reported by name and
skipped; the rest is processed and the count printed. Everything is written to a hidden folder beside OUTPUT_DIR
and moved there at the end, so an interrupted run leaves no half-written OUTPUT_DIR. Decoding, the forward passes
and post-processing overlap: two threads decode the next images and one post-processes and writes the previous
pass's outputs while the next runs (what is written is the same, in input order).

  freereal-detect photos/ "scans/*.jpg" --model outputs/finetune/final --save json,png,coco
  freereal-detect photos/ --onnx dbnet.onnx --score-threshold 0.5 --output-type poly --save icdar
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from .args import check_output_folder

OUTPUTS = ("json", "png", "icdar", "coco")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="image files, folders (their images, recursively) and globs")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="local folder or Hub id of a trained detector")
    source.add_argument("--onnx", help="an .onnx file written by freereal-convert to-onnx (runs on ONNX Runtime)")
    parser.add_argument("--output-dir", default="outputs/detect", help="where to write (outputs/detect)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder that is not empty")
    parser.add_argument("--save", default="json,png", help=f"what to write, comma-separated from {','.join(OUTPUTS)} "
                        "(json,png)")
    parser.add_argument("--long-side", type=int, help="resize the long side to this (default: the model's test scale)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass, consecutive images of one "
                        "size only (no image is padded to a neighbour's size) (4)")
    parser.add_argument("--score-threshold", type=float, help="minimum score of a detection (default: the config's)")
    parser.add_argument("--unclip-ratio", type=float, help="DBNet: how far text kernels are expanded (default: the "
                        "config's)")
    parser.add_argument("--output-type", choices=("quad", "poly"), help="quadrilaterals or polygons (default: the "
                        "config's text_repr_type)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.long_side is not None and args.long_side < 32:
        parser.error(f"--long-side must be at least 32, got {args.long_side}")
    if args.score_threshold is not None and not 0.0 <= args.score_threshold <= 1.0:
        parser.error(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    if args.unclip_ratio is not None and not args.unclip_ratio > 0.0:
        parser.error(f"--unclip-ratio must be positive, got {args.unclip_ratio}")
    args.save = [s.strip() for s in args.save.split(",") if s.strip()]
    if not args.save or set(args.save) - set(OUTPUTS):
        parser.error(f"--save takes a comma-separated list of {', '.join(OUTPUTS)}; got {','.join(args.save) or '-'}")
    check_output_folder(parser, args.output_dir, args.overwrite, "--output-dir")
    if args.onnx is not None and not Path(args.onnx).is_file():
        parser.error(f"--onnx {args.onnx}: " + ("a folder, not an .onnx file" if Path(args.onnx).is_dir()
                                                 else "no such file"))

    from .args import report_errors

    return report_errors("freereal-detect", lambda: _run(args))


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files named by ``inputs`` (files; folders: their images with a known suffix, recursively,
    sorted; globs: their matches, sorted), each once, and ``(input, why)`` for inputs that name nothing."""
    from ..data.formats import IMAGE_SUFFIXES  # what freereal-prepare reads as images

    files: list[Path] = []
    nothing: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                nothing.append((item, f"a folder with no images ({', '.join(sorted(IMAGE_SUFFIXES))})"))
        elif path.exists():
            found = [path]
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(item), recursive=True) if Path(p).is_file())
            if not found:
                nothing.append((item, "matches no file"))
        else:
            found = []
            nothing.append((item, "no such file"))
        files += found
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))], nothing


def clockwise_quad(polygon: np.ndarray) -> np.ndarray:
    """A ``4 x 2`` quadrilateral for the ICDAR 2015 format: the polygon itself when it has 4 points, else its
    minimum-area rectangle; ordered clockwise on the image (y down), as that evaluation checks."""
    points = np.asarray(polygon, np.float64).reshape(-1, 2)
    quad = points if len(points) == 4 else cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))).astype(np.float64)
    edges = np.roll(quad, -1, axis=0)
    if np.sum((edges[:, 0] - quad[:, 0]) * (edges[:, 1] + quad[:, 1])) > 0:  # counter-clockwise on screen
        quad = quad[::-1]
    return quad


class _Writers:
    """Writes each image's results as they come, in the formats asked for, into ``folder``."""

    def __init__(self, folder: Path, save: list[str], source: str) -> None:
        self.folder, self.save, self.source = folder, save, source
        self.used: set[str] = set()
        self.index: list[dict[str, Any]] = []
        self.coco: dict[str, list] = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "text"}]}
        self.zip = zipfile.ZipFile(folder / "submission.zip", "w", zipfile.ZIP_DEFLATED) if "icdar" in save else None
        if "json" in save:
            (folder / "json").mkdir()

    def _name(self, path: Path) -> str:
        name, n = path.stem, 1
        while name in self.used:  # photo.jpg in two folders: photo, photo_2
            n += 1
            name = f"{path.stem}_{n}"
        self.used.add(name)
        return name

    def add(self, path: Path, image: np.ndarray, result: dict[str, Any]) -> None:
        from ..models.polygons import polygon_area_perimeter
        from ..visualize import draw_polygons

        name = self._name(path)
        polygons = [np.asarray(p, np.float64).reshape(-1, 2) for p in result["polygons"]]
        scores = [float(s) for s in result["scores"]]
        record = {"file": str(path), "name": name, "height": int(image.shape[0]), "width": int(image.shape[1]),
                  "polygons": [p.tolist() for p in polygons], "scores": scores}
        if "json" in self.save:
            (self.folder / "json" / f"{name}.json").write_text(json.dumps(record))
            self.index.append(record)
        if "png" in self.save:
            drawn = draw_polygons(image, polygons, scores)
            cv2.imwrite(str(self.folder / f"{name}.png"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        if self.zip is not None:
            lines = [",".join(str(int(round(v))) for v in clockwise_quad(p).reshape(-1)) for p in polygons]
            self.zip.writestr(f"res_{name}.txt", "".join(line + "\n" for line in lines))
        if "coco" in self.save:
            image_id = len(self.coco["images"]) + 1
            self.coco["images"].append({"id": image_id, "file_name": str(path), "height": record["height"],
                                        "width": record["width"]})
            for p, s in zip(polygons, scores):
                x0, y0 = p.min(0)
                x1, y1 = p.max(0)
                area = polygon_area_perimeter(p)[0]
                self.coco["annotations"].append({
                    "id": len(self.coco["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                    "segmentation": [p.reshape(-1).round(2).tolist()], "area": round(area, 2),
                    "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                             round(float(y1 - y0), 2)], "score": s, "iscrowd": 0})

    def close(self) -> None:
        if "json" in self.save:
            (self.folder / "detections.json").write_text(json.dumps({"model": self.source, "images": self.index},
                                                                    indent=1))
        if "coco" in self.save:
            (self.folder / "coco.json").write_text(json.dumps(self.coco))
        if self.zip is not None:
            self.zip.close()


def _load_detector(args: argparse.Namespace) -> tuple[Any, Any]:
    """The detector (torch model or ONNX Runtime session) with the flags' post-processing, and its processor."""
    import torch

    from ..image_processing import TextDetectionImageProcessor
    from ..training.common import UsageError, load_model

    if args.onnx is not None:
        from ..onnx_export import OnnxTextDetector

        try:
            # no spin-waiting workers: the decoding and writing threads need the cores between operators
            # (3.5 % faster over scripts/benchmark_detect.py's folder on 2 cores; the forward alone is slower)
            detector = OnnxTextDetector(args.onnx, spin=False)
        except (ValueError, ImportError) as err:
            raise UsageError(str(err)) from None
    else:
        from ..models.inference import fold_batch_norms

        # channels-last: oneDNN's convolutions run about 1.3x faster on the CPU; batch norms folded into their
        # convolutions, one pass less over each feature map (scripts/benchmark_detect.py)
        detector = load_model(args.model).eval().to(memory_format=torch.channels_last)
        fold_batch_norms(detector)
    config = detector.config
    fields = config.post_process_fields
    if args.unclip_ratio is not None and "unclip_ratio" not in fields:
        raise UsageError(f"--unclip-ratio: {config.model_type} has no unclip ratio; its post-processing takes "
                         f"{', '.join(fields)}")
    for value, field in ((args.score_threshold, config.score_field), (args.unclip_ratio, "unclip_ratio"),
                         (args.output_type, "text_repr_type")):
        if value is not None:
            setattr(config, field, value)
    # an ONNX file carries the processor it was exported with; --long-side (or a torch model) builds one from the
    # config, after the flags above have changed its post-processing
    if args.onnx is not None and not args.long_side:
        return detector, detector.processor
    return detector, TextDetectionImageProcessor.for_config(config, args.long_side)


def _read_ahead(files: list[Path], ahead: int) -> Iterator[tuple[Path, Any]]:
    """``(path, H x W x 3 uint8 RGB image)`` per file in order, or ``(path, error)`` for one that cannot be read;
    decoded by two threads up to ``ahead`` files in front of the caller (decoders release the GIL, so reading the
    next images overlaps the forward pass)."""
    from ..data.records import RecordError, decode_image

    def read(path: Path) -> Any:
        try:  # the package's one decoder (CMYK, 16-bit, gray+alpha... as in prepare)
            return decode_image(path.read_bytes(), str(path))[0]
        except (OSError, RecordError) as err:
            return err

    with ThreadPoolExecutor(2, thread_name_prefix="freereal-detect-read") as pool:
        queued = deque((path, pool.submit(read, path)) for path in files[:ahead])
        for path in files[ahead:] + [None] * len(queued):
            done_path, future = queued.popleft()
            if path is not None:
                queued.append((path, pool.submit(read, path)))
            yield done_path, future.result()


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..training.common import UsageError
    from ..training.evaluation import detection_runs

    files, nothing = collect_inputs(args.inputs)
    for item, why in nothing:
        print(f"freereal-detect: {item}: {why}, skipped", file=sys.stderr)
    if not files:
        raise UsageError(f"no images in {' '.join(args.inputs)}")
    detector, processor = _load_detector(args)
    out = Path(args.output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    counts = {"skipped": len(nothing), "done": 0, "found": 0}

    def finish(post_process: Any, items: list[tuple[Path, np.ndarray]]) -> None:
        """Post-processes one forward pass's outputs and writes them (in the one finishing thread, in order)."""
        for (path, image), result in zip(items, post_process()):
            writers.add(path, image, result)
            counts["found"] += len(result["polygons"])
        counts["done"] += len(items)

    try:
        writers = _Writers(staging, args.save, args.onnx or args.model)
        # three stages overlap: two threads decode the next images, this thread runs the forward passes, one
        # thread post-processes and writes the previous pass's outputs (results and files as without overlap)
        with tqdm(total=len(files), desc="detecting", unit="image", disable=None) as bar, \
                ThreadPoolExecutor(1, thread_name_prefix="freereal-detect-write") as finisher:
            pending: deque[Future] = deque()
            reads = _read_ahead(files, 2 * args.batch_size + 2)
            for start in range(0, len(files), args.batch_size):
                batch = []
                for path, image in itertools.islice(reads, args.batch_size):
                    if isinstance(image, Exception):
                        tqdm.write(f"freereal-detect: cannot read {path} ({image}), skipped", file=sys.stderr)
                        counts["skipped"] += 1
                    else:
                        batch.append((path, image))
                at = 0
                for size, post_process in detection_runs(detector, [image for _, image in batch], processor,
                                                         args.batch_size):
                    pending.append(finisher.submit(finish, post_process, batch[at:at + size]))
                    at += size
                    while len(pending) > 2:  # bounded: at most two passes' outputs wait
                        pending.popleft().result()
                bar.update(len(files[start:start + args.batch_size]))
            while pending:
                pending.popleft().result()  # re-raises a post-processing or writing error here
        writers.close()
        if out.exists():  # --overwrite (checked before any work): the old folder goes only now, complete
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"wrote {', '.join(args.save)} to {out}: {counts['done']} image(s), {counts['found']} text region(s)"
          + (f"; {counts['skipped']} input(s) skipped" if counts["skipped"] else ""))
    return 0 if counts["done"] else 1


if __name__ == "__main__":
    sys.exit(main())
