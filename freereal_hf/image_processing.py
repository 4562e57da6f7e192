"""One image processor for every detector: MMOCR's test-time resize, normalisation and padding.

Images in: ``H x W x 3`` uint8 RGB arrays (or PIL images, or ``3 x H x W`` tensors). Out:
``pixel_values`` ``N x 3 x H' x W'`` float32, each image resized keeping its aspect ratio, normalised with
MMOCR's mean/std (0..255 units), then zero-padded at the bottom and right to a common size that is a
multiple of ``size_divisor``. ``scale_factors`` (``N x 2``, ``(sx, sy)`` = resized / original) and
``original_sizes`` (``N x 2``, ``(height, width)``) come along for post-processing.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

MMOCR_MEAN = (123.675, 116.28, 103.53)
MMOCR_STD = (58.395, 57.12, 57.375)


def normalization_table(mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``3 x 256`` float32: ``(v - mean[c]) / std[c]`` for every uint8 level ``v`` of each channel ``c``, in float32
    as MMOCR's data preprocessor computes it. The image processor (``cv2.LUT``) and the training batches
    (``freereal_hf.data.transforms.normalize_pixels``, on the device) both normalise by looking values up here."""
    levels = np.arange(256, dtype=np.float32)
    return np.stack([(levels - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)])


def keep_ratio_size(height: int, width: int, scale: Sequence[int] | None = None, long_side: int | None = None,
                    short_side: int | None = None) -> tuple[int, int]:
    """``(new_height, new_width)`` of a keep-ratio resize, rounded as mmcv's ``rescale_size``.

    ``scale = (a, b)`` fits the long side into ``max(a, b)`` and the short side into ``min(a, b)``
    (MMOCR's ``Resize(scale=(1333, 736), keep_ratio=True)``); ``long_side = L`` makes the long side ``L``;
    ``short_side = S`` makes the short side ``S`` (MMOCR's PANet test resize, ``ShortScaleAspectJitter`` with
    fixed ratios, which rounds half to even).
    """
    if short_side is not None:
        factor = short_side / min(height, width)
        return round(height * factor), round(width * factor)
    if scale is not None:
        factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    elif long_side is not None:
        factor = long_side / max(height, width)
    else:
        return height, width
    return int(height * factor + 0.5), int(width * factor + 0.5)


def to_rgb_array(image: Any) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from a PIL image, an ``H x W (x 1/3/4)`` array or a ``3 x H x W`` tensor.

    Grayscale is repeated to three channels, alpha dropped, 16-bit and float images (0..1 or 0..255) scaled
    to 8 bits. Raises ``ValueError`` for anything else.
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL
        image = np.asarray(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            image = image.transpose(1, 2, 0)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or 0 in image.shape:
        raise ValueError(f"expected an H x W x 3 image, got an array of shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = image.astype(np.float32)
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


class TextDetectionImageProcessor(BaseImageProcessor):
    """Resizes (keep ratio), normalises and pads images for the freereal_hf detectors, as MMOCR does at test time.

    Args:
        do_resize: resize at all.
        scale: ``[long, short]`` bound of the keep-ratio resize (MMOCR DBNet-R18: ``[1333, 736]``).
        long_side: instead of ``scale``, the length of the long side after resizing.
        short_side: instead of ``scale``, the length of the short side after resizing (PANet).
        image_mean / image_std: per-channel RGB mean and std in 0..255 units.
        size_divisor: padded height and width are multiples of it.
        pad_size: ``[height, width]`` to pad every image to instead (a multiple of ``size_divisor``), so that
            images of any aspect ratio batch together where the batching cannot pad (transformers'
            ``object-detection`` pipeline with ``batch_size > 1``); an image resized beyond it is an error.
        post_process_params: the detector's post-processing parameters (``for_config`` copies them from the
            config), used where no config is given: the ``object-detection`` pipeline.
        model_type: the detector's ``model_type`` (``for_config`` sets it): which output class plain output
            fields are, where the outputs arrive without theirs (transformers' pipelines pass a bare
            ``ModelOutput``).

    Example:
        >>> processor = TextDetectionImageProcessor(scale=[1333, 736])
        >>> inputs = processor(np.zeros((480, 640, 3), np.uint8), return_tensors="pt")
        >>> inputs["pixel_values"].shape, inputs["scale_factors"].tolist()
        (torch.Size([1, 3, 736, 992]), [[1.5333333..., 1.5333333...]])
    """

    model_input_names = ["pixel_values"]

    def __init__(self, do_resize: bool = True, scale: Sequence[int] | None = (1333, 736),
                 long_side: int | None = None, short_side: int | None = None, image_mean: Sequence[float] = MMOCR_MEAN,
                 image_std: Sequence[float] = MMOCR_STD, size_divisor: int = 32, pad_size: Sequence[int] | None = None,
                 post_process_params: dict[str, Any] | None = None, model_type: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.do_resize = do_resize
        # one resize rule: a long or short side replaces the keep-ratio bound (a saved processor drops None fields,
        # so on loading the default bound comes back beside the side that replaced it)
        self.scale = list(scale) if scale is not None and long_side is None and short_side is None else None
        self.long_side = long_side
        self.short_side = short_side
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.size_divisor = size_divisor
        if pad_size is not None and (len(pad_size) != 2 or any(int(v) <= 0 or int(v) % size_divisor for v in pad_size)):
            raise ValueError(f"pad_size must be [height, width], positive multiples of {size_divisor}; got {pad_size}")
        self.pad_size = [int(v) for v in pad_size] if pad_size is not None else None
        self.post_process_params = dict(post_process_params or {})
        self.model_type = model_type

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        """``BaseImageProcessor.save_pretrained``; beside a remote-code model (``register_for_auto_class``) the
        processor is registered as remote code too (``freereal_hf.remote_code.link_image_processor``)."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        try:  # absolute: as a repo's remote code this module runs without freereal_hf
            from freereal_hf.remote_code import link_image_processor
        except ImportError:
            return result
        link_image_processor(save_directory)
        return result

    @classmethod
    def for_config(cls, config: Any, long_side: int | None = None) -> "TextDetectionImageProcessor":
        """The processor matching a detector config's test resize (``config.test_short_side`` when the config has
        one, else the keep-ratio bound ``config.test_scale``), or resizing the long side to ``long_side`` when
        given (``--long-side`` / ``--eval_long_side``)."""
        known = {"post_process_params": config.post_process_params() if hasattr(config, "post_process_params")
                 else None, "model_type": getattr(config, "model_type", None)}
        if long_side:
            return cls(scale=None, long_side=int(long_side), **known)
        short = getattr(config, "test_short_side", None)
        if short:
            return cls(scale=None, short_side=int(short), **known)
        return cls(scale=list(getattr(config, "test_scale", (1333, 736))), **known)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """``(new_height, new_width)`` this processor resizes an ``height x width`` image to."""
        if not self.do_resize:
            return height, width
        return keep_ratio_size(height, width, self.scale, self.long_side, getattr(self, "short_side", None))

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        """Processes one image or a list of images (see the module docstring for shapes)."""
        if isinstance(images, (list, tuple)):
            images = list(images)
        elif isinstance(images, torch.Tensor) and images.ndim == 4:
            images = list(images)
        else:
            images = [images]
        # one table look-up per pixel, written straight into the padded batch (cv2.LUT: 14x faster than the
        # arithmetic over a 736 x 1178 image and its transposing copy, and the same bits; tests in
        # tests/test_dbnet_loss_and_processor.py)
        tables = [row.reshape(1, 256) for row in normalization_table(self.image_mean, self.image_std)]
        arrays, scale_factors, original_sizes = [], [], []
        for image in images:
            rgb = to_rgb_array(image)
            h, w = rgb.shape[:2]
            nh, nw = self.resized_size(h, w)
            if (nh, nw) != (h, w):
                rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
            arrays.append(rgb)
            scale_factors.append((nw / w, nh / h))
            original_sizes.append((h, w))
        d = self.size_divisor
        ph = -(-max(a.shape[0] for a in arrays) // d) * d
        pw = -(-max(a.shape[1] for a in arrays) // d) * d
        if getattr(self, "pad_size", None):
            if ph > self.pad_size[0] or pw > self.pad_size[1]:
                raise ValueError(f"an image resized to {ph} x {pw} (padded) does not fit pad_size {self.pad_size}")
            ph, pw = self.pad_size
        batch = np.zeros((len(arrays), 3, ph, pw), np.float32)
        for i, rgb in enumerate(arrays):
            for c, plane in enumerate(cv2.split(rgb)):
                target = batch[i, c, :rgb.shape[0], :rgb.shape[1]]
                written = cv2.LUT(plane, tables[c], dst=target)
                if not np.may_share_memory(written, target):  # (an OpenCV that would not write into the view)
                    target[...] = written
        data = {"pixel_values": batch, "scale_factors": np.asarray(scale_factors, np.float64),
                "original_sizes": np.asarray(original_sizes, np.int64)}
        return BatchFeature(data=data, tensor_type=return_tensors)

    def post_process_text_detection(self, outputs: Any, target_sizes: Sequence[tuple[int, int]] | None = None,
                                    config: Any = None, **params: Any) -> list[dict[str, list]]:
        """Detected text per image: ``{"polygons": [K x 2 float32 arrays (x, y)], "scores": [float]}``.

        Args:
            outputs: a detector's output (any freereal_hf detector).
            target_sizes: original ``(height, width)`` of each image; polygons come back in those pixels
                (the scale is recomputed with this processor's resize rule). ``None``: network-input pixels.
            config: the detector's config (``model.config``): its post-processing parameters are used (what
                ``model.post_process`` does). Without it, the processor's ``post_process_params`` (those of the
                config it was made for), else the post-processor's own defaults (MMOCR's).
            params: parameters overriding those (e.g. ``min_text_score=0.5``).
        """
        base = config.post_process_params() if config is not None else getattr(self, "post_process_params", {})
        params = {**base, **params}
        scale_factors = None
        if target_sizes is not None:
            scale_factors = []
            for h, w in (tuple(int(v) for v in s) for s in target_sizes):
                nh, nw = self.resized_size(h, w)
                scale_factors.append((nw / w, nh / h))
        return self._typed(outputs, config).post_process(scale_factors, **params)

    def _typed(self, outputs: Any, config: Any) -> Any:
        """``outputs`` as its detector's output class (a bare ``ModelOutput`` or dict is rebuilt by model type)."""
        if hasattr(outputs, "post_process"):
            return outputs
        model_type = getattr(config, "model_type", None) or getattr(self, "model_type", None)
        try:  # absolute: this module also runs as a repo's remote code, where freereal_hf may be missing
            from freereal_hf.models import DETECTORS
        except ImportError:
            raise ValueError("these outputs lost their class (a bare ModelOutput); pass the model's own outputs, "
                             "or install freereal_hf to rebuild them") from None
        if model_type not in DETECTORS:
            raise ValueError(f"cannot tell which detector gave these outputs (model_type {model_type!r}); make the "
                             "processor with TextDetectionImageProcessor.for_config(model.config)")
        output_class = DETECTORS[model_type].model_class.output_class
        fields = {k: v for k, v in outputs.items() if k in output_class.__dataclass_fields__}
        if any(isinstance(v, torch.Tensor) and v.ndim > 4 for v in fields.values()):
            # transformers' batch splitting (object-detection pipeline, batch_size > 1) indexed a tuple of levels
            # by image: one level of every image came back, the others are lost
            raise ValueError(f"{model_type}'s per-level outputs cannot pass transformers' batch splitting; use "
                             "batch_size=1 with the object-detection pipeline, or the text-detection pipeline")
        return output_class(**fields)

    def post_process_object_detection(self, outputs: Any, threshold: float = 0.0,
                                      target_sizes: Sequence[tuple[int, int]] | None = None, config: Any = None,
                                      **params: Any) -> list[dict[str, torch.Tensor]]:
        """Axis-aligned boxes of the detected text, as transformers' object detectors give them (its
        ``object-detection`` pipeline calls this).

        Returns per image ``{"scores": (K,) float32, "labels": (K,) int64, all 0 (text), "boxes": K x 4 float32
        (xmin, ymin, xmax, ymax)}`` in the pixels of ``target_sizes`` (original ``(height, width)`` per image;
        ``None``: network-input pixels): the bounding boxes of ``post_process_text_detection``'s polygons whose
        score is at least ``threshold`` (the detection score of the detector's post-processing, not a pixel
        threshold). ``config`` and ``params`` as in ``post_process_text_detection``.
        """
        results = []
        for found in self.post_process_text_detection(outputs, target_sizes, config, **params):
            keep = [i for i, s in enumerate(found["scores"]) if s >= threshold]
            boxes = [np.concatenate([found["polygons"][i].min(0), found["polygons"][i].max(0)]) for i in keep]
            results.append({"scores": torch.tensor([found["scores"][i] for i in keep], dtype=torch.float32),
                            "labels": torch.zeros(len(keep), dtype=torch.int64),
                            "boxes": torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4))})
        return results


__all__ = ["TextDetectionImageProcessor", "keep_ratio_size", "normalization_table", "to_rgb_array", "MMOCR_MEAN",
           "MMOCR_STD"]
