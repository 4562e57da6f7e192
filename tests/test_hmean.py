"""The h-mean metric: equal to MMOCR's HmeanIOUMetric on random cases, and robust to any polygon."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest

from freereal_hf.metrics import HMEAN_PATH, hmean_iou


def _box(rng, cx, cy):
    w, h, a = rng.uniform(8, 40), rng.uniform(6, 20), rng.uniform(0, np.pi)
    c, s = np.cos(a), np.sin(a)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return (corners @ np.array([[c, s], [-s, c]]) + (cx, cy)).round(2)


def random_cases(seed: int, images: int = 12) -> list[dict]:
    """Images with labels (some ignored, some self-intersecting) and noisy, duplicated or spurious predictions."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(images):
        gts = [_box(rng, *rng.uniform(20, 180, 2)) for _ in range(int(rng.integers(0, 7)))]
        if gts and rng.random() < 0.3:
            gts.append(gts[0][[0, 2, 1, 3]])  # a bow tie: self-intersecting
        preds = [g + rng.normal(0, rng.choice([0.5, 3.0, 8.0]), g.shape) for g in gts if rng.random() < 0.8]
        preds += [_box(rng, *rng.uniform(20, 180, 2)) for _ in range(int(rng.integers(0, 3)))]
        if preds and rng.random() < 0.4:
            preds.append(preds[0] + 0.5)  # a duplicate detection
        cases.append({"gt_polygons": [g.reshape(-1).tolist() for g in gts],
                      "gt_ignored": [bool(rng.random() < 0.2) for _ in gts],
                      "pred_polygons": [p.reshape(-1).tolist() for p in preds],
                      "pred_scores": rng.uniform(0.2, 1.0, len(preds)).round(3).tolist()})
    return cases


def as_inputs(cases: list[dict]) -> tuple[list[dict], list[dict]]:
    preds = [{"polygons": [np.reshape(p, (-1, 2)).tolist() for p in c["pred_polygons"]], "scores": c["pred_scores"]}
             for c in cases]
    refs = [{"polygons": [np.reshape(p, (-1, 2)).tolist() for p in c["gt_polygons"]], "ignore": c["gt_ignored"]}
            for c in cases]
    return preds, refs


@pytest.mark.mmocr
@pytest.mark.parametrize("strategy", ["vanilla", "max_matching"])
def test_equals_mmocr_hmean_iou_metric(strategy, mmocr):
    metric = evaluate.load(HMEAN_PATH)
    cases = [case for seed in range(4) for case in random_cases(seed)]  # one MMOCR run over all four seeds' images
    reference = mmocr.hmean(cases, strategy)
    preds, refs = as_inputs(cases)
    ours = metric.compute(predictions=preds, references=refs, strategy=strategy)
    for key in ("precision", "recall", "hmean"):
        assert abs(ours[key] - reference[key]) <= 1e-9, (key, ours, reference)


def test_vanilla_and_max_matching_differ_where_greedy_order_loses():
    # label 0 overlaps both predictions, label 1 only the first: greedy (index order) pairs label 0 with
    # prediction 0 and leaves label 1 alone; maximum matching finds both pairs.
    a = [[0, 0], [10, 0], [10, 10], [0, 10]]
    b = [[4, 0], [14, 0], [14, 10], [4, 10]]
    mid = [[2, 0], [12, 0], [12, 10], [2, 10]]
    preds = [{"polygons": [mid, a], "scores": [0.9, 0.9]}]
    refs = [{"polygons": [mid, b], "ignore": [False, False]}]
    # IoU(mid, mid)=1, IoU(mid, a)=0.67, IoU(b, mid)=0.67, IoU(b, a)=0.43
    assert hmean_iou(preds, refs, "vanilla")["recall"] == 0.5
    assert hmean_iou(preds, refs, "max_matching")["recall"] == 1.0


def test_invalid_polygons_never_crash_and_never_match():
    box = [[0, 0], [10, 0], [10, 10], [0, 10]]
    preds = [{"polygons": [[[1, 1], [2, 2]], [[0, 0], [float("nan"), 1], [3, 3]], [[5, 5]] * 4, box, []],
              "scores": [0.9, 0.9, 0.9, 0.9, 0.9]}]
    refs = [{"polygons": [box, [[0, 0]], [[0, 0], [4, 4], [0, 4], [4, 0]]], "ignore": [False, False, True]}]
    result = evaluate.load(HMEAN_PATH).compute(predictions=preds, references=refs)
    # 2 kept labels (the 1-point one is empty and unmatched), 1 hit; the point-like predictions are empty
    # but still count as predictions, as in MMOCR
    assert result["recall"] == 0.5
    assert 0 < result["precision"] < 1


def test_mismatched_lengths_are_a_clear_error():
    with pytest.raises(ValueError, match="scores"):
        hmean_iou([{"polygons": [[[0, 0], [1, 0], [1, 1]]], "scores": []}], [{"polygons": [], "ignore": []}])
