"""ONNX export of any registered detector, and an ONNX Runtime detector that post-processes as the torch model does.

The exported graph takes ``pixel_values`` (``N x 3 x H x W`` float32, normalised as the image processor does,
``H`` and ``W`` multiples of 32; batch, height and width are dynamic) and returns the model's output fields
flattened in order: a tensor field under its name, a tuple of per-level tensors (FCENet's ``cls_res``) as
``name.0``, ``name.1``... The file's metadata holds the config (``freereal_config``), the output layout
(``freereal_outputs``) and the image processor (``freereal_processor``), so :class:`OnnxTextDetector` needs
nothing else, and its outputs are the model's own output class: the same post-processing consumes them.

DCNv2 layers export as ONNX's ``DeformConv``, which needs opset 19 (the default). ONNX Runtime 1.32 runs it, but
not as torchvision computes it once the offsets are not 0 (measured: 1e-2 on a small model's logits), so a trained
DCNv2 model fails the export's check with an error that says so; with offsets still 0 it exports.

Example:
    >>> from freereal_hf.onnx_export import OnnxTextDetector, export_onnx
    >>> export_onnx(model, "dbnet.onnx")  # doctest: +SKIP
    >>> detector = OnnxTextDetector("dbnet.onnx")  # doctest: +SKIP
    >>> inputs = detector.processor(image, return_tensors="pt")  # doctest: +SKIP
    >>> detector.post_process(detector(inputs["pixel_values"]), inputs["scale_factors"].tolist())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from copy import deepcopy
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .image_processing import TextDetectionImageProcessor
from .models.backbones import ModulatedDeformConv2d

DEFAULT_OPSET = 19  # the first opset with DeformConv (DCNv2)
DEFORM_CONV_OPSET = 19
# ONNX Runtime against torch, relative to each output's largest magnitude (at least 1): float32 kernels differ in
# summation order; a graph with a frozen shape differs by whole units (the check exists for that)
EXPORT_TOLERANCE = 1e-3


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX export and inference need onnx, onnxscript and onnxruntime ({err}); "
                          "pip install 'freereal_hf[onnx]'") from None
    return onnx, onnxruntime


def output_layout(outputs: Any) -> list[tuple[str, int | None]]:
    """The flattened output fields of a model output: ``(field, None)`` for a tensor, ``(field, i)`` for level
    ``i`` of a tuple; loss fields and empty fields left out."""
    layout: list[tuple[str, int | None]] = []
    for name, value in outputs.items():
        if name.startswith("loss") or value is None:
            continue
        layout += [(name, i) for i in range(len(value))] if isinstance(value, (tuple, list)) else [(name, None)]
    return layout


def _constant_resize_scales(graph: Any, ort: Any, probes: Sequence[tuple[int, int]] = ((64, 96), (96, 160))) -> int:
    """Gives each ``Resize`` of ``graph`` (an ``onnx.ModelProto``, changed in place) whose output size is computed
    from another tensor's shape a constant ``scales`` input instead, where that scale is the same whole number at
    every probe input size (``H x W``, multiples of 32); the shape arithmetic left unused is dropped. Returns how
    many were rewritten.

    The necks upsample to a finer level's size, which for inputs that are multiples of 32 is always 2, 4 or 8
    times the coarser one; with a constant scale ONNX Runtime runs the resize in its blocked (NCHWc) layout instead
    of converting to and from it (about 5 % of DBNet-R18's forward at 736 x 736). The output is the same: a
    resize to ``sizes`` computes its scale as output / input, which is that whole number.
    """
    from onnx import TensorProto, helper, numpy_helper

    resizes = [n for n in graph.graph.node if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]]
    if not resizes:
        return 0
    probe = type(graph)()
    probe.CopyFrom(graph)
    known = {o.name for o in probe.graph.output}
    watched = list(dict.fromkeys(v for n in resizes for v in (n.input[0], n.output[0])))
    probe.graph.output.extend(helper.make_tensor_value_info(v, TensorProto.FLOAT, None)
                              for v in watched if v not in known)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    ratios: list[set[tuple[float, float]]] = [set() for _ in resizes]
    for h, w in probes:
        values = dict(zip(watched, session.run(watched, {"pixel_values": np.zeros((1, 3, h, w), np.float32)})))
        for node, seen in zip(resizes, ratios):
            x, y = values[node.input[0]].shape, values[node.output[0]].shape
            seen.add((y[2] / x[2], y[3] / x[3]) if len(x) == 4 and x[:2] == y[:2] else (0.0, 0.0))
    rewritten = 0
    for node, seen in zip(resizes, ratios):
        (rh, rw), = seen if len(seen) == 1 else ((0.0, 0.0),)
        if rh >= 1 and rw >= 1 and rh.is_integer() and rw.is_integer():
            name = f"{node.output[0]}_constant_scales"
            graph.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, rh, rw], np.float32), name))
            node.input[2], node.input[3] = name, ""
            del node.input[3]  # a trailing empty input is the same as none
            rewritten += 1
    # drop the nodes whose outputs nothing reads any more (the size computations)
    while True:
        used = {v for n in graph.graph.node for v in n.input} | {o.name for o in graph.graph.output}
        dead = [n for n in graph.graph.node if not any(o in used for o in n.output)]
        if not dead:
            return rewritten
        for node in dead:
            graph.graph.node.remove(node)


def _flat_name(field: str, index: int | None) -> str:
    return field if index is None else f"{field}.{index}"


class _FlatDetector(nn.Module):
    """The detector with its ``detect_only`` output (what post-processing reads) flattened to a tuple of tensors
    (what an ONNX graph returns)."""

    def __init__(self, model: nn.Module, layout: list[tuple[str, int | None]]) -> None:
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(pixel_values, detect_only=True)
        return tuple(outputs[f] if i is None else outputs[f][i] for f, i in self.layout)


def _max_relative_difference(ours: Sequence[np.ndarray], theirs: Sequence[torch.Tensor]) -> float:
    return max(float(np.abs(o - t.numpy()).max() / max(1.0, float(t.abs().max()))) for o, t in zip(ours, theirs))


def export_onnx(model: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET,
                processor: TextDetectionImageProcessor | None = None, example_size: tuple[int, int] = (128, 160),
                check_size: tuple[int, int] = (96, 224), overwrite: bool = False, optimize: bool = True
                ) -> dict[str, Any]:
    """Exports ``model`` (any registered detector) to ``path`` and checks it with ONNX Runtime.

    The file is written beside ``path`` under a temporary name and moved there only once ONNX Runtime has
    loaded it and its outputs on a batch of 2 at ``check_size`` (not the export size) agree with torch's
    within ``EXPORT_TOLERANCE``. ``processor``: the image processor to record (default: the config's).
    ``overwrite``: replace an existing ``path``. ``optimize``: export a copy of the model with its batch norms folded
    and stacked 2x2 transposed convolutions as 1x1 convolutions (``freereal_hf.models.inference``), and give the
    graph's resizes constant scales (:func:`_constant_resize_scales`): the same outputs within float32 rounding
    (the check below compares with ``model`` itself), 1.09x to 1.20x faster in ONNX Runtime for DBNet-R18
    (docs/design.md).

    Returns ``{"path", "outputs" (flat names), "opset", "check_size", "max_relative_difference", "rewrites"}``
    (``rewrites``: how many batch norms were folded, transposed pairs fused and resizes given constant scales).
    Raises ``ValueError`` for DCNv2 below opset 19, an existing path or sizes that are not multiples of 32;
    ``RuntimeError`` when the exporter fails or ONNX Runtime cannot run the graph or disagrees with torch.
    """
    onnx, ort = _require_onnx()
    path = Path(path)
    if path.exists() and not (overwrite and path.is_file()):
        raise ValueError(f"{path} exists; pass overwrite=True (--overwrite) to replace it" if path.is_file()
                         else f"{path} is a folder; give the .onnx file to write")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a folder")
    if any(v <= 0 or v % 32 for v in (*example_size, *check_size)):
        raise ValueError(f"example and check sizes must be positive multiples of 32, got {example_size} and "
                         f"{check_size}")
    deform = [n for n, m in model.named_modules() if isinstance(m, ModulatedDeformConv2d)]
    if deform and opset < DEFORM_CONV_OPSET:
        raise ValueError(f"{model.config.model_type} has {len(deform)} DCNv2 (deformable convolution) layers, e.g. "
                         f"{deform[0]}; they export as ONNX's DeformConv, which needs opset >= {DEFORM_CONV_OPSET} "
                         f"(asked for {opset})")
    was_training = model.training
    model.eval()
    example = torch.randn(1, 3, *example_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layout = output_layout(model(example, detect_only=True))  # what post-processing reads
    flat = _FlatDetector(model, layout).eval()
    rewrites = {"folded_batch_norms": 0, "transposed_pairs": 0, "constant_resizes": 0}
    exported = flat
    if optimize:
        from .models.inference import fold_batch_norms, fuse_transposed_pairs

        rewritten = deepcopy(model).eval()
        rewrites["folded_batch_norms"] = fold_batch_norms(rewritten)
        rewrites["transposed_pairs"] = fuse_transposed_pairs(rewritten)
        exported = _FlatDetector(rewritten, layout).eval()
    names = [_flat_name(f, i) for f, i in layout]
    from torch.export import Dim

    batch, h32, w32 = Dim("batch", max=1024), Dim("height_32", min=1, max=512), Dim("width_32", min=1, max=512)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            program = torch.onnx.export(exported, (example,), input_names=["pixel_values"], output_names=names,
                                        opset_version=opset, dynamo=True, verbose=False,
                                        dynamic_shapes={"pixel_values": {0: batch, 2: 32 * h32, 3: 32 * w32}})
        except Exception as err:  # the exporter raises many kinds
            raise RuntimeError(f"torch.onnx.export failed for {model.config.model_type}: {err}") from err
        program.save(str(temporary))
        graph = onnx.load(str(temporary))
        if optimize:
            rewrites["constant_resizes"] = _constant_resize_scales(graph, ort)
        processor = processor or TextDetectionImageProcessor.for_config(model.config)
        metadata = {"freereal_config": model.config.to_json_string(use_diff=False),
                    "freereal_outputs": json.dumps(layout), "freereal_processor": processor.to_json_string()}
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(temporary))
        try:
            session = ort.InferenceSession(str(temporary), providers=["CPUExecutionProvider"])
        except Exception as err:
            raise RuntimeError(f"ONNX Runtime {ort.__version__} cannot run the exported {model.config.model_type} "
                               f"graph (opset {opset}): {err}") from err
        check = torch.randn(2, 3, *check_size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = flat(check)
        difference = _max_relative_difference(session.run(names, {"pixel_values": check.numpy()}), expected)
        if not difference <= EXPORT_TOLERANCE:
            cause = (f"; the graph's {len(deform)} DCNv2 layers run as ONNX Runtime {ort.__version__}'s DeformConv, "
                     "which does not compute what torchvision's deform_conv2d does once the offsets are not 0 "
                     "(a trained DCNv2 model): export a preset without DCNv2" if deform else "")
            raise RuntimeError(f"ONNX Runtime's outputs differ from torch's by {difference:.3g} (relative) at "
                               f"{check_size}; the export is not trustworthy and was not written{cause}")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
        model.train(was_training)
    return {"path": str(path), "outputs": names, "opset": opset, "check_size": list(check_size),
            "max_relative_difference": difference, "rewrites": rewrites}


class OnnxTextDetector:
    """An exported detector run by ONNX Runtime, used like the torch model.

    ``detector(pixel_values)`` returns the model's output class (torch tensors on the CPU); ``post_process``
    applies the config's post-processing, ``processor`` is the recorded image processor and ``config`` the
    detector's config.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx`.
        threads: ONNX Runtime's intra-op threads (default: its own choice).
        spin: whether ONNX Runtime's idle worker threads spin-wait for the next operator (its default: the forward
            alone is faster). ``freereal-detect`` turns it off: its decoding and writing threads share the cores
            with the forward, and spinning workers took their time (docs/design.md).
    """

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool = True) -> None:
        _, ort = _require_onnx()
        from .models import DETECTORS

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path} is not a file" + (" (a folder)" if path.is_dir() else ""))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ValueError(f"{path} is not an ONNX model ONNX Runtime can load: {err}") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if "freereal_config" not in metadata:
            raise ValueError(f"{path} was not written by freereal-convert to-onnx (no freereal_config metadata)")
        config = json.loads(metadata["freereal_config"])
        if config.get("model_type") not in DETECTORS:
            raise ValueError(f"{path}: unknown detector {config.get('model_type')!r}; known: {sorted(DETECTORS)}")
        spec = DETECTORS[config["model_type"]]
        self.config = spec.config_class.from_dict(config)
        self.output_class = spec.model_class.output_class
        self.layout = [(f, i) for f, i in json.loads(metadata["freereal_outputs"])]
        self.names = [_flat_name(f, i) for f, i in self.layout]
        self.processor = TextDetectionImageProcessor.from_dict(json.loads(metadata["freereal_processor"]))

    def __call__(self, pixel_values: torch.Tensor | np.ndarray) -> Any:
        if isinstance(pixel_values, torch.Tensor):
            pixel_values = pixel_values.detach().float().cpu().numpy()
        arrays = self.session.run(self.names, {"pixel_values": np.ascontiguousarray(pixel_values, np.float32)})
        fields: dict[str, Any] = {}
        for (field, index), array in zip(self.layout, arrays):
            tensor = torch.from_numpy(array)
            if index is None:
                fields[field] = tensor
            else:
                fields[field] = (*fields.get(field, ()), tensor)
        return self.output_class(**fields)

    def post_process(self, outputs: Any, scale_factors: Sequence[tuple[float, float]] | None = None
                     ) -> list[dict[str, Any]]:
        """As ``model.post_process``: polygons and scores per image, with the config's parameters."""
        return outputs.post_process(scale_factors, **self.config.post_process_params())


__all__ = ["export_onnx", "OnnxTextDetector", "output_layout", "DEFAULT_OPSET", "EXPORT_TOLERANCE"]
