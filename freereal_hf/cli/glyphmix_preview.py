"""``freereal-glyphmix-preview``: a PNG grid of what the student sees in FreeReal pre-training.

Rows: real images (strong view), synthetic images (glyph masks tinted red), GlyphMix images, and GlyphMix
images with their mixed targets drawn (text red, ignored pixels hatched grey). The real side's targets
come from a teacher (``--model``, a pre-trained folder or Hub id) or, with ``--real-targets labels``, from
the real set's own labels (the default for a fresh preset, whose predictions would be noise).

  freereal-glyphmix-preview                                   # demo data -> outputs/glyphmix_preview.png
  freereal-glyphmix-preview --model outputs/pretrain/final --real-dataset me/mlt17 --label-mask stroke
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ..glyphmix.mixing import BOX_SELECTIONS, LABEL_MASKS

    parser = argparse.ArgumentParser(prog="freereal-glyphmix-preview", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dbnet_r18", help="preset, local folder or Hub id (dbnet_r18)")
    parser.add_argument("--synthetic-dataset", default="demo:synthetic:8", help="SynthText-schema data (demo:synthetic:8)")
    parser.add_argument("--real-dataset", default="demo:real-like:8:1", help="real images (demo:real-like:8:1)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--real-targets", choices=("auto", "teacher", "labels"), default="auto",
                        help="teacher pseudo-targets or the real labels (auto: labels for a fresh preset)")
    parser.add_argument("--num-images", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--label-mask", choices=LABEL_MASKS, default="region")
    parser.add_argument("--box-selection", choices=BOX_SELECTIONS, default="text_balanced")
    parser.add_argument("--no-char-mode", action="store_true", help="synthetic targets from word polygons")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="outputs/glyphmix_preview.png")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    args = parser.parse_args(argv)
    if args.num_images < 1 or args.crop_size < 32 or args.crop_size % 32:
        parser.error(f"--num-images must be at least 1 and --crop-size a positive multiple of 32, got "
                     f"{args.num_images}, {args.crop_size}")

    from .args import check_output_file, report_errors

    check_output_file(parser, args.output, args.overwrite, "--output")
    import cv2

    if not cv2.haveImageWriter(args.output):
        parser.error(f"--output {args.output}: OpenCV writes no such image format; give a .png or .jpg path")
    return report_errors("freereal-glyphmix-preview", lambda: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import cv2
    import torch
    from torch.utils.data import default_collate

    from .. import PRESETS
    from ..data.transforms import AugmentConfig, normalize_batch, training_view
    from ..glyphmix import GlyphMixConfig, RealViews, SyntheticSample, add_glyph_masks, glyphmix, glyphmix_grid
    from ..training.common import load_model, load_text_dataset
    from ..outputs import write_then_swap

    model = load_model(args.model, seed=args.seed, allow_fresh=True).eval()
    use_labels = args.real_targets == "labels" or (args.real_targets == "auto" and args.model in PRESETS)
    augment = AugmentConfig(size=args.crop_size, scale_range=(0.8, 1.25))
    config = GlyphMixConfig(label_mask=args.label_mask, box_selection=args.box_selection,
                            char_mode=not args.no_char_mode)
    synthetic = training_view(add_glyph_masks(load_text_dataset(args.synthetic_dataset, args.split)),
                              SyntheticSample(model.build_targets, model.target_region, augment, config.char_mode,
                                              seed=args.seed))
    real = training_view(load_text_dataset(args.real_dataset, args.split),
                         RealViews(augment, build_targets=model.build_targets if use_labels else None,
                                   seed=args.seed + 1))
    n = min(args.num_images, len(synthetic), len(real))
    if n < 1:
        parser.error("both datasets need at least one image")
    # batches as the training DataLoader makes them, images normalised as the training loop does
    syn = normalize_batch(default_collate([synthetic[i] for i in range(n)]))
    rea = normalize_batch(default_collate([real[i] for i in range(n)]))
    if use_labels:
        targets = {k: rea[k] for k in model.target_spec.names}
        print("real-side targets: the real set's own labels (a fresh model's predictions would be noise)")
    else:
        with torch.no_grad():
            targets = model.pseudo_targets(model(rea["weak_pixel_values"]))
        print(f"real-side targets: pseudo-targets of {args.model}")
    generator = torch.Generator().manual_seed(args.seed)
    mix = glyphmix(rea["strong_pixel_values"], targets, syn["pixel_values"], {k: syn[k] for k in targets},
                   syn["glyph_mask"], syn["text_region"], config, model.target_spec, generator)
    grid = glyphmix_grid(rea["strong_pixel_values"], syn["pixel_values"], mix.images, mix.targets, model.target_spec,
                         syn["glyph_mask"], max_images=n)
    out = Path(args.output)
    ok, encoded = cv2.imencode(out.suffix, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the grid as {out.suffix}")
    write_then_swap(out, lambda partial: partial.write_bytes(encoded.tobytes()))
    print(f"wrote {out} ({grid.shape[1]} x {grid.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
