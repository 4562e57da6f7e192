"""What the fine-tuning and pre-training loops share: models and datasets by name, optimiser and schedule,
checkpoint state, and the final save (weights, card, MMOCR export, Hub upload or dry run)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

logger = logging.getLogger("freereal_hf.training")

DEMO_PREFIX = "demo"


def load_model(name: str, seed: int | None = None) -> torch.nn.Module:
    """A detector by name: a preset (``dbnet_r18``...) builds fresh weights, anything else is a local folder or
    a Hub id for ``AutoModel.from_pretrained``."""
    from transformers import AutoModel

    from .. import PRESETS, config_from_preset

    if name in PRESETS:
        if seed is not None:
            torch.manual_seed(seed)
        return AutoModel.from_config(config_from_preset(name))
    return AutoModel.from_pretrained(name)


def parse_demo_spec(spec: str) -> dict[str, Any] | None:
    """``demo[:DOMAIN][:N][:SEED]`` (e.g. ``demo:real-like:16:1``) -> demo arguments; ``None`` if not a demo spec."""
    parts = spec.split(":")
    if parts[0] != DEMO_PREFIX:
        return None
    out: dict[str, Any] = {"domain": "synthetic", "num_images": 16, "seed": 0}
    numbers = iter(("num_images", "seed"))
    for part in parts[1:]:
        if part in ("synthetic", "real-like"):
            out["domain"] = part
            continue
        name = next(numbers, None)
        if name is None or not part.isdigit():
            raise ValueError(f"cannot read demo dataset spec {spec!r}: use demo[:synthetic|real-like][:N][:SEED]")
        out[name] = int(part)
    return out


def load_text_dataset(spec: str, split: str = "train", streaming: bool = False, image_size: int = 256):
    """A dataset in the schema by name: ``demo[:DOMAIN][:N][:SEED]`` (generated), a local folder (a
    ``freereal-prepare`` output or any Hub-like dataset folder) or a Hub id, through ``load_dataset``."""
    demo = parse_demo_spec(spec)
    if demo is not None:
        from ..data.demo import demo_dataset

        ds = demo_dataset(demo["domain"], demo["num_images"], demo["seed"], size=(image_size, image_size))
        return ds.to_iterable_dataset(num_shards=min(len(ds), 64)) if streaming else ds
    from datasets import load_dataset

    return load_dataset(spec, split=split, streaming=streaming)


def build_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9
                    ) -> torch.optim.Optimizer:
    """SGD with momentum (MMOCR's choice for DBNet) or AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


def warmup_poly_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int, power: float = 0.9
                         ) -> LambdaLR:
    """Linear warm-up from 0 over ``warmup_steps``, then MMOCR's poly decay ``(1 - t / T) ** power`` to 0 at
    ``max_steps`` (the schedule is in optimiser steps)."""
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, 1.0 - step / max(1, max_steps)) ** power
    return LambdaLR(optimizer, factor)


@dataclass
class TrainState:
    """Counters saved with every checkpoint (registered with ``accelerator.register_for_checkpointing``)."""

    global_step: int = 0
    epoch: int = 0
    samples_seen: int = 0
    streams: dict[str, tuple[int, int]] = field(default_factory=dict)  # data stream -> (epoch, batches taken)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, {n: (int(e), int(o)) for n, (e, o) in v.items()} if k == "streams" else int(v))


def make_accelerator(output_dir: str | Path, *, mixed_precision: str, gradient_accumulation_steps: int,
                     report_to: str, save_total_limit: int):
    """The ``Accelerator`` of both loops: checkpoints under ``output_dir/checkpoints`` (keep the newest
    ``save_total_limit``), TensorBoard logs under ``output_dir/logs``, seedable samplers.

    Runs in one process may follow each other with different settings (mixed precision...). Several
    processes on a machine without CUDA (``accelerate launch --multi_gpu --num_processes 2`` on a CPU)
    run as accelerate's multi-CPU (gloo) setup; accelerate would otherwise start independent single runs.
    """
    import os

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

    out = Path(output_dir)
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    # Each run is a new job: accelerate keeps its settings in a process-wide singleton and refuses a second
    # run in the same process with another precision. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(
        cpu=cpu, mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation_steps,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs"),
                                            automatic_checkpoint_naming=True, total_limit=save_total_limit),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))


def make_loader(dataset, batch_size: int, num_workers: int, shuffle: bool, seed: int):
    """The training DataLoader: full batches only, shuffled by a seeded generator (accelerate's seedable sampler
    re-seeds it per epoch)."""
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=True, num_workers=num_workers,
                      generator=generator, persistent_workers=False)


def backward_and_step(accelerator: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                      max_grad_norm: float | None) -> None:
    """Backward, gradient clipping when the gradients are synchronised (the last micro-batch of an
    accumulation), optimiser step and zeroing; inside ``accelerator.accumulate(model)``."""
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()


def tensorboard_writer(accelerator: Any) -> Any:
    """The main process's TensorBoard ``SummaryWriter``, or None (other processes, ``report_to none``)."""
    if not accelerator.is_main_process:
        return None
    try:
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
    except (ValueError, KeyError):
        return None
    return writer if hasattr(writer, "add_image") else None


COMPLETE = "checkpoint_complete"  # written after save_state returned on every process


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoints/checkpoint_N`` folder that was written completely (a run killed while saving
    leaves one without the marker), or None."""
    root = Path(output_dir) / "checkpoints"
    found = []
    for d in root.glob("checkpoint_*") if root.is_dir() else []:
        m = re.fullmatch(r"checkpoint_(\d+)", d.name)
        if m and (d / COMPLETE).exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def save_checkpoint(accelerator: Any) -> Path:
    """``accelerator.save_state()`` into the next ``checkpoints/checkpoint_N``, then the completion marker."""
    path = Path(accelerator.save_state())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / COMPLETE).write_text("ok\n")
    return path


def resume_latest(accelerator: Any, output_dir: str | Path, state: TrainState) -> Path | None:
    """Loads the newest complete checkpoint of ``output_dir`` (model, optimiser, registered objects, RNG
    states); removes unfinished checkpoint folders after it, so that the next save can take their name."""
    ckpt = latest_checkpoint(output_dir)
    if ckpt is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", Path(output_dir) / "checkpoints")
        return None
    number = int(ckpt.name.split("_")[-1])
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        import shutil

        for d in ckpt.parent.glob("checkpoint_*"):
            m = re.fullmatch(r"checkpoint_(\d+)", d.name)
            if m and int(m.group(1)) > number:
                logger.warning("removing the unfinished checkpoint %s", d)
                shutil.rmtree(d)
    accelerator.wait_for_everyone()
    accelerator.load_state(str(ckpt))
    accelerator.project_configuration.iteration = number + 1
    accelerator.print(f"resumed from {ckpt} at step {state.global_step}")
    return ckpt


def save_final(model: torch.nn.Module, output_dir: str | Path, *, job: str, datasets: list[str],
               hyperparameters: dict[str, Any], hmean: dict[str, float] | None = None,
               eval_dataset: str | None = None, base_model: str | None = None, push_to_hub: str | None = None,
               dry_run: bool = False, export_mmocr: bool = False) -> Path:
    """``save_pretrained`` + image processor + model card into ``output_dir/final``; optionally the MMOCR
    checkpoint next to it (``mmocr.pth``, kept out of the upload) and an upload (or its dry run)."""
    from ..hub import model_card, push_folder
    from ..image_processing import TextDetectionImageProcessor

    final = Path(output_dir) / "final"
    model.save_pretrained(final)
    TextDetectionImageProcessor.for_config(model.config).save_pretrained(final)
    card = model_card(model, job=job, datasets=datasets, hyperparameters=hyperparameters, hmean=hmean,
                      eval_dataset=eval_dataset, base_model=base_model, repo_id=push_to_hub)
    card.save(final / "README.md")
    (final / "training_args.json").write_text(json.dumps(hyperparameters, indent=1, default=str))
    if export_mmocr:
        from ..convert.mmocr import hf_to_mmocr

        hf_to_mmocr(model, Path(output_dir) / "mmocr.pth")
    if push_to_hub:
        push_folder(final, push_to_hub, dry_run=dry_run, commit_message=f"freereal_hf {job}")
    return final


__all__ = ["load_model", "load_text_dataset", "parse_demo_spec", "build_optimizer", "warmup_poly_schedule",
           "TrainState", "backward_and_step", "tensorboard_writer", "make_accelerator", "make_loader", "latest_checkpoint", "save_checkpoint",
           "resume_latest", "save_final"]
