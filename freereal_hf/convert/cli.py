"""``freereal-convert``: weights between freereal_hf and MMOCR 1.x, and ONNX export.

  freereal-convert to-hf MMOCR_CKPT OUT_DIR --model PRESET [--overwrite]
  freereal-convert to-mmocr MODEL_DIR_OR_ID OUT.pth [--overwrite]
  freereal-convert to-onnx MODEL_DIR_OR_ID OUT.onnx [--opset 19] [--overwrite]

to-onnx writes a graph with dynamic batch, height and width (multiples of 32), checked with ONNX Runtime
against torch at a size other than the export size before it is written; ``freereal-detect --onnx OUT.onnx``
runs it. The graph comes from a copy of the model with its batch norms folded, DBNet's transposed convolutions
as 1x1 convolutions and the necks' resizes at constant scales (faster in ONNX Runtime; the check compares with
the model itself, and the line printed says how many of each were rewritten).
"""

from __future__ import annotations

import argparse
import sys

from ..models import PRESETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freereal-convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    to_hf = sub.add_parser("to-hf", help="MMOCR checkpoint -> save_pretrained folder")
    to_hf.add_argument("checkpoint", help="MMOCR 1.x checkpoint (.pth)")
    to_hf.add_argument("output_dir", help="folder to write (config.json, model.safetensors, preprocessor_config.json)")
    to_hf.add_argument("--model", required=True, choices=sorted(PRESETS), help="the MMOCR variant of the checkpoint")
    to_hf.add_argument("--overwrite", action="store_true", help="write into an output folder that is not empty")
    to_mm = sub.add_parser("to-mmocr", help="save_pretrained folder or Hub id -> MMOCR checkpoint")
    to_mm.add_argument("model", help="local folder or Hub id (the model kind is read from its config)")
    to_mm.add_argument("output", help="MMOCR checkpoint file to write (.pth)")
    to_mm.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    to_onnx = sub.add_parser("to-onnx", help="save_pretrained folder or Hub id -> ONNX graph")
    to_onnx.add_argument("model", help="local folder or Hub id")
    to_onnx.add_argument("output", help="the .onnx file to write")
    to_onnx.add_argument("--opset", type=int, default=19, help="ONNX opset (19, the default, is the first with "
                         "DeformConv, which DCNv2 presets need)")
    to_onnx.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if args.command == "to-onnx":
        return _to_onnx(parser, args)

    from ..cli.args import check_output_file, check_output_folder

    if args.command == "to-hf":
        check_output_folder(parser, args.output_dir, args.overwrite, "OUT_DIR", with_overwrite="write into it")
    else:
        check_output_file(parser, args.output, args.overwrite, "OUT.pth")
    from .mmocr import CheckpointMismatchError, hf_to_mmocr, mmocr_to_hf

    try:
        if args.command == "to-hf":
            mmocr_to_hf(args.checkpoint, args.model, args.output_dir)
            print(f"wrote {args.output_dir} ({args.model})")
        else:
            path = hf_to_mmocr(args.model, args.output)
            print(f"wrote {path}")
    except (CheckpointMismatchError, ValueError, OSError) as err:
        print(f"freereal-convert: error: {err}", file=sys.stderr)
        return 1
    return 0


def _to_onnx(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from pathlib import Path

    output = Path(args.output)
    if args.opset < 13:
        parser.error(f"--opset must be at least 13, got {args.opset}")
    if output.is_dir():
        parser.error(f"{args.output} is a folder; give the .onnx file to write")
    if output.exists() and not args.overwrite:
        parser.error(f"{args.output} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        parser.error(f"{output.parent} is not a folder")

    from ..cli.args import report_errors
    from ..onnx_export import export_onnx
    from ..training.common import load_model

    def run() -> int:
        model = load_model(args.model)
        try:
            report = export_onnx(model, output, opset=args.opset, overwrite=args.overwrite)
        except (ValueError, RuntimeError) as err:
            print(f"freereal-convert: error: {err}", file=sys.stderr)
            return 1
        done = report["rewrites"]
        print(f"wrote {report['path']} (opset {report['opset']}; outputs {', '.join(report['outputs'])}; "
              f"{done['folded_batch_norms']} batch norms folded, {done['transposed_pairs']} transposed-convolution "
              f"pairs as 1x1 convolutions, {done['constant_resizes']} resizes with constant scales; ONNX Runtime vs "
              f"torch at {report['check_size']}: {report['max_relative_difference']:.2g} relative)")
        return 0

    return report_errors("freereal-convert", run)


if __name__ == "__main__":
    sys.exit(main())
