"""Inference-only rewrites of a detector: batch norms folded into the convolutions that feed them.

A detector in ``eval()`` mode computes ``bn(conv(x))`` as two passes over the feature map; folded, the batch
norm's scale and shift become the convolution's weights and bias, one pass (about 10 % of DBNet-R18's forward
on a CPU). The pairs are found by running the model once on a probe input, not by module names: a batch norm is
folded into a convolution only when each runs exactly once and the batch norm's input is that convolution's
output tensor itself. The rewritten model must then give the probe the same outputs (within ``tolerance``,
relative to each output's largest magnitude and at least 1, as the ONNX export's check: float32 rounding moves a
randomly initialised R50's logits of about 1000 by 3e-3, a wrongly folded pair moves them by their own size); if
it does not (a convolution's output also used elsewhere, which
no registered detector has), nothing is changed. A folded model is for inference only: it must not be trained or
saved (its state dict lacks the batch norms).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> tuple[list[tuple[str, str]], Any]:
    """``(conv name, batch norm name)`` pairs in which the batch norm reads the convolution's output directly,
    and the model's outputs on ``probe`` (the reference the folded model is checked against)."""
    calls: dict[str, int] = {}
    produced: dict[int, str] = {}  # id of an output tensor -> the convolution that returned it
    fed: dict[str, str] = {}  # batch norm -> the convolution whose output it read
    outputs: list[torch.Tensor] = []  # kept alive during the probe, so that no id is reused
    hooks = []

    def conv_hook(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            calls[name] = calls.get(name, 0) + 1
            produced[id(output)] = name
            outputs.append(output)
        return hook

    def bn_hook(name: str):
        def hook(_module: nn.Module, inputs: tuple) -> None:
            calls[name] = calls.get(name, 0) + 1
            source = produced.get(id(inputs[0]))
            if source is not None:
                fed[name] = source
        return hook

    for name, module in model.named_modules():
        if type(module) in (nn.Conv2d, nn.ConvTranspose2d):
            hooks.append(module.register_forward_hook(conv_hook(name)))
        elif type(module) is nn.BatchNorm2d:
            hooks.append(module.register_forward_pre_hook(bn_hook(name)))
    try:
        with torch.no_grad():
            result = model(probe, detect_only=True)
    finally:
        for hook in hooks:
            hook.remove()
    return [(conv, bn) for bn, conv in fed.items() if calls.get(conv) == 1 and calls.get(bn) == 1], result


def _flat(outputs: Any) -> list[torch.Tensor]:
    values = outputs.values() if hasattr(outputs, "values") else outputs
    flat: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            flat.append(v)
        elif isinstance(v, (tuple, list)):
            flat += [t for t in v if isinstance(t, torch.Tensor)]
    return flat


def fold_batch_norms(model: nn.Module, probe_size: tuple[int, int] = (96, 128), tolerance: float = 1e-3) -> int:
    """Folds, in place, every batch norm of ``model`` (a detector in ``eval()`` mode) that directly follows a
    convolution into it, and replaces the batch norm with ``nn.Identity``. Returns how many were folded (0 when
    the check on the probe fails, the model then unchanged).

    ``probe_size``: ``(H, W)`` of the probe input, multiples of 32. Raises ``ValueError`` for a model in training
    mode (its batch norms use batch statistics and would learn).
    """
    if model.training:
        raise ValueError("fold_batch_norms is for inference: call model.eval() first")
    device = next(model.parameters()).device
    probe = torch.randn(1, 3, *probe_size, generator=torch.Generator().manual_seed(0)).to(device)
    pairs, reference = _conv_bn_pairs(model, probe)
    if not pairs:
        return 0
    before = _flat(reference)
    modules = dict(model.named_modules())
    originals = {}
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        originals[conv_name], originals[bn_name] = conv, bn
        fused = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
        _replace(model, conv_name, fused)
        _replace(model, bn_name, nn.Identity())
    with torch.no_grad():
        after = _flat(model(probe, detect_only=True))
    worst = max(float((a - b).abs().max() / max(1.0, float(b.abs().max()))) for a, b in zip(after, before))
    if not worst <= tolerance:
        for name, module in originals.items():
            _replace(model, name, module)
        return 0
    return len(pairs)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


__all__ = ["fold_batch_norms"]
