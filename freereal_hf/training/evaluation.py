"""Detection and h-mean evaluation of any freereal_hf detector over a dataset in the schema."""

from __future__ import annotations

import contextlib
import functools
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from accelerate.utils import recursively_apply
from tqdm.auto import tqdm

from ..data.records import Report
from ..data.transforms import load_sample
from ..metrics import hmean_iou


def detect(model: torch.nn.Module, images: Sequence[np.ndarray], processor: Any, batch_size: int = 4,
           autocast: Any = None) -> list[dict[str, list]]:
    """Polygons (``K x 2`` float arrays, ``(x, y)`` original pixels) and scores for each ``H x W x 3`` uint8 RGB
    image, in batches of at most ``batch_size`` consecutive images of one size (so no image is padded to another's
    size, and an image's result does not depend on its neighbours). Post-processing is the
    model's, with its config's parameters. ``model``: a detector, or anything called the same way with a
    ``post_process`` (``freereal_hf.onnx_export.OnnxTextDetector``)."""
    return [result for _, finish in detection_runs(model, images, processor, batch_size, autocast)
            for result in finish()]


def detection_runs(model: torch.nn.Module, images: Sequence[np.ndarray], processor: Any, batch_size: int = 4,
                   autocast: Any = None) -> Iterator[tuple[int, Callable[[], list[dict[str, list]]]]]:
    """:func:`detect` one forward pass at a time: after each run of at most ``batch_size`` consecutive images of
    one size, yields ``(number of images, finish)``, where ``finish()`` post-processes that run and returns its
    results in image order. ``finish`` holds only the run's outputs, so it may be called later or in another
    thread while the next forward pass runs (``freereal-detect`` does)."""
    is_module = isinstance(model, torch.nn.Module)
    was_training = model.training if is_module else False
    if is_module:
        model.eval()
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    try:
        for start in range(0, len(images), batch_size):
            # consecutive images of one size run together; padding an image to a larger one's size would cost
            # forward time for nothing and change the predictions along its border
            for _, run in itertools.groupby(images[start:start + batch_size], key=lambda image: image.shape[:2]):
                run = list(run)
                with torch.no_grad():
                    inputs, outputs = _forward(model, run, processor, device, autocast, detect_only=is_module)
                yield len(run), functools.partial(model.post_process, outputs, inputs["scale_factors"].tolist())
    finally:
        if is_module:
            model.train(was_training)


def _forward(model: Any, images: list[np.ndarray], processor: Any, device: torch.device, autocast: Any = None,
             detect_only: bool = False) -> tuple[Any, Any]:
    """The processor's inputs for ``images`` and the model's outputs on them, as float32 on the CPU
    (``detect_only``: only what post-processing reads; a torch detector's flag, which an ONNX graph, exported
    that way, does not take)."""
    inputs = processor(images, return_tensors="pt")
    extra = {"detect_only": True} if detect_only else {}
    with autocast() if autocast is not None else contextlib.nullcontext():
        outputs = model(inputs["pixel_values"].to(device), **extra)
    return inputs, type(outputs)(**{k: recursively_apply(lambda t: t.float().cpu(), v) for k, v in outputs.items()})


def _scored(sample: dict[str, Any], detection: dict[str, Any]) -> tuple[dict, dict]:
    """A loaded sample and its detection as ``hmean_iou``'s prediction and reference (plain lists)."""
    return ({"polygons": [np.asarray(q).tolist() for q in detection["polygons"]], "scores": list(detection["scores"])},
            {"polygons": [q.tolist() for q in sample["polygons"]], "ignore": list(sample["ignore"])})


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
            pred, ref = _scored(s, p)
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


@torch.no_grad()
def evaluate_teacher(teacher: torch.nn.Module, dataset: Any, processor: Any, *, confidence: float | None = None,
                     batch_size: int = 4, accelerator: Any = None, report: Report | None = None) -> dict[str, float]:
    """The teacher's pseudo-labels measured against real labels (the pre-training's window into its teacher;
    the labels reach no loss). One forward pass per image gives both:

    - ``precision``, ``recall``, ``hmean``: the teacher's post-processed detections (the config's parameters),
      h-mean IoU as :func:`evaluate_detector`;
    - ``pixel_precision``, ``pixel_recall``: of the *confident text pixels* (text in ``pseudo_targets`` and not
      ignored) against the labels' text pixels, both at the finest level of the target spec (the labels rendered
      by the model's own ``build_targets`` at the input size; pixels the labels ignore count for neither);
    - ``ignored_fraction``: pixels that ``pseudo_targets`` sets to weight 0, over every level, as the trainer logs.

    Under accelerate the images are split across processes and the counts summed."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    was_training = teacher.training
    teacher.eval()
    device = next(teacher.parameters()).device
    spec = teacher.target_spec
    text_map, weight_map = spec.levels[0]
    counts = np.zeros(5)  # confident text & label text, confident text, label text, ignored, all weight pixels
    preds, refs = [], []
    indices = list(range(rank, len(dataset), world))
    for start in range(0, len(indices), batch_size):
        loaded = [s for s in (load_sample(dataset[i], report) for i in indices[start:start + batch_size])
                  if s is not None]
        if not loaded:
            continue
        inputs, outputs = _forward(teacher, [s["image"] for s in loaded], processor, device,
                                   accelerator.autocast if accelerator is not None else None)
        scales = inputs["scale_factors"].tolist()
        for s, p in zip(loaded, teacher.post_process(outputs, scales)):
            pred, ref = _scored(s, p)
            preds.append(pred)
            refs.append(ref)
        pseudo = teacher.pseudo_targets(outputs, confidence)
        size = tuple(inputs["pixel_values"].shape[-2:])
        for i, (s, (sx, sy)) in enumerate(zip(loaded, scales)):
            try:
                labels = teacher.build_targets([q * np.array([sx, sy], np.float32) for q in s["polygons"]],
                                               list(s["ignore"]), size)
            except ValueError as exc:  # labels the detector cannot take (more instances than its ids hold)
                (report or Report()).add("images left out of the pixel counts", s["key"], str(exc))
                continue
            counted = np.asarray(labels[weight_map.name]) > 0
            truth = (np.asarray(labels[text_map.name]) > 0.5) & counted
            confident = ((pseudo[text_map.name][i] > 0.5) & (pseudo[weight_map.name][i] > 0)).numpy() & counted
            counts[:3] += ((confident & truth).sum(), confident.sum(), truth.sum())
        weights = [pseudo[name] for name in spec.confidence_map]
        counts[3] += sum(float((w == 0).sum()) for w in weights)
        counts[4] += sum(w.numel() for w in weights)
    if accelerator is not None and world > 1:
        from accelerate.utils import gather_object

        preds, refs = gather_object(preds), gather_object(refs)
        counts = accelerator.reduce(torch.as_tensor(counts, device=accelerator.device), reduction="sum").cpu().numpy()
    teacher.train(was_training)
    detections = hmean_iou(preds, refs)
    return {"precision": detections["precision"], "recall": detections["recall"], "hmean": detections["hmean"],
            "pixel_precision": float(counts[0] / max(counts[1], 1.0)), "pixel_recall": float(counts[0] / max(counts[2], 1.0)),
            "ignored_fraction": float(counts[3] / max(counts[4], 1.0))}


__all__ = ["detect", "detection_runs", "evaluate_detector", "evaluate_teacher", "Evaluation"]
