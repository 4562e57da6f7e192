"""``freereal-convert``: weights between freereal_hf and MMOCR 1.x.

  freereal-convert to-hf MMOCR_CKPT OUT_DIR --model dbnet_r18|dbnet_r50|dbnet_r50_dcnv2
  freereal-convert to-mmocr MODEL_DIR_OR_ID OUT.pth
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
    to_mm = sub.add_parser("to-mmocr", help="save_pretrained folder or Hub id -> MMOCR checkpoint")
    to_mm.add_argument("model", help="local folder or Hub id (the model kind is read from its config)")
    to_mm.add_argument("output", help="MMOCR checkpoint file to write (.pth)")
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
