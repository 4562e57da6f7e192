"""FreeReal pre-training on accelerate (``freereal-pretrain``): student/teacher with GlyphMix.

One step (``docs/design.md``):

- stage 1 (the first ``stage1_steps`` steps, optional): the student learns on synthetic data with the
  supervised loss; at its end the teacher becomes a copy of the student;
- stage 2: the teacher (EMA of the student, no gradients) reads the weak views of a real batch and its
  outputs become pseudo-targets with confidence masking (``model.pseudo_targets``); GlyphMix mixes the strong
  views, the pseudo-targets and the synthetic batch on the device; the student learns on the mixed batch
  (with ``synthetic_loss_weight`` > 0 also on the synthetic batch itself, its supervised loss weighted);
  the teacher follows with ``teacher = m * teacher + (1 - m) * student``.

Only the detector protocol is used (``build_targets``, ``target_region``, ``pseudo_targets``, ``forward``
with ``labels``, the ``target_spec`` declaration), so every detector pre-trains the same way.

Checkpoints (``save_state`` every ``save_steps``; keep the newest ``save_total_limit``) hold the student,
the teacher, the optimiser, the schedule, the RNG states, the step and each data stream's epoch and
position; ``--resume`` continues from the newest and ends with the weights of an uninterrupted run (every
random draw is a function of the seed, the step or the record key).

The window into the teacher: when labeled real images exist (``--eval_dataset``, or the real data itself when it
carries polygons, as the demo's does), the teacher's pseudo-labels are measured against them every ``eval_steps``,
at the start of stage 2 and at the end (``evaluation.evaluate_teacher``: h-mean of its detections, pixel
precision and recall of its confident text pixels, the ignored fraction), to the trackers (``teacher/...``),
the progress bar and ``OUTPUT_DIR/teacher_eval.jsonl`` (one line per measurement, with its step and stage; a
resumed run first drops the lines of steps after its checkpoint, which it measures again; a new run into a folder
that holds it, or ``--record_samples`` logs, is refused unless ``--overwrite_output_dir``, which starts them
again). In
stage 1 the student is measured, the model the teacher starts from, so the curve shows when stage 1 has taught
it enough real text to start stage 2. The labels never reach a loss, and measuring draws no random number, so the
weights are those of a run without it (``tests/test_pretrain.py``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from tqdm.auto import tqdm

from ..data.records import Report
from ..glyphmix.mixing import GlyphMixConfig, MixResult, glyphmix
from ..models.base import MapKind
from .common import (StepTimer, TrainState, UsageError, backward_and_step, build_optimizer, check_arguments, compiled,
                     load_model, load_text_dataset, make_accelerator, make_loader, memory_format, require_labels,
                     resume_latest, save_checkpoint, save_final, tensorboard_writer, warmup_poly_schedule)

logger = logging.getLogger("freereal_hf.training")

DEMO_SYNTHETIC = "demo:synthetic:32"
DEMO_REAL = "demo:real-like:32:1"


@dataclass
class PretrainArguments:
    """Arguments of ``freereal-pretrain`` (command line, or a YAML/JSON file given as the first argument).

    With no dataset arguments the embedded demo data is used (32 generated synthetic images with
    character boxes, 32 generated real-like images whose labels are not used).
    """

    output_dir: str = field(default="outputs/pretrain", metadata={"help": "checkpoints, logs and final/ go here"})
    model: str = field(default="dbnet_r18", metadata={"help": "preset name, local folder or Hub id"})
    synthetic_dataset: str = field(default=DEMO_SYNTHETIC, metadata={
        "help": "labeled synthetic data with character boxes (SynthText schema): Hub id, local folder or "
                "demo[:synthetic|real-like|curved][:N][:SEED]"})
    synthetic_split: str = "train"
    real_datasets: list[str] = field(default_factory=lambda: [DEMO_REAL], metadata={
        "help": "unlabeled real data, one or more Hub ids / local folders / demo specs"})
    real_weights: list[float] | None = field(default=None, metadata={
        "help": "sampling weight of each real dataset (default: equal)"})
    real_split: str = "train"
    streaming: bool = field(default=False, metadata={"help": "stream the datasets (IterableDataset)"})
    max_steps: int = field(default=60, metadata={"help": "optimiser steps, both stages together"})
    stage1_steps: int | None = field(default=None, metadata={
        "help": "supervised warm-up steps on synthetic data (0: none; default: a third of max_steps)"})
    batch_size: int = field(default=4, metadata={"help": "real images (and as many synthetic) per process"})
    ema_momentum: float = field(default=0.999, metadata={"help": "teacher = m * teacher + (1 - m) * student"})
    pseudo_confidence: float | None = field(default=None, metadata={
        "help": "ignore teacher pixels less confident than this (default: the model config's, 0.7 for DBNet)"})
    synthetic_loss_weight: float = field(default=0.0, metadata={
        "help": "stage 2: add this times the supervised loss on the synthetic batch to the mixed batch's loss "
                "(0, the paper's: synthetic supervision only through the pasted glyphs)"})
    max_pseudo_text: float = field(default=1.0, metadata={
        "help": "stage 2: a real image whose pseudo-targets call more than this share of its pixels text teaches "
                "nothing (weight 0; logged as train/pseudo_text_dropped); 1: no bound"})
    intra_domain: bool = field(default=True, metadata={"help": "GlyphMix: text-balanced real-real mixing"})
    inter_domain: bool = field(default=True, metadata={"help": "GlyphMix: graffiti synthetic-real mixing"})
    num_candidates: int = 8
    min_area: float = 0.1
    max_area: float = 0.5
    box_selection: str = field(default="text_balanced", metadata={"help": "text_balanced or random"})
    label_mask: str = field(default="region", metadata={"help": "region, stroke or ignore"})
    char_mode: bool = field(default=True, metadata={"help": "synthetic targets from character boxes"})
    optimizer: str = field(default="adamw", metadata={"help": "sgd or adamw"})
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_steps: int = 10
    poly_power: float = 0.9
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = field(default=None, metadata={"help": "clip gradients to this norm"})
    mixed_precision: str = field(default="no", metadata={"help": "no, fp16 or bf16"})
    torch_compile: bool = field(default=False, metadata={
        "help": "compile the student's and the teacher's forward with torch.compile (through accelerate)"})
    torch_compile_backend: str = field(default="inductor", metadata={"help": "torch.compile's backend"})
    torch_compile_mode: str | None = field(default=None, metadata={
        "help": "torch.compile's mode: default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs"})
    channels_last: bool = field(default=False, metadata={
        "help": "model and batches in channels-last memory (faster convolutions on GPUs in bf16/fp16)"})
    crop_size: int | None = field(default=None, metadata={
        "help": "training crop side, a multiple of 32 (default 640; on demo data the demo image size)"})
    scale_min: float = 0.5
    scale_max: float = 3.0
    rotate_degrees: float = 10.0
    flip_prob: float = 0.5
    save_steps: int = field(default=50, metadata={"help": "checkpoint every N steps"})
    save_total_limit: int = field(default=2, metadata={"help": "keep the newest K checkpoints"})
    logging_steps: int = 10
    image_log_steps: int = field(default=50, metadata={"help": "GlyphMix grid to TensorBoard every N steps (0: never)"})
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard or none"})
    num_workers: int = field(default=2, metadata={"help": "DataLoader workers per data stream"})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "processes of the glyph-mask map"})
    image_size: int = field(default=256, metadata={"help": "side of generated demo images"})
    seed: int = 0
    resume: bool = field(default=False, metadata={"help": "continue from the newest checkpoint in output_dir"})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "replace a previous run in output_dir (its checkpoints are removed; final/ replaced at the end)"})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "labeled real images to measure the teacher's pseudo-labels on (the labels never reach a loss); "
                "default: the first real dataset when it carries polygons"})
    eval_split: str = "test"
    eval_steps: int = field(default=50, metadata={
        "help": "measure the teacher (in stage 1 the student it starts from) every N steps, at the start of stage 2 "
                "and at the end (0: never)"})
    eval_images: int = field(default=32, metadata={"help": "the first N images of the evaluation data"})
    eval_long_side: int | None = field(default=None, metadata={
        "help": "test resize: long side (default: the model's processor; on demo data the demo image size)"})
    save_student: bool = field(default=False, metadata={"help": "save the student instead of the teacher"})
    push_to_hub: str | None = field(default=None, metadata={"help": "ORG/NAME to upload final/ to"})
    dry_run: bool = field(default=False, metadata={"help": "with push_to_hub: list the upload, send nothing"})
    export_mmocr: bool = field(default=False, metadata={"help": "also write OUTPUT_DIR/mmocr.pth"})
    record_samples: bool = field(default=False, metadata={
        "help": "write OUTPUT_DIR/samples/rank_R.jsonl: the record keys of every step and a digest of the final "
                "weights, per process (to audit sharding and synchronisation)"})
    profile: bool = field(default=False, metadata={
        "help": "time each part of a step (synchronising the device; the first step is left out as warm-up) "
                "and print the table at the end"})

    def __post_init__(self) -> None:
        if self.stage1_steps is None:
            self.stage1_steps = self.max_steps // 3

    def glyphmix_config(self) -> GlyphMixConfig:
        return GlyphMixConfig(intra_domain=self.intra_domain, inter_domain=self.inter_domain,
                              num_candidates=self.num_candidates, min_area=self.min_area, max_area=self.max_area,
                              box_selection=self.box_selection, label_mask=self.label_mask, char_mode=self.char_mode)


def check_pretrain_arguments(args: PretrainArguments) -> GlyphMixConfig:
    """Pre-training's own checks, before any work (``check_arguments`` has the shared ones); returns the GlyphMix
    configuration. Values that would train without error and teach nothing are refused: a stage 1 longer than the
    run (no stage 2), a confidence no pixel can reach (every pseudo-label ignored), an EMA momentum outside [0, 1]
    (a teacher that diverges)."""
    if not 0 <= args.stage1_steps <= args.max_steps:
        raise UsageError(f"--stage1_steps must be in [0, --max_steps = {args.max_steps}], got {args.stage1_steps}")
    if args.pseudo_confidence is not None and not 0.5 <= args.pseudo_confidence < 1:
        raise UsageError(f"--pseudo_confidence must be in [0.5, 1) (a teacher pixel's confidence max(p, 1 - p) is "
                         f"at least 0.5 and below 1), got {args.pseudo_confidence}")
    if not 0 <= args.ema_momentum <= 1:
        raise UsageError(f"--ema_momentum must be in [0, 1], got {args.ema_momentum}")
    if not 0 < args.max_pseudo_text <= 1:
        raise UsageError(f"--max_pseudo_text must be in (0, 1], got {args.max_pseudo_text}")
    if not 0 <= args.synthetic_loss_weight < math.inf:
        raise UsageError(f"--synthetic_loss_weight must be 0 or more (and finite), got {args.synthetic_loss_weight}")
    try:
        return args.glyphmix_config()
    except ValueError as err:
        raise UsageError(f"GlyphMix: {err}") from None


def uses_demo_data(args: PretrainArguments) -> bool:
    from .common import parse_demo_spec

    return all(parse_demo_spec(s) is not None for s in [args.synthetic_dataset, *args.real_datasets])


def teacher_eval_set(args: PretrainArguments) -> tuple[Any, str] | None:
    """The labeled real images the teacher is measured on, and their name: ``eval_dataset`` (its ``eval_split``),
    else the first real dataset (its ``real_split``) when its first rows carry polygons; at most ``eval_images``
    of them (a streamed dataset is read that far only). ``None`` when ``eval_steps`` is 0 or no labels exist."""
    if not args.eval_steps:
        return None
    spec, split = (args.eval_dataset, args.eval_split) if args.eval_dataset else (args.real_datasets[0], args.real_split)
    dataset = load_text_dataset(spec, split, streaming=args.streaming, image_size=args.image_size)
    if isinstance(dataset, datasets.IterableDataset):
        rows = list(dataset.take(args.eval_images))
    else:
        rows = dataset.select(range(min(args.eval_images, len(dataset))))
    first = [rows[i] for i in range(min(len(rows), 8))]  # rows in either case: dicts
    if not any(len(row.get("polygons") or []) for row in first):
        if args.eval_dataset:
            raise UsageError(f"--eval_dataset {spec!r} (split {split!r}) carries no polygons to measure the teacher "
                             f"against")
        logger.info("the real data %s carries no labels: the teacher is not measured (give --eval_dataset)", spec)
        return None
    return rows, f"{spec} ({split}, {len(rows)} images)"


def unlabeled(dataset: Any) -> Any:
    """``dataset`` reduced to ``key`` and ``image`` (a ``key`` is made from the row index when missing)."""
    names = dataset.column_names or []
    if "image" not in names:
        raise ValueError(f"an unlabeled real dataset needs an 'image' column; it has {names}")
    if "key" not in names:
        dataset = dataset.map(lambda _, i: {"key": f"{i:09d}"}, with_indices=True)
    return dataset.select_columns(["key", "image"])


def real_dataset(args: PretrainArguments) -> Any:
    """The unlabeled real stream: one dataset, or several interleaved with ``real_weights``."""
    from datasets import interleave_datasets

    sets = [unlabeled(load_text_dataset(s, args.real_split, streaming=args.streaming, image_size=args.image_size))
            for s in args.real_datasets]
    if len(sets) == 1:
        return sets[0]
    weights = args.real_weights or [1.0] * len(sets)
    if len(weights) != len(sets):
        raise ValueError(f"{len(sets)} real datasets but {len(weights)} real_weights")
    total = float(sum(weights))
    return interleave_datasets(sets, probabilities=[w / total for w in weights], seed=args.seed,
                               stopping_strategy="all_exhausted")


class Stream:
    """An endless stream of batches of one (prepared) DataLoader whose epoch and position live in ``state``
    under ``name``, so a resumed run continues where the checkpoint was taken."""

    def __init__(self, accelerator: Any, loader: Any, transform: Any, state: TrainState, name: str) -> None:
        self.accelerator, self.loader, self.transform, self.state, self.name = accelerator, loader, transform, state, name
        self.iterator = None

    def next(self) -> dict[str, Any]:
        for _ in range(2):
            if self.iterator is None:
                epoch, offset = self.state.streams.get(self.name, (0, 0))
                self.transform.epoch = epoch
                if hasattr(self.loader, "set_epoch"):
                    self.loader.set_epoch(epoch)
                batches = self.accelerator.skip_first_batches(self.loader, offset) if offset else self.loader
                self.iterator = iter(batches)
            try:
                batch = next(self.iterator)
            except StopIteration:
                epoch, _ = self.state.streams.get(self.name, (0, 0))
                self.state.streams[self.name] = (epoch + 1, 0)
                self.iterator = None
                continue
            epoch, offset = self.state.streams.get(self.name, (0, 0))
            self.state.streams[self.name] = (epoch, offset + 1)
            return batch
        raise RuntimeError(f"the {self.name} data gives no batch of the batch size per process; lower --batch_size")


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float, accelerator: Any = None) -> None:
    """``teacher = momentum * teacher + (1 - momentum) * student`` for the parameters; buffers (batch-norm
    statistics) are copied. With several processes the student's floating buffers are first averaged across
    them, so every process holds the same student and teacher."""
    t_params = [p for p in teacher.parameters()]
    s_params = [p.detach() for p in student.parameters()]
    torch._foreach_lerp_(t_params, s_params, 1.0 - momentum)
    s_buffers = list(student.buffers())
    if accelerator is not None and accelerator.num_processes > 1:
        floats = [b for b in s_buffers if b.is_floating_point()]
        if floats:
            flat = accelerator.reduce(torch.cat([b.reshape(-1) for b in floats]), reduction="mean")
            torch._foreach_copy_(floats, list(flat.split([b.numel() for b in floats])))
    for tb, sb in zip(teacher.buffers(), s_buffers):
        tb.copy_(sb)


def pseudo_text_share(pseudo: dict[str, torch.Tensor], spec: Any) -> torch.Tensor:
    """``N`` float: each image's share of text pixels in its pseudo-targets, over every level's text map."""
    texts = [pseudo[name] for name in spec.text]
    n = texts[0].shape[0]
    return sum((t > 0.5).reshape(n, -1).sum(1) for t in texts).float() / sum(t[0].numel() for t in texts)


def mix_batch(teacher: torch.nn.Module, real: dict[str, Any], synthetic: dict[str, Any], config: GlyphMixConfig,
              generator: torch.Generator, autocast: Any = None, timer: StepTimer | None = None,
              confidence: float | None = None, max_text: float = 1.0) -> tuple[MixResult, dict[str, torch.Tensor]]:
    """Teacher on the weak views -> pseudo-targets (``teacher.pseudo_targets``, pixels less confident than
    ``confidence`` ignored; default the teacher config's) -> GlyphMix with the synthetic batch. A real image whose
    pseudo-targets call more than ``max_text`` of its pixels text gets weight 0 everywhere, as one that did not
    decode. Returns the mix and the pseudo-targets before mixing (with those weights)."""
    with torch.no_grad(), (autocast() if autocast is not None else contextlib.nullcontext()):
        outputs = teacher(real["weak_pixel_values"])
    if timer is not None:
        timer.mark("teacher forward")
    pseudo = teacher.pseudo_targets(outputs, confidence)
    spec = teacher.target_spec
    usable = real["valid"].bool() if "valid" in real else None  # real images that did not decode teach nothing
    if max_text < 1:  # "all text" costs a dice or BCE loss nothing: a drifting teacher must not teach it
        plausible = pseudo_text_share(pseudo, spec) <= max_text
        usable = plausible if usable is None else usable & plausible.to(usable.device)
    if usable is not None:
        for m in spec.of_kind(MapKind.WEIGHT):
            pseudo[m.name] = pseudo[m.name] * usable.to(pseudo[m.name]).view(-1, *[1] * (pseudo[m.name].dim() - 1))
    mix = glyphmix(real["strong_pixel_values"], pseudo, synthetic["pixel_values"], {k: synthetic[k] for k in pseudo},
                   synthetic["glyph_mask"], synthetic["text_region"], config, spec, generator)
    if timer is not None:
        timer.mark("GlyphMix")
    return mix, pseudo


PROFILE_PARTS = ("data wait", "teacher forward", "GlyphMix", "student forward/backward", "EMA update")


def _step_of(line: str) -> float:
    """The ``step`` of one JSON line; infinity for a line that is no record (half-written)."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def keep_measurements_until(path: Path, step: int) -> None:
    """Drops the lines of ``path`` (a ``teacher_eval.jsonl``) measured after ``step``, and a line a killed run left
    half-written, so that a run resumed from the checkpoint of ``step`` writes each later step once. The file is
    rewritten beside itself and swapped in; a missing file is left missing."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _step_of(line) <= step]
    dropped = len(lines) - len(kept)
    if dropped:
        logger.warning("--resume: %d line(s) of %s after step %d dropped (measured again from there)", dropped,
                       path, step)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)


def _digest(module: torch.nn.Module) -> str:
    crc = 0
    for name, tensor in module.state_dict().items():
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(tensor.detach().float().cpu().contiguous().numpy().tobytes(), crc)
    return f"{crc:08x}"


def pretrain(args: PretrainArguments) -> dict[str, Any]:
    """Runs FreeReal pre-training; returns ``{"final_dir", "global_step", "losses", "profile"}``."""
    from accelerate.utils import set_seed

    from .. import PRESETS
    from ..data.transforms import AugmentConfig, normalize_batch, training_view
    from ..glyphmix.masks import add_glyph_masks
    from ..glyphmix.views import RealViews, StrongAugment, SyntheticSample
    from ..image_processing import TextDetectionImageProcessor
    from .evaluation import evaluate_teacher

    out = Path(args.output_dir)
    check_arguments(args)  # before any work: bad arguments and a used or unusable output folder
    mix_config = check_pretrain_arguments(args)
    accelerator = make_accelerator(out, mixed_precision=args.mixed_precision,
                                   gradient_accumulation_steps=args.gradient_accumulation_steps,
                                   report_to=args.report_to, save_total_limit=args.save_total_limit,
                                   torch_compile=args.torch_compile, torch_compile_backend=args.torch_compile_backend,
                                   torch_compile_mode=args.torch_compile_mode)
    set_seed(args.seed)
    fmt = memory_format(args)
    student = load_model(args.model, seed=args.seed, allow_fresh=True).to(memory_format=fmt)
    crop = args.crop_size or (args.image_size if uses_demo_data(args) else 640)
    augment = AugmentConfig(size=crop, scale_range=(args.scale_min, args.scale_max),
                            rotate_degrees=args.rotate_degrees, flip_prob=args.flip_prob)

    with accelerator.main_process_first():  # the glyph-mask map runs once; the other processes read its cache
        synthetic_raw = load_text_dataset(args.synthetic_dataset, args.synthetic_split, streaming=args.streaming,
                                          image_size=args.image_size)
        require_labels(synthetic_raw, "char_polygons" if mix_config.char_mode else "polygons", args.synthetic_dataset,
                       "synthetic dataset")
        synthetic_raw = add_glyph_masks(synthetic_raw, num_proc=args.preprocessing_num_workers)
        real_raw = real_dataset(args)
        teacher_eval = teacher_eval_set(args)
    synthetic_tf = SyntheticSample(student.build_targets, student.target_region, augment,
                                   char_mode=mix_config.char_mode, seed=args.seed)
    real_tf = RealViews(augment, StrongAugment(), seed=args.seed + 1)
    shuffle = not args.streaming
    synthetic_loader = make_loader(training_view(synthetic_raw, synthetic_tf), args.batch_size, args.num_workers,
                                   shuffle, args.seed)
    real_loader = make_loader(training_view(real_raw, real_tf), args.batch_size, args.num_workers, shuffle,
                              args.seed + 1)
    optimizer = build_optimizer(student, args.optimizer, args.learning_rate, args.weight_decay, args.momentum)
    scheduler = warmup_poly_schedule(optimizer, args.warmup_steps, args.max_steps, args.poly_power)
    student, optimizer, synthetic_loader, real_loader = accelerator.prepare(student, optimizer, synthetic_loader,
                                                                            real_loader)
    model = accelerator.unwrap_model(student, keep_torch_compile=False)  # the plain student: EMA, saving
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    teacher_forward = compiled(accelerator, teacher)  # pseudo-labels; evaluation and EMA use the plain teacher
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state, teacher)
    if args.resume:
        resume_latest(accelerator, out, state)
        if accelerator.is_main_process:
            keep_measurements_until(out / "teacher_eval.jsonl", state.global_step)
    synthetic_stream = Stream(accelerator, synthetic_loader, synthetic_tf, state, "synthetic")
    real_stream = Stream(accelerator, real_loader, real_tf, state, "real")

    hyper = {k: v for k, v in asdict(args).items()
             if k not in ("push_to_hub", "dry_run", "resume", "record_samples", "profile")}
    hyper["crop_size"] = crop
    if accelerator.is_main_process and args.report_to != "none":
        accelerator.init_trackers("pretrain", config={k: v for k, v in hyper.items()
                                                      if isinstance(v, (int, float, str, bool))})
    samples_log = None
    if args.record_samples:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        # line-buffered: the lines of a killed run are on disk
        samples_log = open(out / "samples" / f"rank_{accelerator.process_index}.jsonl", "a", buffering=1)
    target_keys = list(model.target_spec.names)
    processor = TextDetectionImageProcessor.for_config(
        model.config, args.eval_long_side or (args.image_size if uses_demo_data(args) else None))
    teacher_metrics: dict[str, float] = {}
    eval_report = Report()

    def measure_teacher(stage: int) -> None:
        """The teacher's pseudo-labels (in stage 1 the student's) against the labels of the evaluation images: to
        the trackers, the bar and OUTPUT_DIR/teacher_eval.jsonl (one line per measurement)."""
        teacher_metrics.clear()
        teacher_metrics.update(evaluate_teacher(teacher if stage == 2 else model, teacher_eval[0], processor,
                                                confidence=args.pseudo_confidence, accelerator=accelerator,
                                                report=eval_report))
        if accelerator.is_main_process:
            accelerator.log({f"teacher/{k}": v for k, v in teacher_metrics.items()}, step=state.global_step)
            with open(out / "teacher_eval.jsonl", "a") as f:
                f.write(json.dumps({"step": state.global_step, "stage": stage, **teacher_metrics}) + "\n")
        accelerator.print(f"step {state.global_step}: teacher on {teacher_eval[1]}: "
                          + ", ".join(f"{k} {v:.4f}" for k, v in teacher_metrics.items()))
    timer = StepTimer(PROFILE_PARTS, accelerator.device, args.profile)
    bar = tqdm(total=args.max_steps, initial=state.global_step, desc="pre-training",
               disable=not accelerator.is_local_main_process)
    student.train()
    losses: list[float] = []
    tic, samples_since = time.perf_counter(), 0
    pseudo_text: float | None = None  # the teacher's share of text pixels at the last logging step (stage 2)
    while state.global_step < args.max_steps:
        stage = 1 if state.global_step < args.stage1_steps else 2
        timer.last = time.perf_counter()
        synthetic = normalize_batch(synthetic_stream.next(), fmt)  # uint8 images to the device, normalised there
        real = normalize_batch(real_stream.next(), fmt) if stage == 2 else None
        timer.mark("data wait")
        pseudo = mix = None
        with accelerator.accumulate(student):
            if stage == 1:
                images, labels = synthetic["pixel_values"], {k: synthetic[k] for k in target_keys}
            else:
                # GlyphMix's draws: a function of the seed, the real batch's place in its stream and the process
                position = "/".join(map(str, state.streams["real"]))
                generator = torch.Generator().manual_seed(
                    zlib.crc32(f"{args.seed}/{position}/{accelerator.process_index}".encode()))
                mix, pseudo = mix_batch(teacher_forward, real, synthetic, mix_config, generator, accelerator.autocast,
                                        timer, args.pseudo_confidence, args.max_pseudo_text)
                images, labels = mix.images.contiguous(memory_format=fmt), mix.targets
            outputs = student(images, labels=labels)
            parts = {k: v.detach() for k, v in outputs.items() if k.startswith("loss")}
            loss = outputs.loss
            if stage == 2 and args.synthetic_loss_weight > 0:
                # clean negatives: in the mixed batch every background pixel is the teacher's word (docs/method.md)
                anchor = student(synthetic["pixel_values"], labels={k: synthetic[k] for k in target_keys}).loss
                loss = loss + args.synthetic_loss_weight * anchor
                parts.update(loss_mixed=outputs.loss.detach(), loss_synthetic=anchor.detach(), loss=loss.detach())
            backward_and_step(accelerator, student, optimizer, loss, args.max_grad_norm)
        timer.mark("student forward/backward")
        samples_since += images.shape[0] * accelerator.num_processes
        if samples_log is not None:
            samples_log.write(json.dumps({"step": state.global_step, "stage": stage, "synthetic": synthetic["key"],
                                          "real": real["key"] if real is not None else []}) + "\n")
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        state.global_step += 1
        if stage == 1 and state.global_step == args.stage1_steps:
            teacher.load_state_dict(model.state_dict())  # stage 2 starts from the warmed-up student
        elif stage == 2:
            ema_update(teacher, model, args.ema_momentum, accelerator)
        timer.mark("EMA update")
        if teacher_eval is not None and (state.global_step == args.stage1_steps or state.global_step % args.eval_steps == 0
                                         or state.global_step == args.max_steps):
            # at step stage1_steps the teacher has just been copied from the student: the start of stage 2
            measure_teacher(1 if state.global_step < args.stage1_steps else 2)
            timer.last = time.perf_counter()  # measuring is no part of a training step
        timer.step_done(more_follow=state.global_step < args.max_steps)
        parts = {k: float(v) for k, v in parts.items()}
        losses.append(parts["loss"])
        rate = samples_since / max(1e-9, time.perf_counter() - tic)
        if state.global_step % args.logging_steps == 0 or state.global_step == args.max_steps:
            logs = {**{f"train/{k}": v for k, v in parts.items()}, "train/lr": scheduler.get_last_lr()[0],
                    "train/samples_per_s": rate, "train/stage": stage}
            if pseudo is not None:
                weights = [pseudo[name] for name in model.target_spec.confidence_map]
                logs["train/ignored_fraction"] = sum(float((w == 0).sum()) for w in weights) / sum(
                    w.numel() for w in weights)
                # needs no labels: a teacher drifting to "all text" (near 1) or to silence (near 0) shows here
                shares = pseudo_text_share(pseudo, model.target_spec)
                pseudo_text = float(shares.mean())
                logs["train/pseudo_text_fraction"] = pseudo_text
                if args.max_pseudo_text < 1:
                    logs["train/pseudo_text_dropped"] = float((shares > args.max_pseudo_text).float().mean())
            accelerator.log(logs, step=state.global_step)
            tic, samples_since = time.perf_counter(), 0
        if mix is not None and args.image_log_steps and state.global_step % args.image_log_steps == 0:
            _log_grid(accelerator, real, synthetic, mix, model, state.global_step)
        bar.set_postfix(stage=stage, loss=f"{parts['loss']:.3f}", img_s=f"{rate:.1f}",
                        **({"pseudo_text": f"{pseudo_text:.3f}"} if pseudo_text is not None else {}),
                        **({"teacher_hmean": f"{teacher_metrics['hmean']:.3f}"} if teacher_metrics else {}))
        bar.update(1)
        if args.save_steps and state.global_step % args.save_steps == 0:
            save_checkpoint(accelerator)
        timer.last = time.perf_counter()
    bar.close()
    final_model = model if (args.save_student or state.global_step <= args.stage1_steps) else teacher
    if final_model is model and not args.save_student:
        logger.warning("the run ended in stage 1 (%d <= stage1_steps): saving the student", state.global_step)
    if samples_log is not None:
        samples_log.write(json.dumps({"final": {"student": _digest(model), "teacher": _digest(teacher)}}) + "\n")
        samples_log.close()
    final = None
    hyper["steps_trained"] = state.global_step
    hyper["saved"] = "student" if final_model is model else "teacher (EMA)"
    if accelerator.is_main_process:
        final = save_final(final_model, out, job="pre-training",
                           datasets=[args.synthetic_dataset, *args.real_datasets], hyperparameters=hyper,
                           base_model=None if args.model in PRESETS else args.model,
                           push_to_hub=args.push_to_hub, dry_run=args.dry_run, export_mmocr=args.export_mmocr)
        for tf, what in ((synthetic_tf, "synthetic"), (real_tf, "real"), (eval_report, "evaluation")):
            tf = getattr(tf, "report", tf)
            if tf.counts:
                accelerator.print(f"{what} data problems:\n{tf.summary()}")
    profile = timer.table(timer.steps) if args.profile else None
    if profile:
        accelerator.print(profile)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"final_dir": str(final) if final else None, "global_step": state.global_step, "losses": losses,
            "teacher_metrics": dict(teacher_metrics),
            "profile": profile, "timings": dict(timer.totals), "profiled_steps": timer.steps}


def _log_grid(accelerator: Any, real: dict, synthetic: dict, mix: MixResult, model: Any, step: int) -> None:
    from ..glyphmix.preview import glyphmix_grid

    writer = tensorboard_writer(accelerator)
    if writer is None:
        return
    grid = glyphmix_grid(real["strong_pixel_values"], synthetic["pixel_values"], mix.images, mix.targets,
                         model.target_spec, synthetic["glyph_mask"])
    writer.add_image("glyphmix/grid", grid, step, dataformats="HWC")


__all__ = ["PretrainArguments", "pretrain", "ema_update", "mix_batch", "Stream", "real_dataset",
           "unlabeled"]
