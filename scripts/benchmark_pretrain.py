#!/usr/bin/env python
"""Time of one FreeReal pre-training step, split into its parts, measured inside the real loop.

Runs ``freereal-pretrain --profile`` (the device is synchronised at each reading; the first step is left
out as warm-up) on demo data rendered at the crop size, and prints each part's milliseconds and share of
the step, with the two targets: GlyphMix + EMA update under 5% of the step, data wait under 5%.

  python scripts/benchmark_pretrain.py                                   # CPU: batch 4, 640 x 640, DBNet-R18
  python scripts/benchmark_pretrain.py --model dbnet_r50 --batch-size 16 --mixed-precision bf16   # a GPU
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from freereal_hf.training.pretrain import PretrainArguments, pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=640)
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after one warm-up step)")
    parser.add_argument("--mixed-precision", default="no")
    parser.add_argument("--num-workers", type=int, default=PretrainArguments.num_workers,
                        help="DataLoader workers per stream (default: the loop's default)")
    args = parser.parse_args()
    n = args.batch_size * (args.steps + 2)  # one epoch covers the run: no worker restarts in the timing
    with tempfile.TemporaryDirectory() as out:
        result = pretrain(PretrainArguments(
            output_dir=out, model=args.model, max_steps=args.steps + 1, stage1_steps=0, batch_size=args.batch_size,
            crop_size=args.crop_size, image_size=args.crop_size, synthetic_dataset=f"demo:synthetic:{n}",
            real_datasets=[f"demo:real-like:{n}:1"], mixed_precision=args.mixed_precision,
            num_workers=args.num_workers, report_to="none", save_steps=0, profile=True))
    t = result["timings"]
    step = sum(t.values())
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{args.model}, batch {args.batch_size}, {args.crop_size} x {args.crop_size}, precision "
          f"{args.mixed_precision}, {args.num_workers} workers per stream, {device}; {result['profiled_steps']} steps")
    print(result["profile"])
    mix_ema = (t["GlyphMix"] + t["EMA update"]) / step
    wait = t["data wait"] / step
    print(f"GlyphMix + EMA: {100 * mix_ema:.2f}% of the step (target < 5%: {'met' if mix_ema < 0.05 else 'NOT met'})")
    print(f"data wait: {100 * wait:.2f}% of the step (target < 5%: {'met' if wait < 0.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
