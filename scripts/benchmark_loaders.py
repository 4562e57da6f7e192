#!/usr/bin/env python
"""Can the pre-training data pipeline feed a GPU? The loaders' per-sample work alone, on one core.

Times the two transforms pre-training runs in its DataLoader workers, on demo images rendered at ``--size``
(640 x 640 by default) with ``--crop`` crops, their bytes stored as JPEG (quality 95) the way SynthText and camera
photos are, or as PNG (``--image-format png``, the demo data's own format; PNG decodes about four times slower):

- real: ``glyphmix.views.RealViews`` (decode, one random geometry, the weak view, the strong view's colour
  jitter / blur / grayscale / noise / JPEG; both views leave as uint8, normalised later on the device);
- synthetic: ``glyphmix.views.SyntheticSample`` (decode, the stored glyph mask, geometry of image, mask and
  character quads, the detector's targets from the quads (char mode), the text region).

One thread, the best of ``--repeat`` passes; then where the time goes, measured by wrapping each part; then the
same transforms through the training DataLoader (``training.common.make_loader``) with ``--workers`` worker
processes and batches of ``--batch-size``, as the trainer gets them: images/s delivered to the main process and
per worker, which adds collation and the copies through shared memory to the per-sample work. The goal
(issue 14): at least 40 images/s per core, so that 16 cores feed 600 images/s.

  python scripts/benchmark_loaders.py [--model dbnet_r18] [--images 32] [--size 640] [--crop 640] [--image-format jpeg]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any, Callable

import cv2
import numpy as np
import torch

from datasets import Dataset

from freereal_hf.data import transforms
from freereal_hf.data.demo import demo_dataset
from freereal_hf.data.transforms import AugmentConfig, training_view
from freereal_hf.glyphmix import views
from freereal_hf.glyphmix.masks import add_glyph_masks
from freereal_hf.training.common import load_model, make_loader

SPENT: dict[str, float] = defaultdict(float)


ACTIVE: set[str] = set()


def timed(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, its time added to ``SPENT[part]`` (the outermost call only: parts nest, e.g. geometry)."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if part in ACTIVE:
            return fn(*args, **kwargs)
        ACTIVE.add(part)
        tic = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[part] += time.perf_counter() - tic
            ACTIVE.discard(part)
    return wrapper


def rate(transform: Any, rows: list[dict], repeat: int) -> float:
    """Images per second of ``transform.one`` over ``rows`` (best pass)."""
    best = float("inf")
    for epoch in range(repeat):
        transform.epoch = epoch
        tic = time.perf_counter()
        for row in rows:
            transform.one(row)
        best = min(best, time.perf_counter() - tic)
    return len(rows) / best


def delivered(dataset: Dataset, transform: Any, workers: int, batch_size: int) -> float:
    """Images per second that the training DataLoader hands the main process, the first batch (workers
    starting) left out."""
    loader = make_loader(training_view(dataset, transform), batch_size, workers, False, 0)
    batches = iter(loader)
    next(batches)
    tic, count = time.perf_counter(), 0
    for batch in batches:
        count += len(batch["key"])
    return count / (time.perf_counter() - tic)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18", help="the detector whose targets are built (dbnet_r18)")
    parser.add_argument("--images", type=int, default=32, help="images per stream")
    parser.add_argument("--size", type=int, default=640, help="side of the rendered demo images")
    parser.add_argument("--crop", type=int, default=640, help="training crop side (a multiple of 32)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg", help="how the image bytes are stored")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the delivered rates (0: skip)")
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch for the delivered rates")
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeat < 1 or args.size < 32 or args.crop < 32 or args.crop % 32:
        parser.error("--images and --repeat at least 1; --size at least 32; --crop a multiple of 32")
    if args.workers < 0 or args.batch_size < 1 or args.images < 2 * args.batch_size:
        parser.error("--workers 0 or more; --batch-size at least 1, and --images at least twice --batch-size")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    model = load_model(args.model, seed=0, allow_fresh=True)
    augment = AugmentConfig(size=args.crop)
    synthetic = add_glyph_masks(demo_dataset("synthetic", args.images, seed=0, size=(args.size, args.size)))
    real = demo_dataset("real-like", args.images, seed=1, size=(args.size, args.size))
    real = real.cast_column("image", real.features["image"].__class__(decode=False))
    synthetic_rows, real_rows = [synthetic[i] for i in range(len(synthetic))], [real[i] for i in range(len(real))]
    if args.image_format == "jpeg":
        for row in synthetic_rows + real_rows:
            image = cv2.imdecode(np.frombuffer(row["image"]["bytes"], np.uint8), cv2.IMREAD_COLOR)
            row["image"] = {"bytes": cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), "path": None}
    real_tf = views.RealViews(augment, views.StrongAugment(), seed=1)
    synthetic_tf = views.SyntheticSample(model.build_targets, model.target_region, augment, char_mode=True, seed=0)
    rates = {"real (weak + strong view)": rate(real_tf, real_rows, args.repeat),
             "synthetic (targets + glyph mask)": rate(synthetic_tf, synthetic_rows, args.repeat)}
    both = 2 / sum(1 / r for r in rates.values())  # one real and one synthetic image per pair, alternating
    print(f"{args.model}; {args.images} {args.image_format.upper()} images per stream of {args.size} x {args.size}, "
          f"crop {args.crop}; one thread, "
          f"best of {args.repeat}\n")
    print("| stream | images/s/core |\n|---|---:|")
    for name, r in rates.items():
        print(f"| {name} | {r:.1f} |")
    print(f"| both, one of each in turn | {both:.1f} |")
    print(f"\ngoal >= 40 images/s/core: {'met' if both >= 40 else 'NOT met'}; 16 cores: {16 * both:.0f} images/s\n")

    # through the DataLoader, measured before the parts below are wrapped (the workers inherit the wrappers)
    delivered_rates = {name: delivered(Dataset.from_list(rows, features=features), tf, args.workers, args.batch_size)
                       for name, tf, rows, features in (("real", real_tf, real_rows, real.features),
                                                        ("synthetic", synthetic_tf, synthetic_rows,
                                                         synthetic.features))} if args.workers else {}

    # where the time goes: the parts wrapped, one more pass each
    views.load_sample = timed("decode", transforms.load_sample)
    views.decode_mask = timed("decode", views.decode_mask)
    views.sample_geometry = timed("geometry", transforms.sample_geometry)
    views.apply_geometry = timed("geometry", transforms.apply_geometry)
    transforms.Geometry.image = timed("geometry", transforms.Geometry.image)
    views.StrongAugment.__call__ = timed("colour (strong view)", views.StrongAugment.__call__)
    views.to_pixels = timed("to uint8 tensors", transforms.to_pixels)
    synthetic_tf.build_targets = timed("targets", model.build_targets)
    synthetic_tf.target_region = timed("text region", model.target_region)
    for name, tf, rows in (("real", real_tf, real_rows), ("synthetic", synthetic_tf, synthetic_rows)):
        SPENT.clear()
        tic = time.perf_counter()
        for row in rows:
            tf.one(row)
        total = time.perf_counter() - tic
        print(f"{name}: {1000 * total / len(rows):.1f} ms/image")
        print("| part | ms/image | share |\n|---|---:|---:|")
        for part, spent in sorted(SPENT.items(), key=lambda kv: -kv[1]):
            print(f"| {part} | {1000 * spent / len(rows):.1f} | {100 * spent / total:.0f}% |")
        rest = total - sum(SPENT.values())
        print(f"| the rest (tensors, dicts) | {1000 * rest / len(rows):.1f} | {100 * rest / total:.0f}% |\n")
    if args.workers:
        print(f"through the DataLoader: {args.workers} workers, batches of {args.batch_size}, all images after the "
              f"first batch\n\n| stream | images/s | per worker |\n|---|---:|---:|")
        for name, got in delivered_rates.items():
            print(f"| {name} | {got:.1f} | {got / args.workers:.1f} |")


if __name__ == "__main__":
    main()
