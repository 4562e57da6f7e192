#!/usr/bin/env python
"""Detection forward throughput, ours against MMOCR 1.0.1's, same weights, same device, one run.

For each ``--models`` x ``--settings`` both sides run the forward pass of detection (DBNet: backbone, neck and
the probability branch, as MMOCR's ``predict`` mode) on one random batch of ``--batch-size`` x 3 x ``--size``
x ``--size``, and the script prints the median milliseconds per batch, images/s and the ratio. Settings:
``fp32`` (PyTorch's defaults: TF32 convolutions on Ampere and later), ``bf16`` (autocast), ``bf16-cl`` (bf16
with model and batch in channels-last memory); each side gets the same setting.

MMOCR runs in a second process with the reference python (``tests/mmocr_reference.py``: the venv that
shared/tools/mmocr-reference builds, or ``MMOCR_REFERENCE_PYTHON``), which builds MMOCR's model, saves its
random weights in MMOCR's layout, times itself with the same timer and writes its fp32 output; ours is
converted from those weights (``mmocr_to_hf``) and checked equal to it (TF32 off for that check) before any
timing. Run the whole table in one call on one card: figures of one run compare with each other only.

  python scripts/benchmark_forward.py --models dbnet_r18 dbnet_r50 --batch-size 16 --size 640   # a GPU
  python scripts/benchmark_forward.py --models dbnet_r18 --batch-size 1 --size 64 --repeat 2     # CPU check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SETTINGS = ("fp32", "bf16", "bf16-cl")
MODELS = ("dbnet_r18", "dbnet_r50", "dbnet_r50_dcnv2")  # DBNet: MMOCR's predict mode is the probability branch


def median_ms(fn: Callable[[], object], repeat: int, device: torch.device, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in ms over ``repeat`` calls after ``warmup`` calls, the device synchronised
    after each call (both sides use this timer)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def time_settings(forward: Callable[[torch.Tensor], object], module: torch.nn.Module, x: torch.Tensor,
                  settings: list[str], repeat: int) -> dict[str, float]:
    """ms per batch of ``forward(x)`` under each setting (autocast bf16, channels-last), no gradients."""
    out = {}
    for setting in settings:
        layout = torch.channels_last if setting == "bf16-cl" else torch.contiguous_format
        module.to(memory_format=layout)
        batch = x.contiguous(memory_format=layout)
        precision = torch.autocast(x.device.type, dtype=torch.bfloat16) if setting != "fp32" else \
            contextlib.nullcontext()
        with torch.no_grad(), precision:
            out[setting] = median_ms(lambda: forward(batch), repeat, x.device)
    module.to(memory_format=torch.contiguous_format)
    return out


def exact_fp32(fn: Callable[[], torch.Tensor]) -> np.ndarray:
    """``fn()`` in fp32 with TF32 off (the equality check), as a numpy array."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            return fn().float().cpu().numpy()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def mmocr_side(args: argparse.Namespace) -> None:
    """Runs in the reference python: builds MMOCR's model, saves its weights, its output and its timings."""
    sys.path.insert(0, args.tool_dir)
    try:
        importlib.import_module("imgaug")  # MMOCR imports it; imgaug 0.4 fails under numpy 2
    except (ImportError, AttributeError):  # only its wrapper transform uses it: stand in for the module
        class Stub(types.ModuleType):
            def __getattr__(self, name: str) -> "Stub":
                if name.startswith("__"):
                    raise AttributeError(name)
                return Stub(f"{self.__name__}.{name}")
        for name in ("imgaug", "imgaug.augmenters"):
            sys.modules[name] = Stub(name)
    import mmocr_ref

    mmocr_ref._setup()
    torch.manual_seed(0)
    model, _ = mmocr_ref._build(args.model)
    torch.save({"meta": {}, "state_dict": model.state_dict()}, args.checkpoint)
    device = torch.device(args.device)
    model.to(device)
    x = torch.from_numpy(np.load(args.input)).to(device)
    np.save(args.output, exact_fp32(lambda: model(x[:2], mode="tensor")))
    timings = time_settings(lambda batch: model(batch, mode="tensor"), model, x, args.settings, args.repeat)
    Path(args.timings).write_text(json.dumps(timings))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def size(text: str) -> int:
    value = int(text)
    if value < 32 or value % 32:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 32, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dbnet_r18", "dbnet_r50"], choices=MODELS)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--batch-size", type=positive, default=16)
    parser.add_argument("--size", type=size, default=640, help="image height and width")
    parser.add_argument("--repeat", type=positive, default=20, help="timed batches per figure (median)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mmocr-side", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "checkpoint", "input", "output", "timings", "tool-dir"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as err:
        parser.error(f"--device {args.device!r} cannot be used here: {err}")
    if args.mmocr_side:
        mmocr_side(args)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from mmocr_reference import ReferenceUnavailable, reference_python, tool_dir

    try:
        python = reference_python()  # before any work: MMOCR's side needs it
    except ReferenceUnavailable as err:
        sys.exit(f"MMOCR's reference cannot run here: {err}")

    from freereal_hf.convert.mmocr import mmocr_to_hf

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(args.batch_size, 3, args.size, args.size))
                         .astype(np.float32)).to(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x.cpu().numpy())
        for model_name in args.models:
            files = {key: str(Path(tmp) / f"{model_name}-{key}") for key in ("checkpoint", "output", "timings")}
            files["checkpoint"] += ".pth"
            files["output"] += ".npy"
            print(f"{model_name}: MMOCR ...", file=sys.stderr, flush=True)
            proc = subprocess.run([python, __file__, "--mmocr-side", "--model", model_name,
                                   "--input", str(Path(tmp) / "x.npy"), "--device", args.device,
                                   "--repeat", str(args.repeat), "--settings", *args.settings,
                                   "--tool-dir", str(tool_dir()), *(f"--{k}={v}" for k, v in files.items())],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"MMOCR's side failed for {model_name}:\n{proc.stderr[-4000:]}")
            print(f"{model_name}: ours ...", file=sys.stderr, flush=True)
            model = mmocr_to_hf(files["checkpoint"], model_name).to(device)
            ours = exact_fp32(lambda: model(x[:2], detect_only=True).prob)
            difference = float(np.abs(ours - np.load(files["output"])).max())
            if difference > 1e-4:
                sys.exit(f"{model_name}: our fp32 output differs from MMOCR's by {difference:.2e} (bound 1e-4)")
            mine = time_settings(lambda batch: model(batch, detect_only=True), model, x, args.settings, args.repeat)
            theirs = json.loads(Path(files["timings"]).read_text())
            rows += [(model_name, setting, theirs[setting], mine[setting], difference) for setting in args.settings]
    print(f"\n{name}; batch {args.batch_size} x 3 x {args.size} x {args.size}; median of {args.repeat} batches\n")
    print("| model | setting | MMOCR ms/batch | ours ms/batch | MMOCR images/s | ours images/s | speed-up "
          "| fp32 max difference |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model_name, setting, theirs, mine, difference in rows:
        print(f"| {model_name} | {setting} | {theirs:.1f} | {mine:.1f} | {1000 * args.batch_size / theirs:.0f} | "
              f"{1000 * args.batch_size / mine:.0f} | {theirs / mine:.2f}x | {difference:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
