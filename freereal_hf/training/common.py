"""What the fine-tuning and pre-training loops share: models and datasets by name, optimiser and schedule,
checkpoint state, and the final save (weights, card, MMOCR export, Hub upload or dry run)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

logger = logging.getLogger("freereal_hf.training")

DEMO_PREFIX = "demo"


class UsageError(ValueError):
    """A bad argument, path or input, found before any work starts; the message names it and what is accepted.
    The command-line tools print it as one line (``prog: error: ...``) and exit with status 2."""


def load_model(name: str, seed: int | None = None, allow_fresh: bool = False) -> torch.nn.Module:
    """A detector by name: a preset (``dbnet_r18``...) builds fresh weights (only with ``allow_fresh``, where
    training follows: anywhere else random weights would give random detections with no error), anything else is
    a local folder or a Hub id for ``AutoModel.from_pretrained``.

    Loading is strict: a folder that is missing, a file, holds no weights or a garbage config, a model that is
    not a freereal_hf detector, and weights with missing, unexpected or mis-shaped keys (or a truncated file)
    raise :class:`UsageError` naming what is wrong; nothing is silently initialised at random.
    """
    from transformers import AutoModel

    from .. import PRESETS, config_from_preset
    from ..models import detector_spec

    if name in PRESETS:
        if not allow_fresh:
            raise UsageError(f"model {name!r} is a preset: it has no trained weights, and random ones would detect "
                             f"nothing real. Give a trained model: the folder a run wrote (OUTPUT_DIR/final) or a "
                             f"Hub id")
        if seed is not None:
            torch.manual_seed(seed)
        return AutoModel.from_config(config_from_preset(name))
    path = Path(name).expanduser()
    if path.is_file():
        raise UsageError(f"model {name!r} is a file; give the folder save_pretrained wrote (config.json and "
                         f"model.safetensors), a Hub id or a preset ({', '.join(sorted(PRESETS))})")
    local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if local and not path.is_dir():
        raise UsageError(f"model {name!r}: no such folder, and not a preset ({', '.join(sorted(PRESETS))})")
    if local and not (path / "config.json").is_file():
        raise UsageError(f"model {name!r}: the folder has no config.json (not a save_pretrained folder)")
    try:
        model, info = AutoModel.from_pretrained(name, output_loading_info=True)
    except Exception as err:  # transformers, safetensors and the Hub client raise many kinds
        bad = unreadable_file(path) if local else None  # name the file that does not read, if one does not
        where = f"{bad[0]} does not load ({bad[1]})" if bad else \
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        raise UsageError(f"cannot load model {name!r}: {where}") from err
    try:
        detector_spec(model.config)
    except ValueError as err:
        raise UsageError(f"model {name!r}: {err}") from err
    problems = [f"{label}: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}"
                for label, keys in (("missing weights", sorted(map(str, info.get("missing_keys") or []))),
                                    ("unexpected weights", sorted(map(str, info.get("unexpected_keys") or []))),
                                    ("mis-shaped weights", sorted(map(str, info.get("mismatched_keys") or []))))
                if keys]
    if problems:
        raise UsageError(f"model {name!r} does not fit its config: " + "; ".join(problems))
    return model


def check_arguments(args: Any) -> None:
    """The checks both training loops share, before any work: counts are positive, the crop a multiple of 32,
    demo dataset specs readable and not empty, the output folder usable. Raises :class:`UsageError` naming the argument."""
    for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "save_total_limit", "logging_steps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if getattr(args, "eval_images", 1) < 1:
        raise UsageError(f"--eval_images must be at least 1, got {args.eval_images}")
    if (getattr(args, "eval_long_side", None) or 32) < 32:
        raise UsageError(f"--eval_long_side must be at least 32, got {args.eval_long_side}")
    for name in ("num_workers", "warmup_steps", "save_steps", "eval_steps"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} must be 0 or more, got {getattr(args, name)}")
    if args.learning_rate <= 0:
        raise UsageError(f"--learning_rate must be positive, got {args.learning_rate}")
    if args.crop_size is not None and (args.crop_size < 32 or args.crop_size % 32):
        raise UsageError(f"--crop_size must be a positive multiple of 32 (the detectors' input), got {args.crop_size}")
    if not 0 < args.scale_min <= args.scale_max:
        raise UsageError(f"need 0 < --scale_min <= --scale_max, got {args.scale_min}, {args.scale_max}")
    if args.mixed_precision not in ("no", "fp16", "bf16"):
        raise UsageError(f"--mixed_precision must be no, fp16 or bf16, got {args.mixed_precision!r}")
    if args.optimizer not in ("sgd", "adamw"):
        raise UsageError(f"--optimizer must be sgd or adamw, got {args.optimizer!r}")
    check_compile_arguments(args)
    for name in ("train_dataset", "eval_dataset", "synthetic_dataset", "real_datasets"):
        specs = getattr(args, name, None) or []
        for spec in [specs] if isinstance(specs, str) else specs:
            try:
                demo = parse_demo_spec(spec)
            except ValueError as err:
                raise UsageError(f"--{name}: {err}") from None
            if demo is not None and demo["num_images"] < 1:
                raise UsageError(f"--{name}: a demo dataset needs at least 1 image, got {spec!r}")
    prepare_output_dir(args.output_dir, args.resume, args.overwrite_output_dir)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile_arguments(args: Any) -> None:
    """``--torch_compile_backend`` one of accelerate's dynamo backends, ``--torch_compile_mode`` one of
    torch.compile's modes (or unset)."""
    from accelerate.utils import DynamoBackend

    backends = sorted(b.value.lower() for b in DynamoBackend if b is not DynamoBackend.NO)
    if args.torch_compile_backend.lower() not in backends:
        raise UsageError(f"--torch_compile_backend must be one of {', '.join(backends)}, got "
                         f"{args.torch_compile_backend!r}")
    if args.torch_compile_mode is not None and args.torch_compile_mode not in COMPILE_MODES:
        raise UsageError(f"--torch_compile_mode must be one of {', '.join(COMPILE_MODES)}, got "
                         f"{args.torch_compile_mode!r}")


def memory_format(args: Any) -> torch.memory_format:
    """The memory format of the model and its input batches: ``channels_last`` with ``--channels_last`` (the
    layout GPU convolutions in bf16/fp16 run fastest in), else the usual contiguous one."""
    return torch.channels_last if args.channels_last else torch.contiguous_format


def require_labels(dataset: Any, column: str, name: str, role: str, probe: int = 64) -> None:
    """Refuses a dataset that cannot teach: ``column`` (``polygons``, or ``char_polygons`` for character
    targets) missing, or empty in each of its first ``probe`` records. Raises ``UsageError`` naming the dataset
    and its ``role`` ("synthetic dataset", "training dataset"); training on it would learn that there is no text."""
    from itertools import islice

    names = dataset.column_names or []
    what = "character boxes (char_polygons; needed with --char_mode true)" if column == "char_polygons" else \
        "word polygons (polygons)"
    if column not in names:
        raise UsageError(f"{role} {name!r} has no {what}; its columns are {names}")
    rows = islice(dataset.select_columns([column]), probe)
    if not any(len(r[column] or []) for r in rows):
        raise UsageError(f"{role} {name!r} has no {what} in its first {probe} records")


def run_logs(out: Path) -> list[str]:
    """The logs a run appends to that exist in ``out`` (relative names): pre-training's teacher measurements and
    its ``--record_samples`` logs."""
    found = [out / "teacher_eval.jsonl", *sorted((out / "samples").glob("rank_*.jsonl"))]
    return [str(path.relative_to(out)) for path in found if path.is_file()]


def prepare_output_dir(output_dir: str | Path, resume: bool, overwrite: bool) -> None:
    """Checks ``output_dir`` before the first step, like the Trainer's ``overwrite_output_dir``: it must be a
    writable folder; one that already holds a run (``checkpoints/`` or ``final/``), or only the logs a run appends
    to (:func:`run_logs`: a run killed before its first checkpoint leaves them and nothing else), is refused unless
    ``resume`` (continue it) or ``overwrite`` (its old checkpoints and logs are removed, ``final/`` is replaced at
    the end)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output_dir {out} is a file; give a folder")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite_output_dir contradict each other; give one")
    used = [n for n in ("checkpoints", "final") if (out / n).exists()]
    if used and not (resume or overwrite):
        raise UsageError(f"--output_dir {out} already holds a run ({', '.join(n + '/' for n in used)}); pass "
                         f"--resume true to continue it or --overwrite_output_dir true to replace it")
    logs = run_logs(out) if out.is_dir() else []
    if logs and not (resume or overwrite):  # (a new run would append to them)
        raise UsageError(f"--output_dir {out} holds an earlier run's logs ({', '.join(logs)}); pass --resume true to "
                         "continue that run or --overwrite_output_dir true to start them again")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--output_dir {out} is not writable: {err}") from err
    if overwrite and int(os.environ.get("RANK", "0")) == 0:
        if (out / "checkpoints").exists():
            logger.warning("--overwrite_output_dir: removing the previous run's checkpoints in %s", out / "checkpoints")
            shutil.rmtree(out / "checkpoints")
        for name in logs:  # one run's logs, not two appended (a resumed run trims the curve instead)
            logger.warning("--overwrite_output_dir: the previous run's %s starts again", out / name)
            (out / name).unlink()


def parse_demo_spec(spec: str) -> dict[str, Any] | None:
    """``demo[:DOMAIN][:N][:SEED]`` (e.g. ``demo:real-like:16:1``) -> demo arguments; ``None`` if not a demo spec."""
    parts = spec.split(":")
    if parts[0] != DEMO_PREFIX:
        return None
    from ..data.demo import DOMAINS  # here, not at start-up: the demo module loads fonts, photos and datasets

    out: dict[str, Any] = {"domain": "synthetic", "num_images": 16, "seed": 0}
    numbers = iter(("num_images", "seed"))
    for part in parts[1:]:
        if part in DOMAINS:
            out["domain"] = part
            continue
        name = next(numbers, None)
        if name is None or not part.isdigit():
            raise ValueError(f"cannot read demo dataset spec {spec!r}: use demo[:synthetic|real-like|curved][:N][:SEED]")
        out[name] = int(part)
    return out


def load_text_dataset(spec: str, split: str = "train", streaming: bool = False, image_size: int = 256):
    """A dataset in the schema by name: ``demo[:DOMAIN][:N][:SEED]`` (generated), a local folder (a
    ``freereal-prepare`` output or any Hub-like dataset folder) or a Hub id, through ``load_dataset``.

    A missing path, a file, an unknown split or a Hub id that cannot be reached raise :class:`UsageError`
    naming the dataset and the split.
    """
    demo = parse_demo_spec(spec)
    if demo is not None:
        from ..data.demo import demo_dataset

        ds = demo_dataset(demo["domain"], demo["num_images"], demo["seed"], size=(image_size, image_size))
        return ds.to_iterable_dataset(num_shards=min(len(ds), 64)) if streaming else ds
    from datasets import load_dataset

    path = Path(spec).expanduser()
    if path.is_file():
        raise UsageError(f"dataset {spec!r} is a file; give a freereal-prepare folder, a Hub-like dataset folder, "
                         f"a Hub id or demo[:synthetic|real-like|curved][:N][:SEED]")
    if (path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1) and not path.is_dir():
        raise UsageError(f"dataset {spec!r}: no such folder")
    try:
        return load_dataset(spec, split=split, streaming=streaming)
    except Exception as err:  # datasets raises ValueError for a missing split, FileNotFoundError, Hub errors...
        raise UsageError(f"cannot load dataset {spec!r} (split {split!r}): {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err


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
                     report_to: str, save_total_limit: int, torch_compile: bool = False,
                     torch_compile_backend: str = "inductor", torch_compile_mode: str | None = None):
    """The ``Accelerator`` of both loops: checkpoints under ``output_dir/checkpoints`` (keep the newest
    ``save_total_limit``), TensorBoard logs under ``output_dir/logs``, seedable samplers.

    With ``torch_compile`` the model given to ``prepare`` is compiled (accelerate's dynamo plugin, with
    ``torch_compile_backend`` and ``torch_compile_mode``); without it accelerate's own setting applies
    (``accelerate launch --dynamo_backend``). Code that needs the plain module (evaluation, EMA, saving) takes
    ``accelerator.unwrap_model(model, keep_torch_compile=False)``.

    Runs in one process may follow each other with different settings (mixed precision...). Several
    processes on a machine without CUDA (``accelerate launch --multi_gpu --num_processes 2`` on a CPU)
    run as accelerate's multi-CPU (gloo) setup; accelerate would otherwise start independent single runs.
    """
    import os

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, TorchDynamoPlugin

    out = Path(output_dir)
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    # Each run is a new job: accelerate keeps its settings in a process-wide singleton and refuses a second
    # run in the same process with another precision. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    dynamo = TorchDynamoPlugin(backend=torch_compile_backend.upper(), mode=torch_compile_mode) if torch_compile \
        else None
    return Accelerator(
        cpu=cpu, mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation_steps,
        log_with=None if report_to == "none" else report_to, dynamo_plugin=dynamo,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs"),
                                            automatic_checkpoint_naming=True, total_limit=save_total_limit),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))


def compiled(accelerator: Any, module: torch.nn.Module) -> torch.nn.Module:
    """``module`` compiled as the accelerator compiles the models it prepares (for a module it does not prepare,
    such as the EMA teacher); ``module`` itself when it compiles nothing."""
    from accelerate.utils import DynamoBackend

    plugin = accelerator.state.dynamo_plugin
    if plugin.backend == DynamoBackend.NO:
        return module
    return torch.compile(module, **plugin.to_kwargs())


DATA_WAIT_HINT = 0.2
"""Share of the step spent waiting for data above which ``--profile`` says how to feed the step faster."""


class StepTimer:
    """Seconds spent in each named part of the training steps, and the steps counted (``steps``). With ``sync``
    (profiling) the device is synchronised before each reading, so that a part's GPU work is counted in it, and
    the first step is left out as warm-up (workers starting, compilation) when more follow."""

    def __init__(self, parts: tuple[str, ...], device: torch.device, sync: bool) -> None:
        self.totals: dict[str, float] = {part: 0.0 for part in parts}
        self.device, self.sync = device, sync
        self.last = time.perf_counter()
        self.steps, self._warmed_up = 0, False

    def step_done(self, more_follow: bool) -> None:
        """Counts a finished optimiser step (after its last ``mark``)."""
        self.steps += 1
        if self.sync and not self._warmed_up and more_follow:
            self.totals = dict.fromkeys(self.totals, 0.0)
            self.steps, self._warmed_up = 0, True

    def mark(self, part: str) -> None:
        if self.sync and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.totals[part] = self.totals.get(part, 0.0) + now - self.last
        self.last = now

    def table(self, steps: int) -> str:
        """ms per step and share of each part, the step's total last; below it, when the step waits for data
        more than :data:`DATA_WAIT_HINT` of the time, what would feed it faster."""
        total = max(sum(self.totals.values()), 1e-12)
        lines = [f"{'part':<26}{'ms/step':>10}{'share':>8}"]
        for part, seconds in self.totals.items():
            lines.append(f"{part:<26}{1000 * seconds / max(1, steps):>10.1f}{100 * seconds / total:>7.1f}%")
        lines.append(f"{'step':<26}{1000 * total / max(1, steps):>10.1f}{100.0:>7.1f}%")
        wait = self.totals.get("data wait", 0.0) / total
        if wait > DATA_WAIT_HINT:
            lines.append(f"the step waits for data {100 * wait:.0f}% of the time: more DataLoader workers "
                         f"(--num_workers; per data stream in pre-training) or images stored as JPEG rather than "
                         f"PNG (decoding is about four times faster) would feed it faster")
        return "\n".join(lines)


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


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The ``checkpoints/checkpoint_N`` folders that were written completely (a run killed while saving leaves one
    without the marker), newest first."""
    root = Path(output_dir) / "checkpoints"
    found = []
    for d in root.glob("checkpoint_*") if root.is_dir() else []:
        m = re.fullmatch(r"checkpoint_(\d+)", d.name)
        if m and (d / COMPLETE).exists():
            found.append((int(m.group(1)), d))
    return [d for _, d in sorted(found, reverse=True)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = complete_checkpoints(output_dir)
    return found[0] if found else None


def save_checkpoint(accelerator: Any) -> Path:
    """``accelerator.save_state()`` into the next ``checkpoints/checkpoint_N``, then the completion marker."""
    path = Path(accelerator.save_state())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / COMPLETE).write_text("ok\n")
    return path


def unreadable_file(folder: Path) -> tuple[Path, str] | None:
    """The first file of a checkpoint folder that does not read whole (``.safetensors`` tensors, torch/pickle
    files), with the error; None when every file reads."""
    from safetensors import safe_open

    for path in sorted(folder.rglob("*")):
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), "pt") as f:
                    for key in f.keys():
                        f.get_tensor(key)
            elif path.suffix in (".bin", ".pt", ".pth", ".pkl"):
                torch.load(path, map_location="cpu", weights_only=False)  # our own files: RNG states are pickles
        except Exception as err:
            return path, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def resume_latest(accelerator: Any, output_dir: str | Path, state: TrainState) -> Path | None:
    """Loads the newest complete checkpoint of ``output_dir`` that loads (model, optimiser, registered objects,
    RNG states). A checkpoint whose files do not load (truncated weights or optimiser state) is reported with the
    file's error and the next older one is tried. Checkpoint folders after the one loaded (unfinished or broken)
    are renamed ``checkpoint_N.broken`` so the next save can take their name; nothing is deleted."""
    candidates = complete_checkpoints(output_dir)
    if not candidates:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", Path(output_dir) / "checkpoints")
        return None
    for ckpt in candidates:
        bad = unreadable_file(ckpt)
        if bad is None:
            try:
                accelerator.load_state(str(ckpt))
            except Exception as err:  # safetensors, torch.load and pickle raise many kinds
                bad = (ckpt, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        if bad is None:
            break
        logger.warning("--resume: %s does not load (%s); trying an older checkpoint", *bad)
    else:
        raise UsageError(f"--resume: none of the checkpoints in {Path(output_dir) / 'checkpoints'} loads "
                         f"({', '.join(c.name for c in candidates)}); see the warnings above")
    number = int(ckpt.name.split("_")[-1])
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for d in ckpt.parent.glob("checkpoint_*"):
            m = re.fullmatch(r"checkpoint_(\d+)", d.name)
            if m and int(m.group(1)) > number:
                logger.warning("--resume: setting aside %s (unfinished or not loadable) as %s.broken", d, d.name)
                d.rename(d.with_name(d.name + ".broken"))
    accelerator.wait_for_everyone()
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

    import tempfile

    final = Path(output_dir) / "final"
    staging = Path(tempfile.mkdtemp(prefix=".final.partial-", dir=output_dir))  # swapped in when complete
    try:
        model.save_pretrained(staging)
        TextDetectionImageProcessor.for_config(model.config).save_pretrained(staging)
        card = model_card(model, job=job, datasets=datasets, hyperparameters=hyperparameters, hmean=hmean,
                          eval_dataset=eval_dataset, base_model=base_model, repo_id=push_to_hub)
        card.save(staging / "README.md")
        (staging / "training_args.json").write_text(json.dumps(hyperparameters, indent=1, default=str))
        if final.exists():
            final.rename(staging.with_name(staging.name + ".old"))
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(staging.with_name(staging.name + ".old"), ignore_errors=True)
    if export_mmocr:
        from ..convert.mmocr import hf_to_mmocr

        hf_to_mmocr(model, Path(output_dir) / "mmocr.pth")
    if push_to_hub:
        push_folder(final, push_to_hub, dry_run=dry_run, commit_message=f"freereal_hf {job}")
    return final


__all__ = ["UsageError", "check_arguments", "require_labels", "prepare_output_dir", "run_logs", "load_model", "load_text_dataset", "parse_demo_spec", "build_optimizer", "warmup_poly_schedule",
           "TrainState", "backward_and_step", "tensorboard_writer", "make_accelerator", "make_loader", "latest_checkpoint", "save_checkpoint",
           "resume_latest", "save_final", "check_compile_arguments", "memory_format", "compiled", "StepTimer"]
