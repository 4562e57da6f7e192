"""Weights between freereal_hf (``save_pretrained`` folders) and MMOCR 1.x checkpoints.

MMOCR checkpoint files are ``{"meta": {...}, "state_dict": {...}}`` written with torch's legacy format;
``meta["cfg"]`` holds the MMOCR config text, so MMOCR's inferencer loads such a file alone. Foreign files
are read with ``torch.load(weights_only=True)``: nothing but tensors and plain types is unpickled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ..models import TextDetectionPreTrainedModel, config_from_preset, detector_spec
from ..outputs import write_then_swap

# MMOCR keeps these outside the detector's own weights; they are never part of ours.
_IGNORED_PREFIXES = ("data_preprocessor.",)


class CheckpointMismatchError(ValueError):
    """Raised when a checkpoint's keys or shapes do not fit the model; the message names them."""


def load_mmocr_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an MMOCR checkpoint (``module.`` prefixes stripped), loaded weights-only."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a weights-only torch checkpoint ({type(err).__name__}: {err})") from err
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: no state_dict of tensors found")
    return {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(_IGNORED_PREFIXES)}


def check_state_dict(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], source: str) -> None:
    """Raises :class:`CheckpointMismatchError` naming every missing, unexpected or mis-shaped key."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(f"{k}: {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
                    for k in set(expected) & set(given) if given[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", shapes)) if keys]
        raise CheckpointMismatchError(f"{source} does not fit the model: " + "; ".join(parts))


def mmocr_to_hf(checkpoint: str | os.PathLike, preset: str, output_dir: str | os.PathLike | None = None
                ) -> TextDetectionPreTrainedModel:
    """Builds the ``preset`` model (e.g. ``"dbnet_r18"``) from an MMOCR checkpoint; saves it when
    ``output_dir`` is given (``save_pretrained`` + the matching image-processor config, written in a folder
    beside it and moved in file by file when complete: other files there are left alone)."""
    from transformers import AutoModel

    config = config_from_preset(preset)
    model = AutoModel.from_config(config)
    state = load_mmocr_state_dict(checkpoint)
    check_state_dict(model.state_dict(), state, str(checkpoint))
    model.load_state_dict(state, strict=True)
    model.eval()
    if output_dir is not None:
        from ..image_processing import TextDetectionImageProcessor

        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            model.save_pretrained(staging)
            TextDetectionImageProcessor.for_config(config).save_pretrained(staging)
            for written in staging.iterdir():
                os.replace(written, out / written.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return model


def hf_to_mmocr(model: TextDetectionPreTrainedModel | str | os.PathLike, output_path: str | os.PathLike) -> Path:
    """Writes an MMOCR 1.x checkpoint of a model (an instance, a local folder or a Hub id)."""
    if not isinstance(model, torch.nn.Module):
        from ..training.common import load_model

        model = load_model(str(model))  # strict: missing or unexpected weights are an error, never random ones
    spec = detector_spec(model.config)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = {
        "cfg": spec.mmocr_config_text(model.config),
        "experiment_name": str(getattr(model.config, "preset", model.config.model_type)),
        "time": time.strftime("%Y%m%d_%H%M%S"),
        "converted_from": "freereal_hf",
        "source": str(getattr(model.config, "_name_or_path", "")),
    }
    checkpoint = {"meta": meta, "state_dict": state}
    return write_then_swap(output_path, lambda partial: torch.save(checkpoint, partial,
                                                                   _use_new_zipfile_serialization=False))
