"""Detection and h-mean evaluation of any freereal_hf detector over a dataset in the schema."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from accelerate.utils import recursively_apply
from tqdm.auto import tqdm

from ..data.records import Report
from ..data.transforms import load_sample
from ..metrics import hmean_iou


@torch.no_grad()
def detect(model: torch.nn.Module, images: Sequence[np.ndarray], processor: Any, batch_size: int = 4,
           autocast: Any = None) -> list[dict[str, list]]:
    """Polygons (``K x 2`` float arrays, ``(x, y)`` original pixels) and scores for each ``H x W x 3`` uint8 RGB
    image, in batches of ``batch_size`` (padded to the largest image of the batch). Post-processing is the
    model's, with its config's parameters. ``model``: a detector, or anything called the same way with a
    ``post_process`` (``freereal_hf.onnx_export.OnnxTextDetector``)."""
    is_module = isinstance(model, torch.nn.Module)
    was_training = model.training if is_module else False
    if is_module:
        model.eval()
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    results: list[dict[str, list]] = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start:start + batch_size])
        inputs = processor(chunk, return_tensors="pt")
        with autocast() if autocast is not None else contextlib.nullcontext():
            outputs = model(inputs["pixel_values"].to(device))
        outputs = type(outputs)(**{k: recursively_apply(lambda t: t.float().cpu(), v) for k, v in outputs.items()})
        results += model.post_process(outputs, inputs["scale_factors"].tolist())  # the config's parameters
    if is_module:
        model.train(was_training)
    return results


@dataclass
class Evaluation:
    """``metrics``: precision, recall, hmean, score_thr over the whole set; ``per_image``: one dict per image
    (key, counts and the image's own h-mean); ``samples``: a few ``(image, prediction, reference)`` for drawing."""

    metrics: dict[str, float]
    per_image: list[dict[str, Any]]
    samples: list[tuple[np.ndarray, dict, dict]] = field(default_factory=list)


def evaluate_detector(model: torch.nn.Module, dataset: Any, processor: Any, *, batch_size: int = 4,
                      accelerator: Any = None, keep_samples: int = 0, progress: bool = False,
                      report: Report | None = None) -> Evaluation:
    """H-mean IoU (MMOCR's rules) of ``model`` on a map-style ``dataset`` in the schema.

    Under accelerate each process detects on every ``num_processes``-th image and the results are gathered,
    so every process returns the metric of the whole set. Images that do not decode are skipped and counted.
    """
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    preds, refs, keys, samples = [], [], [], []
    indices = list(range(rank, len(dataset), world))
    for start in tqdm(range(0, len(indices), batch_size), desc="evaluating", disable=not progress):
        loaded = [load_sample(dataset[i], report) for i in indices[start:start + batch_size]]
        loaded = [s for s in loaded if s is not None]
        if not loaded:
            continue
        out = detect(model, [s["image"] for s in loaded], processor, batch_size,
                     accelerator.autocast if accelerator is not None else None)
        for s, p in zip(loaded, out):
            pred = {"polygons": [np.asarray(q).tolist() for q in p["polygons"]], "scores": list(p["scores"])}
            ref = {"polygons": [q.tolist() for q in s["polygons"]], "ignore": list(s["ignore"])}
            preds.append(pred)
            refs.append(ref)
            keys.append(s["key"])
            if len(samples) < keep_samples:
                samples.append((s["image"], pred, ref))
    if accelerator is not None and world > 1:
        from accelerate.utils import gather_object

        preds, refs, keys = gather_object(preds), gather_object(refs), gather_object(keys)
    metrics = hmean_iou(preds, refs)
    per_image = []
    for key, pred, ref in zip(keys, preds, refs):
        t = metrics["score_thr"]  # the set's best threshold, not each image's own
        num_gt = len(ref["polygons"]) - int(sum(ref["ignore"]))
        m = hmean_iou([pred], [ref], score_thrs=(t, t + 1e-9, 1.0)) if num_gt else dict.fromkeys(
            ("precision", "recall", "hmean"), float("nan"))  # an image without labels has no score of its own
        per_image.append({"key": key, "num_gt": num_gt, "num_pred": len(pred["polygons"]),
                          **{k: m[k] for k in ("precision", "recall", "hmean")}})
    return Evaluation(metrics, per_image, samples)


__all__ = ["detect", "evaluate_detector", "Evaluation"]
