"""``freereal-demo``: build (or load) a DBNet, run it on an image and write the drawn detections.

With no arguments it builds MMOCR's DBNet-R18 (random weights), fits it for 80 AdamW steps to a
generated image of three text lines whose boxes it knows, then detects and draws the text: targets,
loss, training and post-processing end to end, offline, in about a minute on a CPU. With ``--image`` (your own
photo) it needs a trained ``--model``: a preset's random weights are only ever used after fitting them here.

Writes input.png, detections.png (polygons and scores drawn), text_map.png (the text map the outputs imply,
instances in colours for PANet, unsure pixels hatched) and detections.json
(polygons as lists of (x, y) in original pixels, scores) to --output-dir: a new folder (``--overwrite`` replaces a
used one), written beside it and swapped in when complete.

  freereal-demo [--model PRESET|DIR|HUB_ID] [--image IMAGE] [--output-dir DIR] [--overwrite] [--long-side N]
                [--fit-steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from .args import check_output_folder

TEXT_LINES = ("FreeReal", "scene text", "DBNet 2026")


def generated_image(height: int = 320, width: int = 480, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """An ``H x W x 3`` uint8 RGB image of a few dark text lines on a light, noisy background, and the
    lines' boxes (``4 x 2`` ``(x, y)`` polygons, clockwise from the top left)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(225, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    boxes = []
    for i, text in enumerate(TEXT_LINES):
        x, y = 30 + 40 * i, 80 + 90 * i
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.6, 3)
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, 1.6, (20, 30, 60), 3, cv2.LINE_AA)
        boxes.append(np.array([[x - 4, y - h - 4], [x + w + 4, y - h - 4], [x + w + 4, y + base], [x - 4, y + base]],
                              np.float32))
    return image, boxes


def fit(model: torch.nn.Module, pixel_values: torch.Tensor, polygons: list[np.ndarray], scale: float, steps: int
        ) -> list[float]:
    """A few AdamW steps on one image with known text polygons (original pixels, ``scale`` = resized /
    original): shows targets, loss and training working end to end. Returns the losses."""
    size = tuple(pixel_values.shape[2:])
    targets = model.build_targets([p * scale for p in polygons], [False] * len(polygons), size)
    labels = {k: torch.from_numpy(v)[None] for k, v in targets.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def to_input_view(image: np.ndarray, inputs: dict) -> np.ndarray:
    """``image`` resized as the processor resized it and padded like ``pixel_values`` (``H' x W' x 3`` uint8)."""
    h, w = inputs["pixel_values"].shape[2:]
    sx, sy = (float(v) for v in inputs["scale_factors"][0])
    resized = cv2.resize(image, (round(image.shape[1] * sx), round(image.shape[0] * sy)))
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[:resized.shape[0], :resized.shape[1]] = resized[:h, :w]
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18", help="preset name, local folder or Hub id (dbnet_r18)")
    parser.add_argument("--image", help="image file (default: a generated image of text)")
    parser.add_argument("--output-dir", default="outputs/demo", help="where to write (outputs/demo)")
    parser.add_argument("--overwrite", action="store_true", help="replace an --output-dir that is not empty")
    parser.add_argument("--long-side", type=int, default=480, help="resize the long side to this (480)")
    parser.add_argument("--fit-steps", type=int, default=None,
                        help="on the generated image, first fit the model to its known text for this many steps "
                             "(default 80 for a preset, 0 for a trained model or your own --image)")
    args = parser.parse_args(argv)
    if args.long_side < 32 or (args.fit_steps is not None and args.fit_steps < 0):
        parser.error(f"--long-side must be at least 32 and --fit-steps 0 or more, got {args.long_side}, {args.fit_steps}")
    check_output_folder(parser, args.output_dir, args.overwrite, "--output-dir")

    from .args import report_errors

    return report_errors("freereal-demo", lambda: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .. import PRESETS, TextDetectionImageProcessor
    from ..glyphmix.preview import level_overlays
    from ..training.common import UsageError, load_model
    from ..visualize import draw_polygons

    if args.image:
        from ..data.records import RecordError, decode_image

        try:
            image, boxes = decode_image(Path(args.image).read_bytes(), args.image)[0], []
        except (OSError, RecordError) as err:
            print(f"freereal-demo: error: cannot read image {args.image} ({err})", file=sys.stderr)
            return 1
    else:
        image, boxes = generated_image()
    steps = args.fit_steps if args.fit_steps is not None else (80 if boxes and args.model in PRESETS else 0)
    if args.model in PRESETS and not (boxes and steps):
        raise UsageError(f"--model {args.model} is a preset, with random weights: the demo fits it on its generated "
                         f"image (no --image, --fit-steps above 0); to detect text in your own image give a trained "
                         f"model (the folder a run wrote, or a Hub id)")
    torch.manual_seed(0)
    model = load_model(args.model, allow_fresh=True)
    processor = TextDetectionImageProcessor.for_config(model.config, args.long_side)
    inputs = processor(image)
    if steps and boxes:
        losses = fit(model, inputs["pixel_values"], boxes, float(inputs["scale_factors"][0, 0]), steps)
        print(f"fitted {steps} steps on the generated image: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    model.eval()
    with torch.no_grad():
        outputs = model(inputs["pixel_values"])
    result = model.post_process(outputs, inputs["scale_factors"].tolist())[0]
    out = Path(args.output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))  # swapped in when complete
    try:
        cv2.imwrite(str(staging / "input.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        drawn = draw_polygons(image, result["polygons"], result["scores"])
        cv2.imwrite(str(staging / "detections.png"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        spec = model.target_spec
        implied = model.pseudo_targets(outputs)
        view = to_input_view(image, inputs)
        text_map = np.concatenate([drawn[0] for _, drawn in level_overlays(view[None], implied, spec)], axis=1)
        cv2.imwrite(str(staging / "text_map.png"), cv2.cvtColor(text_map, cv2.COLOR_RGB2BGR))
        (staging / "detections.json").write_text(json.dumps(
            {"model": args.model, "polygons": [p.tolist() for p in result["polygons"]], "scores": result["scores"]},
            indent=1))
        if out.exists():  # --overwrite (checked before any work): the old folder goes only now
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{len(result['polygons'])} text regions; wrote {out}/detections.png, detections.json, text_map.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
