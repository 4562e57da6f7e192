"""Supervised fine-tuning of any freereal_hf detector with accelerate (``freereal-finetune``).

One process or many (``accelerate launch``): the data loader is sharded by accelerate, evaluation is split
across processes and gathered. Checkpoints (``save_state``: model, optimiser, schedule, RNG states, step
counter) go to ``OUTPUT_DIR/checkpoints/checkpoint_N``; ``--resume`` continues from the newest one and, since
the shuffling is seeded per epoch and each record's augmentation is seeded by ``(seed, epoch, key)``, ends
where an uninterrupted run would. The result (``OUTPUT_DIR/final``) is ``save_pretrained`` + image processor +
a model card with the h-mean as model-index.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .common import (StepTimer, TrainState, UsageError, backward_and_step, build_optimizer, check_arguments, load_model,
                     load_text_dataset, make_accelerator, make_loader, memory_format, require_labels, resume_latest,
                     save_checkpoint, save_final, tensorboard_writer, warmup_poly_schedule)

logger = logging.getLogger("freereal_hf.training")


@dataclass
class FinetuneArguments:
    """Arguments of ``freereal-finetune`` (command line, or a YAML/JSON file given as the only argument)."""

    output_dir: str = field(default="outputs/finetune", metadata={"help": "checkpoints, logs and final/ go here"})
    model: str = field(default="dbnet_r18", metadata={"help": "preset name, local folder or Hub id"})
    train_dataset: str = field(default="demo:synthetic:16",
                               metadata={"help": "Hub id, local folder, or demo[:synthetic|real-like|curved][:N][:SEED]"})
    train_split: str = "train"
    eval_dataset: str | None = field(default=None, metadata={"help": "default: the training set"})
    eval_split: str = "test"
    max_steps: int = field(default=300, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=4, metadata={"help": "per process"})
    optimizer: str = field(default="adamw", metadata={"help": "sgd (MMOCR's, lr 0.007) or adamw"})
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_steps: int = 20
    poly_power: float = 0.9
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = field(default=None, metadata={"help": "clip gradients to this norm"})
    mixed_precision: str = field(default="no", metadata={"help": "no, fp16 or bf16"})
    torch_compile: bool = field(default=False, metadata={"help": "compile the model with torch.compile (through "
                                                                 "accelerate); evaluation runs the plain model"})
    torch_compile_backend: str = field(default="inductor", metadata={"help": "torch.compile's backend"})
    torch_compile_mode: str | None = field(default=None, metadata={
        "help": "torch.compile's mode: default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs"})
    channels_last: bool = field(default=False, metadata={
        "help": "model and batches in channels-last memory (faster convolutions on GPUs in bf16/fp16)"})
    crop_size: int = field(default=640, metadata={"help": "training crop side (multiple of 32)"})
    scale_min: float = 0.5
    scale_max: float = 3.0
    rotate_degrees: float = 10.0
    flip_prob: float = 0.5
    eval_long_side: int | None = field(default=None, metadata={"help": "test resize: long side (default: the "
                                                                        "model's test scale)"})
    eval_steps: int = field(default=100, metadata={"help": "evaluate every N steps (0: only at the end)"})
    save_steps: int = field(default=100, metadata={"help": "checkpoint every N steps"})
    save_total_limit: int = field(default=2, metadata={"help": "keep the newest K checkpoints"})
    logging_steps: int = 10
    log_images: int = field(default=4, metadata={"help": "eval images with polygons drawn, to TensorBoard"})
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard or none"})
    num_workers: int = field(default=2, metadata={"help": "DataLoader workers"})
    image_size: int = field(default=256, metadata={"help": "side of generated demo images"})
    seed: int = 0
    resume: bool = field(default=False, metadata={"help": "continue from the newest checkpoint in output_dir"})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "replace a previous run in output_dir (its checkpoints are removed; final/ replaced at the end)"})
    push_to_hub: str | None = field(default=None, metadata={"help": "ORG/NAME to upload final/ to"})
    dry_run: bool = field(default=False, metadata={"help": "with push_to_hub: list the upload, send nothing"})
    export_mmocr: bool = field(default=False, metadata={"help": "also write OUTPUT_DIR/mmocr.pth"})
    profile: bool = field(default=False, metadata={
        "help": "time the data wait and the forward/backward of each step (synchronising the device; the first "
                "step is left out as warm-up) and print the table at the end"})


PROFILE_PARTS = ("data wait", "forward/backward")


def _collate_labels(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    pixel_values = batch["pixel_values"]
    return pixel_values, {k: v for k, v in batch.items() if k != "pixel_values"}


def finetune(args: FinetuneArguments) -> dict[str, Any]:
    """Runs fine-tuning; returns ``{"final_dir", "metrics", "global_step"}`` (metrics of the last evaluation)."""
    from accelerate.utils import set_seed

    from .. import PRESETS
    from ..data.transforms import AugmentConfig, TrainTransform, normalize_batch, training_view
    from ..image_processing import TextDetectionImageProcessor
    from .evaluation import evaluate_detector

    out = Path(args.output_dir)
    check_arguments(args)  # before any work: bad arguments and a used or unusable output folder
    accelerator = make_accelerator(out, mixed_precision=args.mixed_precision,
                                   gradient_accumulation_steps=args.gradient_accumulation_steps,
                                   report_to=args.report_to, save_total_limit=args.save_total_limit,
                                   torch_compile=args.torch_compile, torch_compile_backend=args.torch_compile_backend,
                                   torch_compile_mode=args.torch_compile_mode)
    set_seed(args.seed)
    fmt = memory_format(args)
    model = load_model(args.model, seed=args.seed, allow_fresh=True).to(memory_format=fmt)
    train_raw = load_text_dataset(args.train_dataset, args.train_split, image_size=args.image_size)
    require_labels(train_raw, "polygons", args.train_dataset, "training dataset")
    eval_spec = args.eval_dataset or args.train_dataset
    eval_split = args.eval_split if args.eval_dataset else args.train_split
    eval_set = load_text_dataset(eval_spec, eval_split, image_size=args.image_size)
    augment = AugmentConfig(size=args.crop_size, scale_range=(args.scale_min, args.scale_max),
                            rotate_degrees=args.rotate_degrees, flip_prob=args.flip_prob)
    transform = TrainTransform(model.build_targets, augment, seed=args.seed)
    loader = make_loader(training_view(train_raw, transform), args.batch_size, args.num_workers, True, args.seed)
    optimizer = build_optimizer(model, args.optimizer, args.learning_rate, args.weight_decay, args.momentum)
    scheduler = warmup_poly_schedule(optimizer, args.warmup_steps, args.max_steps, args.poly_power)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    plain = accelerator.unwrap_model(model, keep_torch_compile=False)  # evaluation and saving
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state)  # stepped by us, once per optimiser step
    if args.resume:
        resume_latest(accelerator, out, state)
    processor = TextDetectionImageProcessor.for_config(plain.config, args.eval_long_side)
    hyper = {k: v for k, v in asdict(args).items() if k not in ("push_to_hub", "dry_run", "resume", "profile")}
    if accelerator.is_main_process and args.report_to != "none":
        accelerator.init_trackers("finetune", config={k: v for k, v in hyper.items()
                                                      if isinstance(v, (int, float, str, bool))})

    steps_per_epoch = len(loader) // args.gradient_accumulation_steps
    if steps_per_epoch == 0:
        raise UsageError(f"the training set gives {len(loader)} batches of {args.batch_size} per process: fewer "
                         f"than one optimiser step; lower --batch_size or --gradient_accumulation_steps")
    metrics: dict[str, float] = {}

    def run_eval() -> dict[str, float]:
        result = evaluate_detector(plain, eval_set, processor, accelerator=accelerator,
                                   keep_samples=args.log_images)
        if accelerator.is_main_process:
            accelerator.log({f"eval/{k}": v for k, v in result.metrics.items()}, step=state.global_step)
            _log_images(accelerator, result.samples, state.global_step)
            (out / "eval").mkdir(parents=True, exist_ok=True)
            (out / "eval" / f"step_{state.global_step}.json").write_text(
                json.dumps({"metrics": result.metrics, "per_image": result.per_image}, indent=1))
        accelerator.print(f"step {state.global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
        return result.metrics

    bar = tqdm(total=args.max_steps, initial=state.global_step, desc="fine-tuning",
               disable=not accelerator.is_local_main_process)
    model.train()
    tic, samples_since = time.perf_counter(), 0
    timer = StepTimer(PROFILE_PARTS, accelerator.device, args.profile)
    while state.global_step < args.max_steps:
        epoch, done_in_epoch = divmod(state.global_step, steps_per_epoch)
        transform.epoch = epoch
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, done_in_epoch * args.gradient_accumulation_steps) \
            if done_in_epoch else loader
        timer.last = time.perf_counter()
        for batch in batches:
            pixel_values, labels = _collate_labels(normalize_batch(batch, fmt))  # uint8 images, normalised here
            timer.mark("data wait")
            with accelerator.accumulate(model):
                outputs = model(pixel_values, labels=labels)
                backward_and_step(accelerator, model, optimizer, outputs.loss, args.max_grad_norm)
            timer.mark("forward/backward")
            samples_since += pixel_values.shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            timer.step_done(more_follow=state.global_step + 1 < args.max_steps)
            scheduler.step()
            state.global_step += 1
            state.samples_seen += args.batch_size * accelerator.num_processes * args.gradient_accumulation_steps
            parts = {k: float(v.detach()) for k, v in outputs.items() if k.startswith("loss")}
            if state.global_step % args.logging_steps == 0 or state.global_step == args.max_steps:
                rate = samples_since / max(1e-9, time.perf_counter() - tic)
                accelerator.log({**{f"train/{k}": v for k, v in parts.items()},
                                 "train/lr": scheduler.get_last_lr()[0], "train/samples_per_s": rate},
                                step=state.global_step)
                tic, samples_since = time.perf_counter(), 0
            bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            bar.update(1)
            if args.save_steps and state.global_step % args.save_steps == 0:
                save_checkpoint(accelerator)
            if args.eval_steps and state.global_step % args.eval_steps == 0 and state.global_step < args.max_steps:
                metrics = run_eval()
                model.train()
            timer.last = time.perf_counter()  # logging, saving and evaluating are no part of a training step
            if state.global_step >= args.max_steps:
                break
        state.epoch = epoch + 1
    bar.close()
    metrics = run_eval()
    final = None
    if accelerator.is_main_process:
        final = save_final(plain, out, job="fine-tuning",
                           datasets=[args.train_dataset], hyperparameters=hyper, hmean=metrics,
                           eval_dataset=f"{eval_spec} ({eval_split})",
                           base_model=None if args.model in PRESETS else args.model,
                           push_to_hub=args.push_to_hub, dry_run=args.dry_run, export_mmocr=args.export_mmocr)
        if transform.report.counts:
            accelerator.print(transform.report.summary())
    profile = timer.table(timer.steps) if args.profile else None
    if profile:
        accelerator.print(profile)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"final_dir": str(final) if final else None, "metrics": metrics, "global_step": state.global_step,
            "profile": profile, "timings": dict(timer.totals), "profiled_steps": timer.steps}


def _log_images(accelerator: Any, samples: list, step: int) -> None:
    if not samples:
        return
    from ..visualize import draw_evaluation

    writer = tensorboard_writer(accelerator)
    if writer is None:
        return
    for i, (image, pred, ref) in enumerate(samples):
        writer.add_image(f"eval/detections_{i}", draw_evaluation(image, pred, ref), step, dataformats="HWC")


__all__ = ["FinetuneArguments", "finetune"]
