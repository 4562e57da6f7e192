"""Dense losses shared by the detectors, with MMOCR 1.0.1's semantics.

Every function takes maps of one shape (``N x H x W`` usually) and a mask of the same shape whose zero
pixels do not count. The mask may be fractional: GlyphMix and the teacher's confidence masking use
weights in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _ohem_balanced(loss: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, negative_ratio: float,
                   eps: float) -> torch.Tensor:
    """``(sum_pos + sum_topk_neg) / (n_pos + n_neg + eps)`` of a per-pixel ``loss`` (see
    :func:`balanced_bce_with_logits`).

    Eagerly the counts are read on the host and ``topk`` takes the hard negatives. Under ``torch.compile`` the
    same sum is taken without reading anything on the host: the negatives sorted once and the first ``n_neg`` of
    them kept by a mask, so the graph neither breaks nor recompiles when ``n_neg`` changes from one batch to the
    next. Eager code keeps ``topk``: a sort costs 1.7 to 3.7 times as much on a CPU (README "On a GPU"), and the
    masked sum may differ from ``topk``'s in the last bit, which would change the weights of runs that a study
    trains again to the same weights."""
    positive = target * mask
    negative = (1 - target) * mask
    if torch.compiler.is_compiling():
        # float64 counts: exact integers at any batch size (MMOCR truncates the float32 sums with int())
        n_pos = positive.sum().double().floor()
        count = torch.minimum(negative.sum().double().floor(), (n_pos * negative_ratio).floor()) * (n_pos > 0)
        ranked = torch.sort((loss * negative).reshape(-1), descending=True).values
        hard = torch.where(torch.arange(ranked.numel(), device=ranked.device) < count, ranked, 0).sum()
        return ((loss * positive).sum() + hard) / (n_pos + count + eps).to(loss.dtype)
    n_pos = int(positive.sum())
    n_neg = min(int(negative.sum()), int(n_pos * negative_ratio)) if n_pos > 0 else 0
    hard_negatives = torch.topk((loss * negative).reshape(-1), n_neg).values
    return ((loss * positive).sum() + hard_negatives.sum()) / (n_pos + n_neg + eps)


def balanced_bce_with_logits(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, negative_ratio: float = 3.0, eps: float = 1e-6
) -> torch.Tensor:
    """Binary cross-entropy with online hard negative mining (OHEM).

    All positive pixels (``target * mask``) count; of the negative ones (``(1 - target) * mask``) only the
    ``min(#neg, negative_ratio * #pos)`` with the largest loss. With no positive pixel no negative counts
    either (MMOCR's ``fallback_negative_num = 0``), and the loss is 0.

    Returns:
        ``(sum_pos + sum_topk_neg) / (n_pos + n_neg + eps)``, a scalar.
    """
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _ohem_balanced(loss, target, mask, negative_ratio, eps)


def masked_dice(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Dice loss over the whole batch at once: ``1 - 2 sum(p g) / (sum p + sum g + eps)`` on masked maps."""
    pred, target = pred * mask, target * mask
    return 1 - 2 * (pred * target).sum() / (pred.sum() + target.sum() + eps)


def masked_square_dice(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Square dice per image, ``1 - 2 sum(p g) / (sum p^2 + eps + sum g^2 + eps)``, then the batch mean."""
    n = pred.shape[0]
    pred, target, mask = pred.reshape(n, -1), target.reshape(n, -1).float(), mask.reshape(n, -1).float()
    pred, target = pred * mask, target * mask
    inter = (pred * target).sum(1)
    return (1 - 2 * inter / ((pred * pred).sum(1) + eps + (target * target).sum(1) + eps)).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L1 on masked maps, ``sum |p m - g m| / (sum m + eps)``.

    MMOCR configures SmoothL1 with ``beta = 0`` and, on torch >= 1.13, turns it into ``beta = eps``;
    the same is done here so that values agree exactly.
    """
    loss = F.smooth_l1_loss(pred * mask, target * mask, beta=eps, reduction="none")
    return loss.sum() / (mask.sum() + eps)


def ohem_text_mask(scores: torch.Tensor, gt_text: torch.Tensor, mask: torch.Tensor, negative_ratio: float = 3.0
                   ) -> torch.Tensor:
    """PSENet/PANet's online hard example mining of text pixels, per image (MMOCR's ``_ohem_single``).

    ``scores`` are the text logits, ``gt_text`` the text target, ``mask`` the pixel weights (all ``N x H x W``).
    Positives are the text pixels not ignored; of the non-text pixels (ignored ones included, as in MMOCR) the
    ``min(negative_ratio * #pos, #neg)`` highest-scoring are kept. An image without positives or negatives keeps
    its plain mask. Returns ``N x H x W`` float: the selected pixels times their weight.

    Under ``torch.compile`` the same selection without reading the counts on the host (each image's non-text
    scores sorted once, the threshold gathered at its count), as in :func:`_ohem_balanced`.
    """
    if torch.compiler.is_compiling():
        score = scores.detach()
        is_text = gt_text > 0.5
        pos = is_text.sum((1, 2)) - (is_text & (mask <= 0.5)).sum((1, 2))
        neg = torch.minimum((pos.double() * negative_ratio).floor().long(), (~is_text).sum((1, 2)))
        ranked = torch.sort(torch.where(is_text, float("-inf"), score).flatten(1), dim=1, descending=True).values
        threshold = ranked.gather(1, (neg - 1).clamp(min=0)[:, None])[:, :, None]
        plain = ((pos <= 0) | (neg <= 0))[:, None, None]
        return ((score >= threshold) | is_text | plain).to(mask.dtype) * (mask > 0.5) * mask
    out = []
    for score, text, weight in zip(scores.detach(), gt_text, mask):
        is_text = text > 0.5
        pos = int(is_text.sum()) - int((is_text & (weight <= 0.5)).sum())
        neg = min(int(pos * negative_ratio), int((~is_text).sum()))
        if pos <= 0 or neg <= 0:
            out.append((weight > 0.5).to(weight.dtype) * weight)
            continue
        threshold = torch.topk(score[~is_text], neg).values[-1]
        out.append(((score >= threshold) | is_text).to(weight.dtype) * (weight > 0.5) * weight)
    return torch.stack(out)


def pan_embedding_loss(embedding: torch.Tensor, instances: torch.Tensor, kernels: torch.Tensor, mask: torch.Tensor,
                       delta_aggregation: float = 0.5, delta_discrimination: float = 1.5,
                       regularization: float = 0.001) -> torch.Tensor:
    """PANet's embedding loss (MMOCR's ``PANEmbLossV1``), per image, returned as an ``N`` vector.

    ``embedding`` ``N x D x H x W``; ``instances`` ``N x H x W`` text-instance ids (0 = background); ``kernels``
    ``N x H x W`` (> 0.5 = kernel); ``mask`` ``N x H x W`` (> 0.5 = counted). Aggregation pulls each instance's
    pixels to the mean embedding of its kernel pixels, discrimination pushes kernel means at least
    ``2 * delta_discrimination`` apart, plus a small regularisation of the means' norms.
    """
    losses = []
    dim = embedding.shape[1]
    for emb, inst, kern, weight in zip(embedding, instances, kernels, mask):
        inst = inst.float() * (weight > 0.5).float()
        inst_kernel = (inst * (kern > 0.5).float()).reshape(-1)
        inst = inst.reshape(-1)
        emb = emb.reshape(dim, -1)
        labels = torch.unique(inst_kernel, sorted=True)
        n = labels.numel()
        if n <= 1:
            losses.append(emb.sum() * 0)
            continue
        means = emb.new_zeros((dim, n), dtype=torch.float32)
        aggregation = emb.new_zeros(n, dtype=torch.float32)
        for i, label in enumerate(labels):
            if label == 0:
                continue
            means[:, i] = emb[:, inst_kernel == label].mean(dim=1)
        for i, label in enumerate(labels):
            if label == 0:
                continue
            dist = (emb[:, inst == label] - means[:, i:i + 1]).norm(p=2, dim=0)
            aggregation[i] = torch.log(F.relu(dist - delta_aggregation) ** 2 + 1.0).mean()
        loss = aggregation[1:].mean()
        if n > 2:
            real = means[:, 1:].t()
            diff = (real[:, None, :] - real[None, :, :]).norm(p=2, dim=2)
            off = ~torch.eye(n - 1, dtype=torch.bool, device=diff.device)
            loss = loss + torch.log(F.relu(2 * delta_discrimination - diff[off]) ** 2 + 1.0).mean()
        loss = loss + torch.log(torch.norm(means, 2, 0) + 1.0).mean() * regularization
        losses.append(loss)
    return torch.stack(losses)
