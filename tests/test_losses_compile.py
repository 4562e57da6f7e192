"""Under ``torch.compile`` the OHEM losses read nothing on the host: DBNet's whole forward with its loss is one
graph (``fullgraph=True`` refuses a graph break) that is not recompiled when the count of hard negatives changes,
and the compiled selections equal the eager ones (which stay MMOCR's, see the ``*_vs_mmocr`` tests)."""

from __future__ import annotations

import numpy as np
import torch
from polygon_cases import random_polygons

from freereal_hf import DBNetConfig, DBNetForTextDetection
from freereal_hf.models.losses import balanced_bce_with_logits, ohem_text_mask


def test_dbnet_forward_with_loss_is_one_graph_for_any_text_count():
    from torch._dynamo.utils import counters

    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8)).train()
    x = torch.randn(2, 3, 64, 64)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # a host read would raise here
    counts = set()
    for polygons in (1, 4, 9):  # different numbers of positives, so of hard negatives
        targets = [model.build_targets(*random_polygons(rng, 64, 64, polygons), (64, 64)) for _ in range(2)]
        labels = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
        counts.add(int(labels["shrink_map"].sum()))
        ours, eager = compiled(x, labels=labels), model(x, labels=labels)
        for key in ("loss", "loss_prob", "loss_thr", "loss_db"):
            assert abs(ours[key].item() - eager[key].item()) <= 1e-6 * max(1.0, abs(eager[key].item())), key
    assert len(counts) == 3
    assert counters["stats"]["unique_graphs"] == 1  # traced once: no recompilation as the counts change


def test_compiled_ohem_equals_eager_at_the_edges():
    torch.manual_seed(4)
    shape = (4, 24, 40)
    scores, mask = torch.randn(shape), torch.rand(shape)
    gt = (torch.rand(shape) < 0.3).float()
    gt[1], gt[2] = 0, 1  # an image without text, one all text
    mask[3, :12] = 0.3  # ignored text pixels do not count as positives
    for fn, args in ((ohem_text_mask, (scores, gt, mask)),
                     (balanced_bce_with_logits, (scores, gt, mask)),
                     (balanced_bce_with_logits, (scores, torch.zeros(shape), mask))):  # no positive: loss 0
        torch._dynamo.reset()
        ours, eager = torch.compile(fn, fullgraph=True, backend="eager")(*args), fn(*args)
        assert ours.shape == eager.shape
        assert torch.allclose(ours, eager, rtol=1e-6, atol=0), fn.__name__
    assert balanced_bce_with_logits(scores, torch.zeros(shape), mask).item() == 0.0
