"""H-mean IoU for text detection, with the rules of MMOCR 1.0.1's ``HmeanIOUMetric``.

An ``evaluate`` module: ``evaluate.load("<path to>/freereal_hf/metrics/hmean")``. Self-contained (numpy,
scipy, shapely), so ``evaluate`` can copy it alone.

Rules:
- a prediction scoring below the lowest threshold is dropped, and so is one whose area lies more than
  ``ignore_precision_thr`` (0.5) inside an ignored label;
- IoU between kept labels and kept predictions with shapely, invalid polygons made valid (``buffer(0)``, the
  convex hull when that gives several pieces); polygons with fewer than 3 points or non-finite coordinates
  are empty (they never match);
- for each score threshold in ``arange(0.3, 0.9, 0.1)`` a label and a prediction match when their IoU is
  strictly above ``match_iou_thr`` (0.5): ``"vanilla"`` matches greedily in (label, prediction) index
  order, ``"max_matching"`` takes a maximum bipartite matching;
- hits, labels and predictions are summed over the dataset; the threshold with the best h-mean is reported;
- where the references hold no label to score against, precision, recall and h-mean are NaN (with a
  warning), never a perfect score; a NaN prediction score counts as no score (the prediction is dropped).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import datasets
import evaluate
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from shapely.geometry import Polygon

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: per image ``{"polygons": [[[x, y], ...], ...], "scores": [float, ...]}``.
    references: per image ``{"polygons": [[[x, y], ...], ...], "ignore": [bool, ...]}``.
    strategy: ``"vanilla"`` (default, MMOCR's) or ``"max_matching"``.
    match_iou_thr: IoU a match must exceed (0.5).
    ignore_precision_thr: share of a prediction's area inside an ignored label that drops it (0.5).
    score_thrs: ``(start, stop, step)`` of the score thresholds (``(0.3, 0.9, 0.1)``).
Returns:
    ``precision``, ``recall``, ``hmean`` at the best threshold, and that ``score_thr``.
Example:
    >>> metric = evaluate.load("freereal_hf/metrics/hmean")
    >>> box = [[0, 0], [10, 0], [10, 10], [0, 10]]
    >>> metric.compute(predictions=[{"polygons": [box], "scores": [0.9]}],
    ...                references=[{"polygons": [box], "ignore": [False]}])["hmean"]
    1.0
"""

_POLYGONS = datasets.List(datasets.List(datasets.List(datasets.Value("float32"))))


def to_shapely(points: Sequence) -> Polygon:
    """A shapely polygon of ``K x 2`` points; empty when it has < 3 points or non-finite coordinates."""
    try:
        pts = np.asarray(points, np.float32).reshape(-1, 2)
    except (ValueError, TypeError):
        return Polygon()
    if len(pts) < 3 or not np.isfinite(pts).all():
        return Polygon()
    return Polygon(pts)


def _valid(poly: Polygon) -> Polygon:
    fixed = poly if poly.is_valid else poly.buffer(0)
    return fixed if isinstance(fixed, Polygon) else fixed.convex_hull


def _intersection(a: Polygon, b: Polygon) -> float:
    a, b = _valid(a), _valid(b)
    return a.intersection(b).area if a.is_valid and b.is_valid and a.intersects(b) else 0.0


def _iou(a: Polygon, b: Polygon) -> float:
    a, b = _valid(a), _valid(b)
    if not (a.is_valid and b.is_valid):
        return 0.0
    inter = a.intersection(b).area if a.intersects(b) else 0.0
    union = a.union(b).area
    return inter / union if union != 0 else 0.0


def image_iou_table(pred_polygons: Sequence, pred_scores: Sequence[float], gt_polygons: Sequence,
                    gt_ignore: Sequence[bool], min_score: float = 0.3, ignore_precision_thr: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One image: the ``labels x predictions`` IoU table of the kept ones, and the kept predictions' scores."""
    preds = [to_shapely(p) for p in pred_polygons]
    gts = [to_shapely(p) for p in gt_polygons]
    scores = np.asarray(list(pred_scores), np.float32).reshape(-1)
    ignore = np.zeros(len(gts), bool) if gt_ignore is None else np.asarray(list(gt_ignore), bool).reshape(-1)
    if len(scores) != len(preds) or len(ignore) != len(gts):
        raise ValueError(f"{len(preds)} predicted polygons with {len(scores)} scores, "
                         f"{len(gts)} label polygons with {len(ignore)} ignore flags")
    dropped = ~(scores >= min_score)  # a NaN score is no score: dropped, never above every threshold
    for i in np.flatnonzero(~dropped):
        for j in np.flatnonzero(ignore):
            if _intersection(gts[j], preds[i]) / (preds[i].area + 1e-5) > ignore_precision_thr:
                dropped[i] = True
                break
    kept_gt, kept_pred = np.flatnonzero(~ignore), np.flatnonzero(~dropped)
    table = np.zeros((len(kept_gt), len(kept_pred)))
    for c, i in enumerate(kept_pred):
        for r, j in enumerate(kept_gt):
            table[r, c] = _iou(gts[j], preds[i])
    return table, scores[kept_pred]


def _hmean(hits: int, n_gt: int, n_pred: int) -> tuple[float, float, float]:
    if n_gt == 0:
        recall, precision = 1.0, (0.0 if n_pred > 0 else 1.0)
    else:
        recall, precision = hits / n_gt, (0.0 if n_pred == 0 else hits / n_pred)
    denom = precision + recall
    return precision, recall, (0.0 if denom == 0 else 2.0 * precision * recall / denom)


def hmean_iou(predictions: Sequence[dict], references: Sequence[dict], strategy: str = "vanilla",
              match_iou_thr: float = 0.5, ignore_precision_thr: float = 0.5,
              score_thrs: Sequence[float] = (0.3, 0.9, 0.1)) -> dict[str, float]:
    """The metric on plain Python/numpy inputs (what ``compute`` calls); see the module docstring."""
    if strategy not in ("vanilla", "max_matching"):
        raise ValueError(f"strategy must be 'vanilla' or 'max_matching', got {strategy!r}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    thresholds = np.arange(*score_thrs)
    pred_num, hit_num, gt_num = np.zeros(len(thresholds)), np.zeros(len(thresholds)), 0
    for pred, ref in zip(predictions, references):
        table, scores = image_iou_table(pred.get("polygons") or [], pred.get("scores") or [],
                                        ref.get("polygons") or [], ref.get("ignore"), thresholds.min(),
                                        ignore_precision_thr)
        gt_num += table.shape[0]
        for t, thr in enumerate(thresholds):
            keep = scores >= thr
            matched = table[:, keep] > match_iou_thr
            if strategy == "max_matching":
                hit_num[t] += int(np.sum(maximum_bipartite_matching(csr_matrix(matched), perm_type="row") != -1))
            else:
                used_gt, used_pred = set(), set()
                for g, p in zip(*np.nonzero(matched)):
                    if g not in used_gt and p not in used_pred:
                        used_gt.add(g)
                        used_pred.add(p)
                hit_num[t] += len(used_gt)
            pred_num[t] += int(keep.sum())
    if gt_num == 0:  # nothing to score against: no score at all, never a perfect one
        warnings.warn("h-mean: the references hold no (non-ignored) text polygon; precision, recall and h-mean are "
                      "NaN", stacklevel=2)
        nan = float("nan")
        return {"precision": nan, "recall": nan, "hmean": nan, "score_thr": float(thresholds[0])}
    best = {"precision": 0.0, "recall": 0.0, "hmean": -1.0, "score_thr": float(thresholds[0])}
    for t, thr in enumerate(thresholds):
        precision, recall, hmean = _hmean(int(hit_num[t]), int(gt_num), int(pred_num[t]))
        if hmean > best["hmean"]:
            best = {"precision": precision, "recall": recall, "hmean": hmean, "score_thr": float(thr)}
    return best


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Hmean(evaluate.Metric):
    """``evaluate`` front end of :func:`hmean_iou`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": {"polygons": _POLYGONS, "scores": datasets.List(datasets.Value("float32"))},
                "references": {"polygons": _POLYGONS, "ignore": datasets.List(datasets.Value("bool"))},
            }),
            reference_urls=["https://github.com/open-mmlab/mmocr"],
        )

    def _compute(self, predictions, references, strategy: str = "vanilla", match_iou_thr: float = 0.5,
                 ignore_precision_thr: float = 0.5, score_thrs: Sequence[float] = (0.3, 0.9, 0.1)):
        return hmean_iou(predictions, references, strategy, match_iou_thr, ignore_precision_thr, score_thrs)
