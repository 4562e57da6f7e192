#!/usr/bin/env python
"""FCENet speed side by side with MMOCR 1.0.1, in one run: targets, post-processing, forward.

Runs MMOCR through shared/tools/mmocr-reference (built on first use). Each figure is the fastest of --repeat
runs; MMOCR times itself the same way inside its own process. 640 x 640 images with 30 polygons (curved bands,
stars, boxes of every size); results are checked equal to MMOCR's before timing. MMOCR's FCENet targets and
post-processing are plain numpy, OpenCV and shapely (no compiled mmcv op), so the ratios are fair.

  python scripts/benchmark_fcenet.py [--repeat 20] [--forward-repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mmocr_reference import MMOCR, fastest  # noqa: E402
from test_fcenet_vs_mmocr import fce_maps, polygon_case  # noqa: E402

from freereal_hf import config_from_preset  # noqa: E402
from freereal_hf.convert.mmocr import mmocr_to_hf  # noqa: E402
from freereal_hf.models.fcenet import fcenet_post_process, fcenet_targets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--forward-repeat", type=int, default=3, help="0: skip the forward pass")
    args = parser.parse_args()
    mmocr = MMOCR(Path(tempfile.mkdtemp(prefix="bench-mmocr-")))
    rows = []

    for size, count in ((640, 30), (1280, 120)):
        polygons, ignored = polygon_case(0, size, size, count)
        ref, ref_s = mmocr.targets("fcenet_r50", size, size, polygons, ignored, repeat=args.repeat)
        ours, ours_s = fastest(lambda: fcenet_targets(polygons, ignored, (size, size)), args.repeat)
        for level, maps in enumerate(ours):
            theirs = ref[f"level{level}"][0]
            assert all(np.array_equal(maps[name], theirs[i]) for i, name in enumerate(("text", "center", "mask"))), \
                "FCENet targets differ from MMOCR's"
        rows.append((f"FCENet targets ({size}x{size}, {len(polygons)} polygons)", ref_s, ours_s))

    for preset in ("fcenet_r50", "fcenet_r50_dcnv2"):
        cls, reg = fce_maps(1, 640, 640, 30, noise=0.3)  # a trained model's confidence: few spurious blobs
        params = config_from_preset(preset).post_process_params()
        ref, ref_s = mmocr.postprocess_levels(preset, cls, reg, repeat=args.repeat)
        ours, ours_s = fastest(lambda: fcenet_post_process(cls, reg, **params), args.repeat)
        assert len(ours["polygons"]) == len(ref["polygons"]), "FCENet post-processing differs from MMOCR's"
        np.testing.assert_allclose(ours["scores"], ref["scores"], atol=1e-5)
        rows.append((f"post-processing {preset} ({params['text_repr_type']}, {len(ours['polygons'])} found)",
                     ref_s, ours_s))

    x = np.random.default_rng(2).normal(size=(1, 3, 640, 640)).astype(np.float32)
    for preset in ("fcenet_r50", "fcenet_r50_dcnv2") if args.forward_repeat > 0 else ():
        ckpt = mmocr.checkpoint(preset)
        model = mmocr_to_hf(ckpt, preset).eval()
        ref, ref_s = mmocr.forward(preset, ckpt, x, repeat=args.forward_repeat)
        with torch.no_grad():
            out, ours_s = fastest(lambda: model(torch.from_numpy(x)), args.forward_repeat)
        assert np.abs(out.cls_res[0].numpy() - ref["0.cls_res"]).max() <= 1e-4, "forward differs from MMOCR's"
        rows.append((f"forward {preset} (1x3x640x640, {torch.get_num_threads()} threads)", ref_s, ours_s))

    print(f"{'':56s} {'MMOCR ms':>10s} {'ours ms':>10s} {'speed-up':>9s}")
    for name, theirs, mine in rows:
        print(f"{name:56s} {theirs * 1e3:10.2f} {mine * 1e3:10.2f} {theirs / mine:8.2f}x")


if __name__ == "__main__":
    main()
