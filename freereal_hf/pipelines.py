"""transformers' ``pipeline("text-detection")``: polygons and scores of the text in images, in original pixels.

``import freereal_hf`` registers the task (and the detectors with ``AutoModelForObjectDetection``, so that
``pipeline("object-detection", model=...)`` gives their boxes). A repo saved after ``register_for_auto_class``
ships this file, so ``pipeline("text-detection", model=repo, trust_remote_code=True)`` also works where
freereal_hf is not installed: the module imports nothing from freereal_hf.

Example:
    >>> from transformers import pipeline
    >>> detector = pipeline("text-detection", model="outputs/finetune/final")
    >>> detector("photo.jpg")  # doctest: +SKIP
    [{'score': 0.91, 'label': 'text', 'polygon': [[12.0, 30.5], [88.0, 30.5], [88.0, 52.0], [12.0, 52.0]]}]
    >>> detector(["a.jpg", "b.png"], batch_size=2, min_text_score=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import Pipeline
from transformers.image_utils import load_image
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator


def _image_slice(value: Any, i: int) -> Any:
    """Image ``i`` of a batched output field: a tensor's row, each tensor of a tuple (one per level)."""
    if isinstance(value, torch.Tensor):
        return value[i:i + 1]
    if isinstance(value, (tuple, list)):
        return type(value)(_image_slice(v, i) for v in value)
    return value


def _pad_images(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collates preprocessed images of different sizes: zero padding at the bottom and right, as the image
    processor pads a batch (``pixel_values`` ``1 x 3 x h x w`` each -> ``N x 3 x H x W``)."""
    height = max(item["pixel_values"].shape[-2] for item in items)
    width = max(item["pixel_values"].shape[-1] for item in items)
    first = items[0]["pixel_values"]
    pixels = first.new_zeros((len(items), first.shape[1], height, width))
    for i, item in enumerate(items):
        h, w = item["pixel_values"].shape[-2:]
        pixels[i, :, :h, :w] = item["pixel_values"][0]
    return {"pixel_values": pixels, "original_sizes": torch.cat([item["original_sizes"] for item in items])}


class TextDetectionPipeline(Pipeline):
    """Text detection with any freereal_hf detector: per image a list of
    ``{"score": float, "label": "text", "polygon": [[x, y], ...]}`` in original pixels.

    Call parameters: ``timeout`` (loading images from URLs) and any post-processing parameter of the
    detector's config (``min_text_score``, ``unclip_ratio``, ``text_repr_type``... for DBNet; see its
    ``post_process_fields``), which override the config's values for that call. ``batch_size`` batches images of
    any sizes (padded as the image processor pads a batch).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, timeout: float | None = None, **post_process: Any):
        fields = set(getattr(self.model.config, "post_process_fields", ()))
        unknown = sorted(set(post_process) - fields)
        if unknown:
            raise ValueError(f"{unknown} are not post-processing parameters of {self.model.config.model_type}; "
                             f"it has {sorted(fields)}")
        return ({"timeout": timeout} if timeout is not None else {}), {}, post_process

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, torch.Tensor]:
        image = load_image(image, timeout=timeout)
        inputs = self.image_processor(images=[image], return_tensors="pt")
        return {"pixel_values": inputs["pixel_values"].to(self.dtype), "original_sizes": inputs["original_sizes"]}

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        outputs = self.model(pixel_values=model_inputs["pixel_values"], detect_only=True)  # what post-processing reads
        # plain fields per image: transformers' batch splitting would index a tuple of levels (FCENet) by image,
        # and its device move turns every ModelOutput into a bare one
        fields = {k: v for k, v in outputs.items() if not k.startswith("loss")}
        per_image = [{k: _image_slice(v, i) for k, v in fields.items()}
                     for i in range(len(model_inputs["pixel_values"]))]
        return {"outputs": per_image, "original_sizes": model_inputs["original_sizes"]}

    def postprocess(self, model_outputs: dict[str, Any], **post_process: Any) -> list[dict[str, Any]]:
        outputs = model_outputs["outputs"]
        outputs = self.model.output_class(**(outputs[0] if isinstance(outputs, list) else outputs))
        size = [int(v) for v in model_outputs["original_sizes"].reshape(-1, 2)[0]]
        found = self.image_processor.post_process_text_detection(outputs, target_sizes=[size],
                                                                 config=self.model.config, **post_process)[0]
        label = self.model.config.id2label.get(0, "text")
        return [{"score": float(score), "label": label, "polygon": polygon.tolist()}
                for polygon, score in zip(found["polygons"], found["scores"])]

    def get_iterator(self, inputs: Any, num_workers: int, batch_size: int, preprocess_params: dict,
                     forward_params: dict, postprocess_params: dict) -> Any:
        """transformers' iterator, with a collate that pads images of different sizes when ``batch_size > 1``
        (its own concatenates ``pixel_values`` and needs equal sizes)."""
        if batch_size <= 1:
            return super().get_iterator(inputs, num_workers, batch_size, preprocess_params, forward_params,
                                        postprocess_params)
        if isinstance(inputs, Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:  # a generator: one loader process keeps its order
            dataset, num_workers = PipelineIterator(inputs, self.preprocess, preprocess_params), min(num_workers, 1)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_pad_images)
        forwarded = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(forwarded, self.postprocess, postprocess_params)


__all__ = ["TextDetectionPipeline"]
