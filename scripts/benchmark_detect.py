#!/usr/bin/env python
"""Detection over a folder, end to end: ``freereal-detect`` against MMOCR 1.0.1's ``TextDetInferencer``.

One folder of ``--images`` JPEG photos of mixed sizes (about 1 MP: 1280 x 800, 1024 x 1024, 960 x 1280 and
1152 x 864, demo real-like renders), one DBNet-R18, the same weights on both sides (ours converted with
``hf_to_mmocr``), the same thread count (``--threads``, default all cores), the same batch size. Each side
decodes, resizes and normalises, runs the forward pass, post-processes and writes one JSON of predictions per
image; the wall time of the whole folder gives images/s. MMOCR runs in its own venv (shared/tools/mmocr-reference,
built on first use); its timing starts after the inferencer is built and warmed up on one image, ours includes
loading the model (so the ratio is, if anything, low for us). Also timed: ``freereal-detect --onnx`` (ONNX
Runtime, the graph written by ``freereal-convert to-onnx``). The convolutions' multiply-accumulates over the
folder are counted once (hooks on one forward per input size), and each side's rate over its whole run is
printed: the work is the same on every side, so this says how near each comes to the CPU's arithmetic peak.

The weights: ``--model DIR`` (a saved detector), or, by default, DBNet-R18 fine-tuned for ``--train-steps`` on
demo real-like images (cached in ``--work-dir``), so that post-processing sees real detections rather than the
noise of random weights. The detections of both sides are counted and must agree within 2 %.

  python scripts/benchmark_detect.py [--images 64] [--batch-size 1] [--threads N] [--work-dir outputs/bench_detect]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mmocr_reference import MMOCR, tool_dir  # noqa: E402

MARK = ".benchmark_detect"  # a work folder this benchmark made (it caches there and replaces its own outputs)
SIZES = ((800, 1280), (1024, 1024), (1280, 960), (864, 1152))  # (height, width), about 1 MP each

_MMOCR_FOLDER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[5])
import torch
torch.set_num_threads(int(sys.argv[3]))
import mmocr_lite
from mmocr.utils import register_all_modules
register_all_modules(); mmocr_lite.install()
from mmocr.apis import TextDetInferencer
inferencer = TextDetInferencer(weights=sys.argv[1], device="cpu")
folder, batch, out = sys.argv[2], int(sys.argv[4]), sys.argv[6]
first = sorted(__import__("os").listdir(folder))[0]
inferencer(folder + "/" + first, return_vis=False)  # warm-up
tic = time.perf_counter()
result = inferencer(folder, batch_size=batch, return_vis=False, save_pred=True, out_dir=out)
seconds = time.perf_counter() - tic
print(json.dumps({"seconds": seconds, "found": sum(len(p["polygons"]) for p in result["predictions"])}))
"""


def make_folder(folder: Path, count: int) -> None:
    """``count`` JPEG renders of the demo's real-like domain, cycling through ``SIZES`` (kept between runs)."""
    from freereal_hf.data.demo import render_sample

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"photo_{i:03d}.jpg"
        if not path.exists():
            h, w = SIZES[i % len(SIZES)]
            image = render_sample(np.random.default_rng(1000 + i), "real-like", size=(h, w), max_words=12).image
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def trained_model(work: Path, steps: int) -> Path:
    """DBNet-R18 fine-tuned on 256 x 256 crops of 512 x 512 demo real-like images (cached in ``work/model/final``)."""
    final = work / "model" / "final"
    if not (final / "config.json").exists():
        from freereal_hf.training import FinetuneArguments, finetune

        finetune(FinetuneArguments(output_dir=str(work / "model"), model="dbnet_r18", max_steps=steps,
                                   train_dataset="demo:real-like:64:5", image_size=512, crop_size=256,
                                   eval_steps=0, save_steps=0, report_to="none", overwrite_output_dir=True,
                                   learning_rate=2e-3, warmup_steps=10))
    return final


def ours(folder: Path, out: Path, batch: int, source: list[str]) -> tuple[float, int]:
    """Wall seconds of ``freereal-detect`` over ``folder`` (in this process) and the detections it wrote."""
    from freereal_hf.cli import detect

    if out.exists():
        shutil.rmtree(out)
    tic = time.perf_counter()
    code = detect.main([str(folder), *source, "--output-dir", str(out), "--save", "json", "--batch-size", str(batch)])
    seconds = time.perf_counter() - tic
    assert code == 0, "freereal-detect failed"
    found = sum(len(r["polygons"]) for r in json.loads((out / "detections.json").read_text())["images"])
    return seconds, found


def forward_macs(model_dir: Path, folder: Path) -> float:
    """Multiply-accumulates of the convolutions (transposed included) that one ``detect_only`` forward pass of
    the model makes over every image of ``folder``, each at the size the image processor gives it: the work any
    implementation must do, so MACs per second show how close a side comes to the CPU's arithmetic peak."""
    from freereal_hf.image_processing import TextDetectionImageProcessor
    from freereal_hf.training.common import load_model

    model = load_model(str(model_dir)).eval()
    processor = TextDetectionImageProcessor.for_config(model.config)
    total = [0]

    def count(module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.ConvTranspose2d):  # every input pixel meets every kernel tap
            total[0] += _inputs[0].numel() * module.out_channels // module.groups * module.weight[0, 0].numel()
        else:
            total[0] += output.numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    per_size: dict[tuple[int, ...], int] = {}
    macs = 0
    for path in sorted(folder.iterdir()):
        shape = tuple(processor(cv2.imread(str(path))[..., ::-1].copy(), return_tensors="pt")["pixel_values"].shape)
        if shape not in per_size:
            total[0] = 0
            with torch.no_grad():
                model(torch.zeros(shape), detect_only=True)
            per_size[shape] = total[0]
        macs += per_size[shape]
    for hook in hooks:
        hook.remove()
    return macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--model", help="a saved DBNet (default: one fine-tuned here on demo data, cached)")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--work-dir", default="outputs/bench_detect", help="cache and outputs (a folder this "
                        "benchmark made, or a new one)")
    parser.add_argument("--skip-onnx", action="store_true")
    args = parser.parse_args()
    if args.images < 1 or args.batch_size < 1 or args.threads < 1 or args.train_steps < 1:
        parser.error("--images, --batch-size, --threads and --train-steps must be at least 1")
    work = Path(args.work_dir)
    if work.exists() and not work.is_dir():
        parser.error(f"--work-dir {work} is a file")
    if work.is_dir() and any(work.iterdir()) and not (work / MARK).exists():
        parser.error(f"--work-dir {work} is not empty and was not written by this benchmark (it replaces folders "
                     f"there); give another folder")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARK).touch()
    torch.set_num_threads(args.threads)
    model_dir = Path(args.model) if args.model else trained_model(work, args.train_steps)
    folder = work / f"photos_{args.images}"
    make_folder(folder, args.images)
    warm = work / "warm"
    warm.mkdir(parents=True, exist_ok=True)
    shutil.copy(sorted(folder.iterdir())[0], warm / "one.jpg")

    from freereal_hf.convert.mmocr import hf_to_mmocr
    from freereal_hf.training.common import load_model

    mmocr = MMOCR(work / "mmocr")
    weights = work / "mmocr" / "dbnet.pth"
    hf_to_mmocr(load_model(str(model_dir)), weights)
    out = work / "mmocr" / "preds"
    shutil.rmtree(out, ignore_errors=True)
    info = json.loads(mmocr.python_code(_MMOCR_FOLDER, str(weights), str(folder), str(args.threads),
                                        str(args.batch_size), str(tool_dir()), str(out)).strip().splitlines()[-1])
    rows = [("MMOCR TextDetInferencer (torch)", info["seconds"], info["found"])]

    ours(warm, work / "out_warm", 1, ["--model", str(model_dir)])  # numba's cache, first-call costs
    seconds, found = ours(folder, work / "out_torch", args.batch_size, ["--model", str(model_dir)])
    rows.append(("freereal-detect --model (torch)", seconds, found))
    if not args.skip_onnx:
        from freereal_hf.onnx_export import export_onnx

        onnx = work / "dbnet.onnx"  # exported each run: the graph follows the code
        export_onnx(load_model(str(model_dir)).eval(), onnx, overwrite=True)
        ours(warm, work / "out_warm", 1, ["--onnx", str(onnx)])
        seconds, found = ours(folder, work / "out_onnx", args.batch_size, ["--onnx", str(onnx)])
        rows.append(("freereal-detect --onnx (ONNX Runtime)", seconds, found))

    reference = rows[0][1]
    macs = forward_macs(model_dir, folder)
    print(f"\n{args.images} JPEG images of about 1 MP, batch {args.batch_size}, {args.threads} threads, dbnet_r18; "
          f"the forward passes make {macs / 1e9:.0f} G multiply-accumulates in convolutions "
          f"({macs / args.images / 1e9:.1f} G per image)\n")
    print("| | seconds | images/s | detections | speed-up | conv GMAC/s over the whole run |\n|---|---:|---:|---:|---:|---:|")
    for name, seconds, count in rows:
        print(f"| {name} | {seconds:.1f} | {args.images / seconds:.2f} | {count} | {reference / seconds:.2f}x | "
              f"{macs / seconds / 1e9:.1f} |")
    for name, _, count in rows[1:]:
        if abs(count - rows[0][2]) > 0.02 * max(rows[0][2], 1):
            sys.exit(f"{name} found {count} text regions, MMOCR {rows[0][2]}: not the same work")


if __name__ == "__main__":
    main()
