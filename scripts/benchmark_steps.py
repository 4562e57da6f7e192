#!/usr/bin/env python
"""One pre-training step and one fine-tuning step, per detector and per speed setting: the table for a GPU.

For every ``--models`` x ``--settings`` (and, with ``--torch-compile``, each setting compiled as well) this runs
``freereal-pretrain`` (stage 2 only: the FreeReal step, teacher + GlyphMix + student + EMA) and
``freereal-finetune`` with ``--profile`` on demo data rendered at the crop size, and prints milliseconds per
step, images per second (the real batch for pre-training) and the share of the step spent waiting for data. The
first step of each run is left out (workers starting, compilation); the device is synchronised at each reading.
The demo images are rendered once, to Parquet folders that every run loads, and each row is printed as soon as
it is measured (a run cut short keeps the rows it finished).

Settings: ``fp32``; ``bf16`` (autocast); ``bf16-cl`` (bf16 with the model and batches in channels-last memory).
Figures of one run compare with each other only: run the whole table in one call on one card.

  python scripts/benchmark_steps.py --models dbnet_r18 dbnet_r50 --batch-size 16 --torch-compile     # a GPU
  python scripts/benchmark_steps.py --models dbnet_r18 --settings fp32 --batch-size 2 --crop-size 64  # CPU check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from freereal_hf import PRESETS
from freereal_hf.data.demo import demo_dataset
from freereal_hf.training.finetune import FinetuneArguments, finetune
from freereal_hf.training.pretrain import PretrainArguments, pretrain

SETTINGS = {"fp32": dict(mixed_precision="no"), "bf16": dict(mixed_precision="bf16"),
            "bf16-cl": dict(mixed_precision="bf16", channels_last=True)}


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def crop(text: str) -> int:
    value = int(text)
    if value < 32 or value % 32:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 32, got {value}")
    return value


def render(folder: Path, domain: str, num_images: int, seed: int, size: int) -> str:
    """The demo dataset as a Hub-like Parquet folder (rendered on the first call); returns its path."""
    if not folder.exists():
        demo_dataset(domain, num_images, seed, size=(size, size)).to_parquet(str(folder / "data" / "train.parquet"))
    return str(folder)


def measure(job: str, model: str, setting: str, compiled: bool, args: argparse.Namespace, tmp: Path) -> dict:
    """One profiled run; returns its step time in ms, images/s and data-wait share."""
    n = args.batch_size * (args.steps + 2)  # one epoch covers the run: no worker restarts in the timing
    real = render(tmp / "real-like", "real-like", n, 1, args.crop_size)
    common = dict(output_dir=str(tmp / f"{model}-{setting}-{compiled}-{job}"), model=model,
                  max_steps=args.steps + 1, batch_size=args.batch_size, crop_size=args.crop_size,
                  image_size=args.crop_size, num_workers=args.num_workers, report_to="none", save_steps=0,
                  profile=True, torch_compile=compiled, **SETTINGS[setting])
    if job == "pretrain":
        synthetic = render(tmp / "synthetic", "synthetic", n, 0, args.crop_size)
        result = pretrain(PretrainArguments(stage1_steps=0, synthetic_dataset=synthetic, real_datasets=[real],
                                            eval_steps=0, **common))
    else:
        result = finetune(FinetuneArguments(train_dataset=real, eval_steps=0, eval_dataset="demo:real-like:1:9",
                                            log_images=0, **common))
    steps = max(1, result["profiled_steps"])
    step = sum(result["timings"].values()) / steps
    return {"ms": 1000 * step, "images_s": args.batch_size / step,
            "wait": result["timings"]["data wait"] / steps / step}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dbnet_r18", "dbnet_r50"], choices=sorted(PRESETS))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--torch-compile", action="store_true", help="also time each setting compiled")
    parser.add_argument("--batch-size", type=positive, default=16)
    parser.add_argument("--crop-size", type=crop, default=640)
    parser.add_argument("--steps", type=positive, default=10, help="timed steps, after one warm-up step")
    parser.add_argument("--num-workers", type=int, default=4, help="DataLoader workers per data stream")
    args = parser.parse_args(argv)
    if args.num_workers < 0:
        parser.error(f"--num-workers must be 0 or more, got {args.num_workers}")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU ({torch.get_num_threads()} threads; bf16 convolutions are slow on CPUs without AMX)"
    print(f"\n{device}; batch {args.batch_size}, {args.crop_size} x {args.crop_size}, {args.steps} timed steps, "
          f"{args.num_workers} workers per stream\n")
    print("| model | setting | pre-training ms/step | real images/s | data wait | fine-tuning ms/step | images/s "
          "| data wait |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for setting in args.settings:
                for compiled in (False, True) if args.torch_compile else (False,):
                    name = setting + (" + compile" if compiled else "")
                    print(f"{model}, {name} ...", file=sys.stderr, flush=True)
                    pre, fine = (measure(job, model, setting, compiled, args, Path(tmp))
                                 for job in ("pretrain", "finetune"))
                    print(f"| {model} | {name} | {pre['ms']:.1f} | {pre['images_s']:.1f} | {100 * pre['wait']:.1f}% "
                          f"| {fine['ms']:.1f} | {fine['images_s']:.1f} | {100 * fine['wait']:.1f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
