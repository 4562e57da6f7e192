#!/usr/bin/env python
"""Preparation at SynthText scale: ``freereal-prepare synthtext`` and the glyph-mask step, images/s for
``--num-proc`` 1 and 2, and the projected time for SynthText's 858,750 images on 16 cores.

A release in SynthText's layout (``gt.mat`` with ``imnames``, ``wordBB``, ``charBB``, ``txt``, JPEG images in
numbered folders) is generated from the synthtext demo domain (``--images`` of ``--size``; SynthText's own images
are about 0.2 MP). Each run is a fresh process (timed inside it, after its imports), which also reports its
peak memory, the largest of it and its workers: it should not grow with the release. Both runs write real
parquet shards, of ``--shard-mb`` each so that the 2,000 images make
enough shards for two processes (each process writes whole shards); their bytes are compared. Three projections
for 16 processes: linear (each process as fast as one of the two), Amdahl's (the serial share the 1 -> 2
speed-up implies stays serial), and shards (SynthText in 500 MB shards at this benchmark's bytes per image,
dealt to 16 processes whole, so the last round may leave processes idle; at the per-process rate of N=2).

  python scripts/benchmark_prepare.py [--images 2000] [--size 384 512] [--shard-mb 4]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from freereal_hf.data.demo import render_sample

SYNTHTEXT_IMAGES = 858_750


_PREPARE = """
import json, resource, sys, time
from freereal_hf.data.prepare import prepare
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
files, _ = prepare("synthtext", sys.argv[1], sys.argv[2], name="bench", progress=False, num_proc=int(sys.argv[3]),
                   max_shard_bytes=int(sys.argv[4]))
seconds = time.perf_counter() - start
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"seconds": seconds, "shards": len(files["train"]), "peak_mb": peak / 1024,
                  "imports_mb": imported / 1024}))
"""


def write_release(root: Path, images: int, size: tuple[int, int]) -> None:
    """``images`` synthtext-domain renders as a SynthText release under ``root``."""
    names, words, chars, texts = (np.empty((1, images), dtype=object) for _ in range(4))
    for i in range(images):
        sample = render_sample(np.random.default_rng([3, i]), "synthetic", size, max_words=6)
        name = f"{i // 1000}/image_{i}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), sample.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        names[0, i] = np.array([name])
        words[0, i] = sample.polygons.reshape(-1, 4, 2).transpose(2, 1, 0).astype(np.float64)
        chars[0, i] = sample.char_quads.transpose(2, 1, 0).astype(np.float64)
        texts[0, i] = np.array(sample.texts, dtype=object)
    scipy.io.savemat(root / "gt.mat", {"imnames": names, "wordBB": words, "charBB": chars, "txt": texts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, nargs=2, default=[384, 512], metavar=("H", "W"))
    parser.add_argument("--shard-mb", type=float, default=4.0, help="parquet shard size bound of the runs (4)")
    args = parser.parse_args()
    if args.images < 1 or min(args.size) < 64 or args.shard_mb <= 0:
        parser.error("--images and --shard-mb must be positive and --size at least 64")
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        write_release(root / "release", args.images, tuple(args.size))
        print(f"generated {args.images} images of {args.size[0]} x {args.size[1]} in SynthText's layout "
              f"({time.perf_counter() - start:.0f} s)")
        release_bytes = sum(p.stat().st_size for p in (root / "release").rglob("*.jpg"))
        rates, peaks = {}, {}
        for n in (1, 2):
            # in a fresh process, so that its peak memory (and its workers') is its own
            done = subprocess.run([sys.executable, "-c", _PREPARE, str(root / "release"), str(root / f"out{n}"),
                                   str(n), str(int(args.shard_mb * 1e6))], capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"freereal-prepare failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rates[n], peaks[n] = args.images / result["seconds"], (result["peak_mb"], result["imports_mb"])
        print(f"{result['shards']} shards of up to {args.shard_mb:g} MB ({release_bytes / args.images / 1e3:.1f} kB "
              f"per image; the release holds {release_bytes / 1e6:.0f} MB)")
        print("peak memory of one process (the largest of the parent and its workers), after the imports' "
              + ", ".join(f"{peaks[n][1]:.0f} MB: {peaks[n][0]:.0f} MB with N={n}" for n in (1, 2)))
        same = all((root / "out1" / p.relative_to(root / "out2")).read_bytes() == p.read_bytes()
                   for p in (root / "out2").rglob("*") if p.is_file())
        from datasets import load_dataset

        from freereal_hf.glyphmix import add_glyph_masks

        mask_rates = {}
        for n in (1, 2):
            dataset = load_dataset("parquet", data_files=str(root / "out1" / "data" / "*.parquet"), split="train",
                                   cache_dir=str(root / f"cache{n}"))
            start = time.perf_counter()
            add_glyph_masks(dataset, num_proc=n if n > 1 else None)
            mask_rates[n] = args.images / (time.perf_counter() - start)
        shutil.rmtree(root / "release")
    # SynthText in 500 MB shards at this release's bytes per image, dealt to 16 processes a shard at a time
    shards = math.ceil(SYNTHTEXT_IMAGES * release_bytes / args.images / 500e6)
    rounds = math.ceil(shards / 16)
    print(f"16 cores: SynthText at {release_bytes / args.images / 1e3:.1f} kB per image makes {shards} shards of "
          f"500 MB, {rounds} rounds of 16")
    print(f"{'step':<26}{'N=1 img/s':>11}{'N=2 img/s':>11}{'N2/N1':>7}{'linear':>12}{'Amdahl':>12}{'shards':>12}")
    for step, r in (("freereal-prepare", rates), ("glyph masks (datasets.map)", mask_rates)):
        linear = SYNTHTEXT_IMAGES / (r[2] / 2 * 16) / 60
        # the serial share s that the 1 -> 2 speed-up implies (1 / (s + (1 - s) / 2)), carried to 16 processes
        serial = min(1.0, max(0.0, 2 * r[1] / r[2] - 1))
        amdahl = SYNTHTEXT_IMAGES / (r[1] / (serial + (1 - serial) / 16)) / 60
        by_shard = f"{rounds * SYNTHTEXT_IMAGES / shards / (r[2] / 2) / 60:>8.1f} min" if step.startswith("free") else ""
        print(f"{step:<26}{r[1]:>11.1f}{r[2]:>11.1f}{r[2] / r[1]:>7.2f}{linear:>8.1f} min{amdahl:>8.1f} min"
              f"{by_shard:>12}")
    print(f"N=1 and N=2 shards byte-identical: {same}")


if __name__ == "__main__":
    main()
