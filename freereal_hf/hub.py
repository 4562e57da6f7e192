"""Cards rendered from the templates in ``model_cards/`` and uploads to the Hub (or a dry run of them).

Publishing is ``save_pretrained`` (or a prepared dataset folder) + a card + ``upload_folder``: never
``model.push_to_hub``, which would replace the card. ``push_folder(..., dry_run=True)`` uploads nothing
and lists exactly the files that would be uploaded, which is how the Hub paths are exercised offline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

logger = logging.getLogger("freereal_hf.hub")

_PACKAGE = Path(__file__).resolve().parent
# the top-level model_cards/ of the checkout: installed from a wheel it is the package's model_cards/ (setup.cfg
# maps it there); run from a checkout (editable install) it is the folder beside the package
TEMPLATES = next((p for p in (_PACKAGE / "model_cards", _PACKAGE.parent / "model_cards") if p.is_dir()),
                 _PACKAGE / "model_cards")


def template_path(name: str) -> str:
    """Path of a card template of ``model_cards/`` (``FREEREAL_MODEL_CARDS`` names another folder)."""
    path = Path(os.environ.get("FREEREAL_MODEL_CARDS", TEMPLATES)) / name
    if not path.is_file():
        raise FileNotFoundError(f"card template {path} not found; this freereal_hf install lacks its model_cards/ "
                                "templates (set FREEREAL_MODEL_CARDS to that folder of a freereal_hf checkout)")
    return str(path)


def model_card(model: Any, *, job: str, datasets: Sequence[str] = (), hyperparameters: dict[str, Any] | None = None,
               hmean: dict[str, float] | None = None, eval_dataset: str | None = None, base_model: str | None = None,
               repo_id: str | None = None) -> ModelCard:
    """A model card for a trained detector, from ``model_cards/detector.md``.

    ``job``: "pre-training" or "fine-tuning"; ``hmean``: ``{"precision", "recall", "hmean"}`` on
    ``eval_dataset``, written as the model-index so the Hub shows it.
    """
    eval_results = None
    if hmean is not None:
        eval_results = [EvalResult(task_type="object-detection", dataset_type=eval_dataset or "unknown",
                                   dataset_name=eval_dataset or "unknown", metric_type="hmean",
                                   metric_name="h-mean (IoU 0.5)", metric_value=float(hmean["hmean"]))]
    data = ModelCardData(library_name="freereal_hf", tags=["text-detection", "scene-text", "freereal",
                                                           model.config.model_type],
                         pipeline_tag="object-detection", datasets=[d for d in datasets if "/" in d] or None,
                         base_model=base_model, eval_results=eval_results,
                         model_name=repo_id or model.config.model_type)
    return ModelCard.from_template(
        data, template_path=template_path("detector.md"), job=job, model_type=model.config.model_type,
        model_class=type(model).__name__, num_parameters=sum(p.numel() for p in model.parameters()),
        datasets=list(datasets), hyperparameters=hyperparameters or {}, hmean=hmean, eval_dataset=eval_dataset,
        base_model=base_model, repo_id=repo_id or "path/to/this/folder")


def dataset_card(*, name: str, source_format: str, splits: dict[str, int], features_yaml: list,
                 report: str, split_bytes: dict[str, int] | None = None) -> DatasetCard:
    """A dataset card with the YAML that makes ``load_dataset(folder_or_repo)`` find the parquet shards.
    ``split_bytes``: each split's size in bytes (its parquet files); datasets' validation of the card wants it."""
    split_bytes = split_bytes or {}
    data = DatasetCardData(
        pretty_name=name, task_categories=["object-detection"], tags=["text-detection", "ocr", "freereal"],
        configs=[{"config_name": "default",
                  "data_files": [{"split": s, "path": f"data/{s}-*"} for s in sorted(splits)]}],
        dataset_info={"features": features_yaml,
                      "splits": [{"name": s, "num_bytes": int(split_bytes.get(s, 0)), "num_examples": n}
                                 for s, n in sorted(splits.items())]})
    return DatasetCard.from_template(data, template_path=template_path("dataset.md"), name=name,
                                     source_format=source_format, splits=splits, report=report)


def push_folder(folder: str | Path, repo_id: str, *, repo_type: str = "model", dry_run: bool = False,
                commit_message: str = "Upload with freereal_hf", private: bool | None = None) -> list[str]:
    """Uploads ``folder`` to the Hub repo ``repo_id`` (created if needed) with ``upload_folder``.

    With ``dry_run`` nothing is sent: the files that would be uploaded are listed and returned (relative
    paths, sorted). Returns the same list after a real upload.
    """
    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    size = sum((folder / f).stat().st_size for f in files)
    if dry_run:
        print(f"dry run: would upload {len(files)} files ({size / 1e6:.1f} MB) from {folder} to the {repo_type} "
              f"repo {repo_id}:")
        for f in files:
            print(f"  {f}  ({(folder / f).stat().st_size} bytes)")
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, private=private)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=commit_message,
                      ignore_patterns=[".*", "**/.*"])
    logger.info("uploaded %d files to %s", len(files), repo_id)
    return files


__all__ = ["model_card", "dataset_card", "push_folder", "template_path", "TEMPLATES"]
