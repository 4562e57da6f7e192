"""ONNX export (``freereal-convert to-onnx``) of every registered detector: ONNX Runtime's outputs equal torch's at
sizes other than the export size, the same post-processing gives the same polygons, DCNv2 exports as DeformConv
(and below opset 19 is refused by name), and bad arguments are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from freereal_hf import DBNetConfig, DBNetForTextDetection, DETECTORS, TextDetectionImageProcessor, config_from_preset
from freereal_hf.convert.cli import main as convert_main
from freereal_hf.onnx_export import OnnxTextDetector, output_layout
from freereal_hf.training.evaluation import detect

pytest.importorskip("onnxruntime")


def calibrated(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A random detector whose batch-norm statistics were measured on random images, as training leaves them
    (raw random init multiplies activations layer after layer, to logits in the hundreds)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batches
    model.train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, 128, 128, generator=generator))
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def _fields(outputs) -> list[torch.Tensor]:
    return [outputs[f] if i is None else outputs[f][i] for f, i in output_layout(outputs)]


def _assert_close(onnx_outputs, model, x) -> None:
    """Every output of ONNX Runtime within 1e-4 of the model's in float64, relative to that output's largest
    magnitude (at least 1), and within 2e-4 of torch's float32 outputs: torch's own float32 result is up to 1e-4
    from float64 for the deeper detectors (FCENet-R50), so float32 cannot promise more."""
    with torch.no_grad():
        float32 = _fields(model(x, detect_only=True))  # the graph holds what post-processing reads
        exact = _fields(model.double()(x.double(), detect_only=True))
    model.float()
    for ours, theirs, truth in zip(_fields(onnx_outputs), float32, exact, strict=True):
        assert ours.shape == theirs.shape
        scale = max(1.0, float(truth.abs().max()))
        assert float((ours.double() - truth).abs().max()) <= 1e-4 * scale
        assert float((ours - theirs).abs().max()) <= 2e-4 * scale


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for h, w in ((120, 150), (90, 200)):
        image = np.full((h, w, 3), 30, np.uint8)
        for _ in range(3):  # bright bars on a dark ground
            y, x = rng.integers(5, h - 20), rng.integers(5, w - 60)
            image[y:y + 12, x:x + 50] = 230
        images.append(image)
    return images


@pytest.mark.parametrize("preset", [spec.presets[0] for spec in DETECTORS.values()])
def test_onnx_runtime_equals_torch_and_detects_the_same(preset, tmp_path, capsys):
    size = {"test_short_side": 128} if preset.startswith("panet") else {"test_scale": [192, 128]}
    config = config_from_preset(preset, **size)
    torch.manual_seed(0)
    model = calibrated(DETECTORS[config.model_type].model_class(config))
    model.save_pretrained(tmp_path / "model")
    assert convert_main(["to-onnx", str(tmp_path / "model"), str(tmp_path / "model.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    detector = OnnxTextDetector(tmp_path / "model.onnx")
    assert (detector.config.model_type, detector.config.post_process_params()) == (
        model.config.model_type, model.config.post_process_params())
    for shape in ((1, 3, 96, 224), (3, 3, 160, 128)):  # export size: 128 x 160, batch 1
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[0]))
        got = detector(x)
        assert type(got) is type(model).output_class
        _assert_close(got, model, x)
    processor = TextDetectionImageProcessor.for_config(model.config)
    assert detector.processor.to_dict() == processor.to_dict()
    images = _images()
    ours, theirs = detect(detector, images, processor, 2), detect(model, images, processor, 2)
    assert [len(r["scores"]) for r in ours] == [len(r["scores"]) for r in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
        for p, q in zip(a["polygons"], b["polygons"]):
            assert p.shape == q.shape and np.abs(p - q).max() <= 0.5  # the same contour, to half a pixel


def test_dcnv2_exports_as_deform_conv_checked_and_is_refused_where_it_would_be_wrong(tmp_path, capsys):
    torch.manual_seed(0)
    model = calibrated(DBNetForTextDetection(DBNetConfig(dcn_stages=[False, True, True, True],
                                                         neck_lateral_channels=32, neck_out_channels=8)))
    model.save_pretrained(tmp_path / "model")
    assert convert_main(["to-onnx", str(tmp_path / "model"), str(tmp_path / "old.onnx"), "--opset", "18"]) == 1
    error = capsys.readouterr().err
    assert "DCNv2" in error and "DeformConv" in error and "opset >= 19" in error
    assert not (tmp_path / "old.onnx").exists() and not list(tmp_path.glob(".old.onnx*"))
    # offsets still 0 (as initialised): ONNX Runtime's DeformConv agrees
    assert convert_main(["to-onnx", str(tmp_path / "model"), str(tmp_path / "dcn.onnx")]) == 0
    import onnx

    assert "DeformConv" in {node.op_type for node in onnx.load(str(tmp_path / "dcn.onnx")).graph.node}
    x = torch.randn(2, 3, 96, 128)
    _assert_close(OnnxTextDetector(tmp_path / "dcn.onnx")(x), model, x)
    # offsets that move the samples, as training leaves them: ONNX Runtime 1.32 computes something else, and the
    # export's check refuses it by name rather than write a graph that detects differently
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "conv_offset" in name:
                param.normal_(0, 0.5)  # (std 0.05 still agrees within the check on what post-processing reads)
    model.save_pretrained(tmp_path / "trained")
    assert convert_main(["to-onnx", str(tmp_path / "trained"), str(tmp_path / "trained.onnx")]) == 1
    error = capsys.readouterr().err
    assert "DCNv2" in error and "not written" in error and not (tmp_path / "trained.onnx").exists()


def test_to_onnx_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    torch.manual_seed(0)
    DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8)).save_pretrained(tmp_path / "m")
    (tmp_path / "used.onnx").write_bytes(b"precious")
    (tmp_path / "folder").mkdir()
    cases = [
        (["to-onnx", str(tmp_path / "m"), str(tmp_path / "used.onnx")], "exists; pass --overwrite"),
        (["to-onnx", str(tmp_path / "m"), str(tmp_path / "folder")], "is a folder"),
        (["to-onnx", str(tmp_path / "m"), str(tmp_path / "no" / "x.onnx")], "is not a folder"),
        (["to-onnx", str(tmp_path / "m"), str(tmp_path / "x.onnx"), "--opset", "0"], "--opset must be at least"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            convert_main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, argv
    assert convert_main(["to-onnx", str(tmp_path / "missing"), str(tmp_path / "x.onnx")]) == 2
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
    assert (tmp_path / "used.onnx").read_bytes() == b"precious"
    with pytest.raises(ValueError, match="not an ONNX model"):
        OnnxTextDetector(tmp_path / "used.onnx")
