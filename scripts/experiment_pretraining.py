#!/usr/bin/env python
"""Does FreeReal pre-training help? A controlled experiment on the demo data (a report, not a test).

Same detector (``--model``, any preset; DBNet-R18 by default; fresh initialisation), same seeds and budgets; three starting points:

  (a) no pre-training;
  (b) conventional pre-training on synthetic data only (supervised on word polygons, all steps);
  (c) FreeReal: a third of the steps supervised on synthetic data (character regions), then student/teacher
      with GlyphMix on unlabeled real-like images.

Each is then fine-tuned on a few labeled real-like images and evaluated (h-mean, IoU 0.5) on held-out
real-like images. The unlabeled real-like images of (c), the fine-tuning images and the held-out images are
three disjoint demo sets (different seeds).

  python scripts/experiment_pretraining.py [--model dbnet_r18|psenet_r50|panet_r18|...] [--pretrain-steps 150] [--finetune-steps 120] [--crop-size 256]
      [--output-dir outputs/experiment]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from freereal_hf.training import FinetuneArguments, PretrainArguments, finetune, pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18", help="preset of the detector (dbnet_r18)")
    parser.add_argument("--pretrain-steps", type=int, default=150)
    parser.add_argument("--finetune-steps", type=int, default=120)
    parser.add_argument("--finetune-images", type=int, default=8)
    parser.add_argument("--eval-images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop-size", type=int, default=256, help="training crop of both phases (256)")
    parser.add_argument("--output-dir", default="outputs/experiment")
    args = parser.parse_args()
    out = Path(args.output_dir)
    common = dict(synthetic_dataset="demo:synthetic:64", real_datasets=["demo:real-like:64:3"], crop_size=args.crop_size,
                  max_steps=args.pretrain_steps, seed=args.seed, model=args.model, ema_momentum=0.99, report_to="none", save_steps=0)
    starts = {"(a) no pre-training": args.model}
    runs = {"(b) synthetic only": PretrainArguments(output_dir=str(out / "pretrain_synthetic"), char_mode=False,
                                                    stage1_steps=args.pretrain_steps, save_student=True, **common),
            "(c) FreeReal": PretrainArguments(output_dir=str(out / "pretrain_freereal"), **common)}
    for name, run in runs.items():
        print(f"== pre-training {name}")
        starts[name] = pretrain(run)["final_dir"]
    results = {}
    for name, model in starts.items():
        print(f"== fine-tuning {name} from {model}")
        tag = name.split(")")[0].strip("(")
        r = finetune(FinetuneArguments(
            output_dir=str(out / f"finetune_{tag}"), model=model, train_dataset=f"demo:real-like:{args.finetune_images}:5",
            eval_dataset=f"demo:real-like:{args.eval_images}:9", max_steps=args.finetune_steps, learning_rate=2e-3,
            warmup_steps=10, crop_size=args.crop_size, scale_min=0.8, scale_max=1.25, eval_steps=0, save_steps=0,
            eval_long_side=256, report_to="none", seed=args.seed))
        results[name] = r["metrics"]
    print(f"\n{args.model}; crop {args.crop_size}; pre-training {args.pretrain_steps} steps, fine-tuning {args.finetune_steps} steps on "
          f"{args.finetune_images} labeled real-like images, evaluated on {args.eval_images} held-out ones\n")
    print("| start | precision | recall | h-mean |\n|---|---:|---:|---:|")
    for name, m in results.items():
        print(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['hmean']:.4f} |")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
