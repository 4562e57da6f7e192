"""``freereal-evaluate --model DIR_OR_ID --dataset SPEC``: precision, recall and h-mean (IoU 0.5, MMOCR's rules).

Prints the metric and writes a per-image report (JSON: key, label and prediction counts, the image's
precision/recall/h-mean at the set's best score threshold), worst images first.

  freereal-evaluate --model outputs/finetune/final --dataset data/icdar2015 --split test
  freereal-evaluate --model outputs/finetune/final --dataset demo:real-like:32:7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="local folder or Hub id of a trained detector")
    parser.add_argument("--dataset", default="demo:synthetic:16",
                        help="Hub id, local folder, or demo[:synthetic|real-like|curved][:N][:SEED] (demo:synthetic:16)")
    parser.add_argument("--split", default="test", help="dataset split (test; demo data has only 'train')")
    parser.add_argument("--long-side", type=int, help="resize the long side to this (default: the model's test scale)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=256, help="side of generated demo images (256)")
    parser.add_argument("--report", default="outputs/evaluate/report.json", help="per-image report (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --report file")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.image_size < 32:
        parser.error(f"--image-size must be at least 32, got {args.image_size}")
    if args.long_side is not None and args.long_side < 32:
        parser.error(f"--long-side must be at least 32, got {args.long_side}")
    from .args import check_output_file, report_errors

    check_output_file(parser, args.report, args.overwrite, "--report")

    return report_errors("freereal-evaluate", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from ..data.records import Report
    from ..image_processing import TextDetectionImageProcessor
    from ..training.common import load_model, load_text_dataset, parse_demo_spec
    from ..training.evaluation import evaluate_detector
    from ..outputs import write_then_swap

    model = load_model(args.model).eval()
    processor = TextDetectionImageProcessor.for_config(model.config, args.long_side)
    split = "train" if parse_demo_spec(args.dataset) is not None else args.split
    dataset = load_text_dataset(args.dataset, split, image_size=args.image_size)
    problems = Report()
    result = evaluate_detector(model, dataset, processor, batch_size=args.batch_size, progress=True, report=problems)
    m = result.metrics
    if m["hmean"] != m["hmean"]:  # NaN: nothing to score against
        print(f"freereal-evaluate: error: {args.dataset} ({split}) has no labeled text to score against; "
              f"no precision, recall or h-mean", file=sys.stderr)
        return 2
    print(f"precision {m['precision']:.4f}  recall {m['recall']:.4f}  h-mean {m['hmean']:.4f}  "
          f"(score threshold {m['score_thr']:.1f}, {len(result.per_image)} images)")
    if problems.counts:
        print(problems.summary())
    path = Path(args.report)
    per_image = sorted(result.per_image, key=lambda r: (r["hmean"] != r["hmean"], r["hmean"]))
    text = json.dumps({"model": args.model, "dataset": args.dataset, "split": split, "metrics": m,
                       "per_image": per_image}, indent=1)
    write_then_swap(path, lambda partial: partial.write_text(text))
    print(f"per-image report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
