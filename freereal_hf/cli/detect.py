"""``freereal-detect IMAGE... --model DIR_OR_ID``: detect text, write JSON and drawn PNGs.

Writes OUTPUT_DIR/detections.json (per image: file, polygons as lists of (x, y) original pixels, scores)
and OUTPUT_DIR/<image name>.png with the polygons drawn. Images that cannot be read are reported and
skipped.

  freereal-detect photo1.jpg photo2.jpg --model outputs/finetune/final --output-dir outputs/detect
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--model", required=True, help="local folder or Hub id of a trained detector")
    parser.add_argument("--output-dir", default="outputs/detect", help="where to write (outputs/detect)")
    parser.add_argument("--long-side", type=int, help="resize the long side to this (default: the model's test scale)")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.long_side is not None and args.long_side < 32:
        parser.error(f"--long-side must be at least 32, got {args.long_side}")
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        parser.error(f"--output-dir {args.output_dir} is a file; give a folder")

    from .args import report_errors

    return report_errors("freereal-detect", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from ..data.records import RecordError, decode_image
    from ..image_processing import TextDetectionImageProcessor
    from ..training.common import load_model
    from ..training.evaluation import detect
    from ..visualize import draw_polygons

    model = load_model(args.model).eval()
    processor = (TextDetectionImageProcessor(scale=None, long_side=args.long_side) if args.long_side
                 else TextDetectionImageProcessor.for_config(model.config))
    images, names, failed = [], [], 0
    for path in args.images:
        try:  # the one decoder of the package (CMYK, 16-bit, gray+alpha... handled as in prepare)
            images.append(decode_image(Path(path).read_bytes(), path)[0])
        except (OSError, RecordError) as err:
            print(f"freereal-detect: cannot read {path} ({err}), skipped", file=sys.stderr)
            failed += 1
            continue
        names.append(path)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = detect(model, images, processor, args.batch_size)
    report, used = [], set()
    for name, image, result in zip(names, images, results):
        drawn = draw_polygons(image, result["polygons"], result["scores"])
        picture = Path(name).stem + ".png"
        n = 1
        while picture in used:  # photo.jpg in two folders: photo.png, photo_2.png
            n += 1
            picture = f"{Path(name).stem}_{n}.png"
        used.add(picture)
        cv2.imwrite(str(out / picture), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        report.append({"file": name, "drawn": picture, "polygons": [p.tolist() for p in result["polygons"]],
                       "scores": [float(s) for s in result["scores"]]})
        print(f"{name}: {len(result['polygons'])} text regions")
    (out / "detections.json").write_text(json.dumps({"model": args.model, "images": report}, indent=1))
    print(f"wrote {out}/detections.json and {len(report)} PNG(s)" + (f"; {failed} image(s) skipped" if failed else ""))
    return 1 if not report else 0


if __name__ == "__main__":
    sys.exit(main())
