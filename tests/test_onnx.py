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
    printed = capsys.readouterr().out
    assert "wrote" in printed and "batch norms folded" in printed and "resizes with constant scales" in printed
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


def test_transposed_pairs_become_1x1_convolutions_with_the_same_output():
    """``fuse_transposed_pairs`` (the export's rewrite of DBNet's head) replaces ConvT(2, 2) - ReLU - ConvT(2, 2) by
    two 1x1 convolutions and a pixel shuffle that compute the same map; a third transposed convolution in a row is
    left alone (its input is already used), and so is a pair with a batch norm still between."""
    from freereal_hf.models.inference import TransposedPair, fuse_transposed_pairs

    torch.manual_seed(0)
    chain = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 5, 2, 2), torch.nn.Identity(), torch.nn.ReLU(),
                                torch.nn.ConvTranspose2d(5, 4, 2, 2), torch.nn.ReLU(),
                                torch.nn.ConvTranspose2d(4, 2, 2, 2))
    for module in chain:
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(module.bias)
    x = torch.randn(2, 3, 7, 9)
    expected = chain(x)
    assert fuse_transposed_pairs(chain) == 1
    assert isinstance(chain[0], TransposedPair) and type(chain[5]) is torch.nn.ConvTranspose2d
    got = chain(x)
    assert got.shape == expected.shape == (2, 2, 56, 72)
    assert float((got - expected).abs().max()) <= 1e-5 * float(expected.abs().max())
    normed = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 5, 2, 2), torch.nn.BatchNorm2d(5), torch.nn.ReLU(),
                                 torch.nn.ConvTranspose2d(5, 1, 2, 2))
    strided = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 5, 3, 2), torch.nn.ReLU(),
                                  torch.nn.ConvTranspose2d(5, 1, 2, 2))
    assert fuse_transposed_pairs(normed) == 0 and fuse_transposed_pairs(strided) == 0


def test_export_rewrites_dbnet_head_and_resizes_and_still_equals_torch(tmp_path):
    """The export's rewrites on DBNet: batch norms folded, the head's transposed pair as 1x1 convolutions (no
    ConvTranspose left in the graph), every neck resize with constant scales (none computes its size from a shape);
    ONNX Runtime still equals torch at sizes neither the export nor the rewrite's probes used. Without ``optimize``
    the graph keeps what the rewrites remove."""
    import onnx

    from freereal_hf.onnx_export import export_onnx

    torch.manual_seed(0)
    model = calibrated(DBNetForTextDetection(DBNetConfig(neck_lateral_channels=32, neck_out_channels=8)))
    report = export_onnx(model, tmp_path / "fast.onnx")
    assert report["rewrites"]["transposed_pairs"] == 1 and report["rewrites"]["constant_resizes"] == 6
    assert report["rewrites"]["folded_batch_norms"] > 0
    graph = onnx.load(str(tmp_path / "fast.onnx")).graph
    resizes = [n for n in graph.node if n.op_type == "Resize"]
    assert "ConvTranspose" not in {n.op_type for n in graph.node} and "Shape" not in {n.op_type for n in graph.node}
    assert len(resizes) == 6 and all(len(n.input) == 3 and n.input[2] for n in resizes)
    scales = {tuple(onnx.numpy_helper.to_array(i).tolist()) for i in graph.initializer
              if i.name in {n.input[2] for n in resizes}}
    assert scales == {(1.0, 1.0, 2.0, 2.0), (1.0, 1.0, 4.0, 4.0), (1.0, 1.0, 8.0, 8.0)}
    for shape in ((1, 3, 160, 96), (2, 3, 224, 256)):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[2]))
        _assert_close(OnnxTextDetector(tmp_path / "fast.onnx")(x), model, x)
    assert export_onnx(model, tmp_path / "plain.onnx", optimize=False)["rewrites"] == {
        "folded_batch_norms": 0, "transposed_pairs": 0, "constant_resizes": 0}
    plain = onnx.load(str(tmp_path / "plain.onnx")).graph
    assert "ConvTranspose" in {n.op_type for n in plain.node}
    assert all(len(n.input) == 4 and n.input[3] for n in plain.node if n.op_type == "Resize")


def test_constant_resize_scales_only_where_the_scale_is_the_same_at_every_size():
    """A resize to twice its input's shape gets constant scales (the shape arithmetic dropped, the output equal);
    one to a fixed size (a scale that changes with the input) is left as it was."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from freereal_hf.onnx_export import _constant_resize_scales

    def graph(fixed: bool) -> onnx.ModelProto:
        two = helper.make_tensor("two", TensorProto.INT64, [4], [1, 1, 2, 2])
        size = helper.make_tensor("size", TensorProto.INT64, [4], [1, 3, 40, 50])
        nodes = [helper.make_node("Shape", ["pixel_values"], ["shape"]),
                 helper.make_node("Mul", ["shape", "two"], ["doubled"]),
                 helper.make_node("Resize", ["pixel_values", "", "", "size" if fixed else "doubled"], ["out"],
                                  mode="nearest")]
        body = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                                                            [1, 3, None, None])],
                                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], [two, size])
        return helper.make_model(body, opset_imports=[helper.make_opsetid("", 19)])

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 64)).astype(np.float32)
    for fixed in (False, True):
        model = graph(fixed)
        before = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"pixel_values": x})[0]
        assert _constant_resize_scales(model, onnxruntime) == (0 if fixed else 1)
        after = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"pixel_values": x})[0]
        np.testing.assert_array_equal(after, before)
        resize = model.graph.node[-1]
        assert [n.op_type for n in model.graph.node] == ["Resize"]  # nothing reads the shape arithmetic now
        assert list(resize.input) == (["pixel_values", "", "", "size"] if fixed
                                      else ["pixel_values", "", "out_constant_scales"])
