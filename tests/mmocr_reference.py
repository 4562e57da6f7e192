"""Runs MMOCR 1.0.1 beside freereal_hf through shared/tools/mmocr-reference (its own venv).

Used by the tests (``mmocr`` fixture) and the benchmarks. ``MMOCR_REFERENCE_DIR`` overrides where the tool
is looked for; ``MMOCR_REFERENCE_PYTHON`` names an already built venv's python.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def tool_dir() -> Path:
    return Path(os.environ.get("MMOCR_REFERENCE_DIR", REPO.parent / "shared" / "tools" / "mmocr-reference"))


class ReferenceUnavailable(RuntimeError):
    """The MMOCR reference tool cannot be set up here; the message says why."""


@functools.lru_cache(maxsize=1)
def reference_python() -> str:
    """Path of the python of the MMOCR venv, building it with setup.sh when needed (about two minutes)."""
    if os.environ.get("MMOCR_REFERENCE_PYTHON"):
        return os.environ["MMOCR_REFERENCE_PYTHON"]
    setup = tool_dir() / "setup.sh"
    if not setup.exists():
        raise ReferenceUnavailable(f"{setup} not found (set MMOCR_REFERENCE_DIR to shared/tools/mmocr-reference)")
    proc = subprocess.run(["bash", str(setup)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise ReferenceUnavailable(f"setup.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


_INFERENCER = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
import mmocr_lite
from mmocr.utils import register_all_modules
register_all_modules(); mmocr_lite.install()
from mmocr.apis import TextDetInferencer
result = TextDetInferencer(weights=sys.argv[1], device="cpu")(sys.argv[2], return_vis=False)["predictions"][0]
print(json.dumps({"polygons": [list(map(float, p)) for p in result["polygons"]],
                  "scores": list(map(float, result["scores"]))}))
"""


class MMOCR:
    """Calls ``mmocr_ref.py`` subcommands; arrays travel as .npy/.npz files in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.python = reference_python()
        self.script = str(tool_dir() / "mmocr_ref.py")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def _path(self, suffix: str) -> Path:
        self._n += 1
        return self.workdir / f"ref{self._n}{suffix}"

    def run(self, *args: str) -> dict:
        proc = subprocess.run([self.python, self.script, *args], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"mmocr_ref.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def python_code(self, code: str, *args: str) -> str:
        """Runs a snippet with the reference python (for checks mmocr_ref.py has no command for)."""
        proc = subprocess.run([self.python, "-c", code, *args], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"reference snippet failed:\n{proc.stderr[-4000:]}")
        return proc.stdout

    def checkpoint(self, model: str, seed: int = 0) -> Path:
        out = self._path(".pth")
        self.run("checkpoint", "--model", model, "--out", str(out), "--seed", str(seed))
        return out

    def forward(self, model: str, checkpoint: Path, x: np.ndarray, repeat: int = 1) -> tuple[dict, float]:
        inp, out = self._path(".npy"), self._path(".npz")
        np.save(inp, x.astype(np.float32))
        info = self.run("forward", "--model", model, "--checkpoint", str(checkpoint), "--input", str(inp),
                        "--out", str(out), "--repeat", str(repeat))
        with np.load(out) as data:
            return {k: data[k] for k in data.files}, info["seconds_min"]

    def targets(self, model: str, height: int, width: int, polygons: list, ignored: list, repeat: int = 1
                ) -> tuple[dict, float]:
        inp, out = self._path(".json"), self._path(".npz")
        inp.write_text(json.dumps({"height": height, "width": width,
                                   "polygons": [np.asarray(p, float).reshape(-1).tolist() for p in polygons],
                                   "ignored": [bool(v) for v in ignored]}))
        info = self.run("targets", "--model", model, "--input", str(inp), "--out", str(out), "--repeat", str(repeat))
        with np.load(out) as data:
            return {k: data[k] for k in data.files}, info["seconds_min"]

    def postprocess(self, model: str, prob: np.ndarray, scale_factor=(1.0, 1.0), repeat: int = 1
                    ) -> tuple[dict, float]:
        """MMOCR's post-processor on one image's raw map: DBNet's ``H x W`` probability, or PSENet's / PANet's
        ``C x h x w`` logits (at 1/4 of the ``img_shape``, which is then ``4 h x 4 w``)."""
        inp, meta, out = self._path(".npz"), self._path(".json"), self._path(".json")
        if prob.ndim == 2:
            np.savez(inp, prob=prob[None].astype(np.float32))
            shape = list(prob.shape)
        else:
            np.savez(inp, logits=prob[None].astype(np.float32))
            shape = [4 * prob.shape[1], 4 * prob.shape[2]]
        meta.write_text(json.dumps({"img_shape": shape, "scale_factor": list(scale_factor)}))
        info = self.run("postprocess", "--model", model, "--input", str(inp), "--meta", str(meta),
                        "--out", str(out), "--repeat", str(repeat))
        return json.loads(out.read_text()), info["seconds_min"]

    def postprocess_levels(self, model: str, cls: list, reg: list, scale_factor=(1.0, 1.0), repeat: int = 1
                           ) -> tuple[dict, float]:
        """MMOCR's FCENet post-processor on one image's per-level raw maps (``cls[l]`` ``4 x h_l x w_l``,
        ``reg[l]`` ``22 x h_l x w_l``, strides 8, 16, 32; the ``img_shape`` is 8 times level 0's size)."""
        inp, meta, out = self._path(".npz"), self._path(".json"), self._path(".json")
        arrays = {}
        for i, (c, r) in enumerate(zip(cls, reg)):
            arrays[f"{i}.cls_res"], arrays[f"{i}.reg_res"] = c[None].astype(np.float32), r[None].astype(np.float32)
        np.savez(inp, **arrays)
        meta.write_text(json.dumps({"img_shape": [8 * cls[0].shape[1], 8 * cls[0].shape[2]],
                                    "scale_factor": list(scale_factor)}))
        info = self.run("postprocess", "--model", model, "--input", str(inp), "--meta", str(meta),
                        "--out", str(out), "--repeat", str(repeat))
        return json.loads(out.read_text()), info["seconds_min"]

    def inferencer(self, weights: Path, image: Path) -> dict:
        """MMOCR's ``TextDetInferencer(weights=...)`` alone (no config file) on one image file ->
        ``{"polygons": [flat lists], "scores": [...]}``."""
        out = self.python_code(_INFERENCER, str(weights), str(image), str(tool_dir()))
        return json.loads(out.strip().splitlines()[-1])

    def compare_inferencer(self, model, image: np.ndarray) -> tuple[dict, dict]:
        """Exports ``model`` with ``hf_to_mmocr``, runs MMOCR's inferencer on ``image`` (``H x W x 3`` uint8 BGR,
        written as a PNG) and our model through its processor and post-processing; returns ``(ours, theirs)``."""
        import cv2
        import torch

        from freereal_hf import TextDetectionImageProcessor
        from freereal_hf.convert.mmocr import hf_to_mmocr

        weights, path = self._path(".pth"), self._path(".png")
        hf_to_mmocr(model, weights)
        cv2.imwrite(str(path), image)
        theirs = self.inferencer(weights, path)
        inputs = TextDetectionImageProcessor.for_config(model.config)(image[..., ::-1].copy())
        with torch.no_grad():
            out = model(inputs["pixel_values"])
        return model.post_process(out, inputs["scale_factors"].tolist())[0], theirs

    def hmean(self, cases: list, strategy: str = "vanilla") -> dict:
        inp = self._path(".json")
        inp.write_text(json.dumps(cases))
        return self.run("hmean", "--input", str(inp), "--strategy", strategy)


def fastest(fn, repeat: int) -> tuple[object, float]:
    """Runs ``fn`` ``repeat`` times; returns the last result and the fastest time in seconds (as MMOCR's side is
    timed by mmocr_ref.py ``--repeat``)."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best
