"""Inference-only rewrites of a detector: batch norms folded into the convolutions that feed them, and (for ONNX
Runtime) two stacked 2x2 transposed convolutions computed as 1x1 convolutions and one pixel shuffle.

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

:func:`fuse_transposed_pairs` is for the ONNX export only (``freereal_hf.onnx_export``): ONNX Runtime's
``ConvTranspose`` writes its output as a separate memory-bound pass (DBNet's head: 8 % of a 736 x 736 forward),
while torch's oneDNN kernels gain nothing from the rewrite (measured, docs/design.md).
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


class TransposedPair(nn.Module):
    """``t2(relu(t1(x)))`` for two transposed convolutions of kernel 2 and stride 2 (no padding, groups or
    dilation), computed at the input's resolution: a 1x1 convolution to ``t1``'s four output phases (channel
    ``(2a + b) * C1 + c`` holds ``t1``'s channel ``c`` at offset ``(a, b)``), ReLU, a 1x1 convolution to the sixteen
    phases of ``t2`` (zero weights where a phase of ``t2`` does not read a phase of ``t1``), and a pixel shuffle
    by 4. ``N x Cin x H x W`` -> ``N x C2 x 4H x 4W``, equal to the pair up to float32 summation order."""

    def __init__(self, first: nn.ConvTranspose2d, second: nn.ConvTranspose2d) -> None:
        super().__init__()
        c_in, c1, c2 = first.in_channels, first.out_channels, second.out_channels
        w1, w2 = first.weight.detach(), second.weight.detach()  # Cin x C1 x 2 x 2, C1 x C2 x 2 x 2
        b1 = first.bias.detach() if first.bias is not None else w1.new_zeros(c1)
        b2 = second.bias.detach() if second.bias is not None else w2.new_zeros(c2)
        self.phases = nn.Conv2d(c_in, 4 * c1, 1).to(w1.device, w1.dtype)
        self.shuffle = nn.Conv2d(4 * c1, 16 * c2, 1).to(w2.device, w2.dtype)
        with torch.no_grad():
            self.phases.weight.copy_(w1.permute(2, 3, 1, 0).reshape(4 * c1, c_in, 1, 1))
            self.phases.bias.copy_(b1.repeat(4))
            weight = w2.new_zeros(c2, 4, 4, 2, 2, c1)  # (output channel, row A, column B) x (phase a, b) x C1
            for a in range(2):
                for b in range(2):
                    # output pixel (4i + 2a + a', 4j + 2b + b') reads t1's phase (a, b) through t2's tap (a', b')
                    weight[:, 2 * a:2 * a + 2, 2 * b:2 * b + 2, a, b] = w2.permute(1, 2, 3, 0)
            self.shuffle.weight.copy_(weight.reshape(16 * c2, 4 * c1, 1, 1))
            self.shuffle.bias.copy_(b2.repeat_interleave(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(self.shuffle(torch.relu(self.phases(x))), 4)


def _is_plain_up2(module: nn.Module) -> bool:
    return (type(module) is nn.ConvTranspose2d and module.kernel_size == (2, 2) and module.stride == (2, 2)
            and module.padding == (0, 0) and module.output_padding == (0, 0) and module.dilation == (1, 1)
            and module.groups == 1)


def fuse_transposed_pairs(model: nn.Module) -> int:
    """Replaces, in place, each ``ConvTranspose2d(2, 2) - ReLU - ConvTranspose2d(2, 2)`` run of an ``nn.Sequential``
    (``nn.Identity`` between them allowed: batch norms folded by :func:`fold_batch_norms` first) with one
    :class:`TransposedPair`, the ReLU and second convolution with ``nn.Identity``. Returns how many were replaced.
    For inference only (the state dict changes)."""
    count = 0
    for sequential in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        layers = [(i, m) for i, m in enumerate(sequential) if type(m) is not nn.Identity]
        n = 0
        while n + 2 < len(layers):
            (i, first), (j, relu), (k, second) = layers[n:n + 3]
            if (_is_plain_up2(first) and type(relu) is nn.ReLU and _is_plain_up2(second)
                    and second.in_channels == first.out_channels):
                sequential[i] = TransposedPair(first, second)
                sequential[j], sequential[k] = nn.Identity(), nn.Identity()
                count += 1
                n += 3  # the second convolution is used: a third one cannot pair with it
            else:
                n += 1
    return count


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


__all__ = ["fold_batch_norms", "fuse_transposed_pairs", "TransposedPair"]
