"""ONNX Runtime against torch on the CPU: the same detector, the same input, the same run and thread count.

Each preset is exported with ``freereal_hf.onnx_export.export_onnx`` (random weights: speed does not depend on
them), then both run the same ``N x 3 x H x W`` batch; the median of ``--repeats`` timed runs after one warm-up is
printed with the ratio torch / ONNX Runtime (> 1: ONNX Runtime is faster). The graph is also exported without the
export's rewrites (``optimize=False``: batch norms left to ONNX Runtime, transposed convolutions and resizes as the
model has them), so the last column is what the rewrites gain. The three are timed in turns, one run each per
round, so that a change of load during the run touches them alike.

  python scripts/benchmark_onnx.py --presets dbnet_r18 fcenet_r50 --size 640 640 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from freereal_hf import DETECTORS, PRESETS, config_from_preset
from freereal_hf.onnx_export import OnnxTextDetector, export_onnx


def _median_seconds(runs, repeats: int) -> list[float]:
    """The median time of each of ``runs``, timed in turn (one warm-up each, then ``repeats`` rounds that run every
    one once), so that a change of the machine's load during the run touches them all alike."""
    for run in runs:
        run()  # warm-up
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, kept in zip(runs, times):
            start = time.perf_counter()
            run()
            kept.append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["dbnet_r18", "panet_r18", "psenet_r50", "fcenet_r50"],
                        choices=sorted(PRESETS))
    parser.add_argument("--size", nargs=2, type=int, default=[640, 640], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.batch < 1 or args.threads < 1 or args.repeats < 1 or any(v < 32 or v % 32 for v in args.size):
        parser.error("--batch, --threads and --repeats must be positive; --size multiples of 32")
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 3, *args.size, generator=torch.Generator().manual_seed(0))
    print(f"input {tuple(x.shape)}, {args.threads} thread(s), median of {args.repeats} runs, torch "
          f"{torch.__version__}")
    print(f"{'preset':<22}{'torch ms':>10}{'ORT ms':>10}{'torch/ORT':>11}{'ORT plain ms':>14}{'plain/ORT':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.presets:
            config = config_from_preset(preset)
            torch.manual_seed(0)
            model = DETECTORS[config.model_type].model_class(config).eval()
            try:
                export_onnx(model, Path(folder) / f"{preset}.onnx")
            except (RuntimeError, ValueError) as err:
                print(f"{preset:<22}not exported: {str(err)[:90]}")
                continue
            export_onnx(model, Path(folder) / f"{preset}_plain.onnx", optimize=False)
            detector = OnnxTextDetector(Path(folder) / f"{preset}.onnx", threads=args.threads)
            plain = OnnxTextDetector(Path(folder) / f"{preset}_plain.onnx", threads=args.threads)
            with torch.no_grad():  # the torch model as the graph computes it (detect_only)
                ours, theirs, unrewritten = _median_seconds(
                    [lambda: model(x, detect_only=True), lambda: detector(x), lambda: plain(x)], args.repeats)
            print(f"{preset:<22}{ours * 1e3:>10.1f}{theirs * 1e3:>10.1f}{ours / theirs:>10.2f}x"
                  f"{unrewritten * 1e3:>14.1f}{unrewritten / theirs:>10.2f}x")


if __name__ == "__main__":
    main()
