"""Dense losses shared by the detectors, with MMOCR 1.0.1's semantics.

Every function takes maps of one shape (``N x H x W`` usually) and a mask of the same shape whose zero
pixels do not count. The mask may be fractional: GlyphMix and the teacher's confidence masking use
weights in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    positive = target * mask
    negative = (1 - target) * mask
    n_pos = int(positive.sum())
    n_neg = min(int(negative.sum()), int(n_pos * negative_ratio)) if n_pos > 0 else 0
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    hard_negatives = torch.topk((loss * negative).reshape(-1), n_neg).values
    return ((loss * positive).sum() + hard_negatives.sum()) / (n_pos + n_neg + eps)


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
