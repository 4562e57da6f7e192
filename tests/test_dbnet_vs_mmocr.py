"""DBNet equals MMOCR 1.0.1's, checked by running MMOCR (the reference venv) on the same weights and inputs."""

from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch

from freereal_hf import DBNetForTextDetection, TextDetectionImageProcessor, config_from_preset
from freereal_hf.convert.cli import main as convert_main
from freereal_hf.convert.mmocr import hf_to_mmocr

pytestmark = pytest.mark.mmocr
VARIANTS = ["dbnet_r18", "dbnet_r50", "dbnet_r50_dcnv2"]
MAPS = ("prob_logits", "prob", "thr", "binary")


def _input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 3, 64, 96)).astype(np.float32)


def _ours(model: DBNetForTextDetection, x: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    return {k: out[k].numpy() for k in MAPS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_mmocr_checkpoint_to_ours_same_maps(variant, mmocr, tmp_path):
    ckpt = mmocr.checkpoint(variant, seed=1)
    out_dir = tmp_path / "hf"
    args = ["to-hf", str(ckpt), str(out_dir), "--model", variant]
    assert convert_main(args) == 0  # freereal-convert, in process
    model = DBNetForTextDetection.from_pretrained(out_dir)
    assert model.config.preset == variant
    x = _input(1)
    reference, _ = mmocr.forward(variant, ckpt, x)
    ours = _ours(model, x)
    for key in MAPS:
        assert ours[key].shape == reference[key].shape == (2, 64, 96)
        assert np.abs(ours[key] - reference[key]).max() <= 1e-4, key


@pytest.mark.parametrize("variant", VARIANTS)
def test_ours_to_mmocr_checkpoint_same_maps(variant, mmocr, tmp_path):
    torch.manual_seed(2)
    model = DBNetForTextDetection(config_from_preset(variant))
    with torch.no_grad():  # non-trivial BN statistics and DCN offsets, so that every tensor matters
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean") or "conv_offset" in name:
                tensor.uniform_(-0.1, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
    model.save_pretrained(tmp_path / "hf")
    args = ["to-mmocr", str(tmp_path / "hf"), str(tmp_path / "ours.pth")]
    assert convert_main(args) == 0  # freereal-convert, in process
    x = _input(2)
    reference, _ = mmocr.forward(variant, tmp_path / "ours.pth", x)
    ours = _ours(model, x)
    for key in MAPS:
        assert np.abs(ours[key] - reference[key]).max() <= 1e-4, key


def test_converted_checkpoint_runs_in_mmocr_inferencer_alone(mmocr, tmp_path):
    """The exported file carries its MMOCR config: MMOCR's inferencer needs nothing else, and finds what we find."""
    torch.manual_seed(0)
    model = DBNetForTextDetection(config_from_preset("dbnet_r18")).eval()
    with torch.no_grad():  # a head that fires on bright pixels, so that there is text to find
        model.det_head.binarize[6].bias.fill_(-2.0)
    hf_to_mmocr(model, tmp_path / "model.pth")
    image = np.zeros((120, 200, 3), np.uint8)
    cv2.rectangle(image, (30, 40), (170, 80), (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "img.png"), image)
    reference = mmocr.inferencer(tmp_path / "model.pth", tmp_path / "img.png")
    processor = TextDetectionImageProcessor.for_config(model.config)
    inputs = processor(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    with torch.no_grad():
        out = model(inputs["pixel_values"])
    ours = processor.post_process_text_detection(out, target_sizes=[image.shape[:2]])[0]
    assert len(reference["scores"]) >= 1
    assert len(ours["scores"]) == len(reference["scores"])
    np.testing.assert_allclose(sorted(ours["scores"]), sorted(reference["scores"]), atol=1e-4)


def test_the_forward_benchmark_checks_both_sides_equal_then_times_them(mmocr, capsys):
    """scripts/benchmark_forward.py (the GPU forward table) on this CPU at 64 pixels: MMOCR's model in the reference
    python, ours converted from its weights, equal in fp32, one row per setting; bad arguments refused first."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        from benchmark_forward import main as bench
    finally:
        sys.path.pop(0)
    for bad in (["--batch-size", "0"], ["--size", "50"], ["--repeat", "0"], ["--device", "nowhere"],
                ["--models", "psenet_r50"]):
        with pytest.raises(SystemExit) as exit_info:
            bench(bad)
        assert exit_info.value.code == 2, bad
    # no MMOCR reference to run: one line naming why, before any work
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "MMOCR_REFERENCE_PYTHON"}
    env["MMOCR_REFERENCE_DIR"] = str(Path(__file__).parent / "no-such-tool")
    script = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_forward.py"
    missing = subprocess.run([sys.executable, str(script), "--batch-size", "1", "--size", "64"], capture_output=True,
                             text=True, env=env, timeout=300)
    assert missing.returncode == 1 and "MMOCR's reference cannot run here" in missing.stderr
    assert "Traceback" not in missing.stderr
    capsys.readouterr()
    assert bench(["--models", "dbnet_r18", "--settings", "fp32", "bf16-cl", "--batch-size", "2", "--size", "64",
                  "--repeat", "1"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| dbnet_r18 |")]
    assert [row[1].strip() for row in rows] == ["fp32", "bf16-cl"]
    for _, _, theirs, ours, their_rate, our_rate, speed_up, difference in rows:
        assert float(theirs) > 0 and float(ours) > 0
        # the printed figures are rounded: ms to 0.1, rates to 1, the ratio to 0.01
        assert float(our_rate) == pytest.approx(2000 / float(ours), rel=0.05, abs=1)
        assert float(their_rate) == pytest.approx(2000 / float(theirs), rel=0.05, abs=1)
        assert float(speed_up.strip().rstrip("x")) == pytest.approx(float(theirs) / float(ours), rel=0.05)
        assert float(difference) <= 1e-4
