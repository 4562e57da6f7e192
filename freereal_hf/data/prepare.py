"""Turning a native release into a folder laid out like a Hub dataset repo, or a streaming dataset.

``prepare(format, src, out)`` writes ``out/data/<split>-NNNNN-of-NNNNN.parquet`` and ``out/README.md`` (a
dataset card whose YAML config points ``load_dataset(out)`` at the shards), checking every record on the
way (:func:`freereal_hf.data.records.clean_record`): problems are warned about by record name, repaired or
skipped, and counted in the returned :class:`~freereal_hf.data.records.Report`.

``streaming_dataset(format, src)`` reads the same records lazily as a ``datasets.IterableDataset`` with one
shard per image, so ``split_dataset_by_node`` (or DataLoader workers) share them out exactly once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import IterableDataset
from tqdm.auto import tqdm

from .formats import Entry, get_format
from .records import RecordError, Report, clean_record
from .schema import FEATURES

logger = logging.getLogger("freereal_hf.data")


def _read_one(format_name: str, entry: Entry) -> tuple[dict[str, Any] | None, Report]:
    """One checked record (``None`` when skipped) and the report of reading it."""
    report = Report()
    try:
        labels = get_format(format_name).labels(entry)
        with open(entry.image, "rb") as f:
            data = f.read()
        return clean_record(entry.key, data, report=report, **labels), report
    except (RecordError, OSError) as exc:
        report.add("records skipped", entry.key, str(exc))
        return None, report


def iter_records(format_name: str, entries: Sequence[Entry], report: Report | None = None,
                 progress: bool = False) -> Iterator[dict[str, Any]]:
    """Checked records of ``entries`` (see ``formats.Format.entries``), in their order; bad ones are warned
    about, counted in ``report`` and skipped."""
    report = report if report is not None else Report()
    for entry in tqdm(entries, desc=f"reading {format_name}", unit="img", disable=not progress):
        record, part = _read_one(format_name, entry)
        report.merge(part)
        if record is not None:
            yield record


def _generate(format_name: str, entries: list[Entry]) -> Iterator[dict[str, Any]]:
    yield from iter_records(format_name, entries)


def streaming_dataset(format_name: str, src: str | Path, split: str | None = "train") -> IterableDataset:
    """The release under ``src`` as a streaming ``IterableDataset`` in the schema (``split=None``: all images).

    It has one shard per image: under accelerate, shard it once with
    ``datasets.distributed.split_dataset_by_node`` and give it to a DataLoader that does not dispatch.
    """
    entries = [e for e in get_format(format_name).entries(src) if split is None or e.split == split]
    if not entries:
        raise ValueError(f"no {split or ''} images found under {src} for format {format_name}")
    return IterableDataset.from_generator(_generate, features=FEATURES,
                                          gen_kwargs={"format_name": format_name, "entries": entries})


ROW_GROUP = 64  # records per parquet row group: what one process holds in memory at a time


def plan_shards(entries: Sequence[Entry], max_bytes: int) -> list[list[Entry]]:
    """``entries`` cut into consecutive shards of about ``max_bytes`` of image files each (a shard ends with the
    entry that brings it to ``max_bytes``), planned from the files' sizes on disk before anything is read.

    The plan depends on the release alone, so a shard's content, and so its bytes, are the same whichever
    process writes it. A file that cannot be stat'ed counts 0 bytes (it is skipped, with its name, when read).
    """
    shards: list[list[Entry]] = [[]]
    total = 0
    for entry in entries:
        try:
            total += os.stat(entry.image).st_size
        except OSError:
            pass
        shards[-1].append(entry)
        if total >= max_bytes:
            shards.append([])
            total = 0
    return [s for s in shards if s]


_tick: Any = None  # called once per entry read: the progress bar, or a counter shared with the parent


def _count_in(counter: Any) -> None:
    """Pool initializer: entries read in this worker are added to the shared ``counter``."""
    global _tick

    def tick() -> None:
        with counter.get_lock():
            counter.value += 1

    _tick = tick


def _write_shard(format_name: str, entries: Sequence[Entry], path: Path) -> tuple[int, Report]:
    """Reads and checks ``entries`` and writes the good records to the parquet file ``path`` in row groups of
    ``ROW_GROUP``; writes no file when every record is skipped. Returns (records written, report)."""
    report, rows, count = Report(), [], 0
    schema = FEATURES.arrow_schema
    writer: pq.ParquetWriter | None = None
    try:
        for i, entry in enumerate(entries):
            record, part = _read_one(format_name, entry)
            report.merge(part)
            if record is not None:
                rows.append(FEATURES.encode_example(record))
            if len(rows) == ROW_GROUP or (i == len(entries) - 1 and rows):
                writer = writer or pq.ParquetWriter(path, schema)
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count, rows = count + len(rows), []
            if _tick is not None:
                _tick()
    finally:
        if writer is not None:
            writer.close()
    return count, report


def _write_shard_task(task: tuple[str, Sequence[Entry], Path]) -> tuple[int, Report]:
    return _write_shard(*task)


def write_shards(format_name: str, shards: Sequence[Sequence[Entry]], folder: Path, split: str,
                 report: Report, num_proc: int = 1, progress: bool = False) -> list[tuple[Path, int]]:
    """Writes each shard of ``shards`` (see :func:`plan_shards`) as one parquet file of ``split`` in ``folder``,
    ``num_proc`` shards at a time in worker processes (forked where the platform allows, so that a shared
    annotation file such as SynthText's ``gt.mat``, read once for the entries, is not read again). Shards
    whose records are all skipped are dropped; the rest are named ``<split>-NNNNN-of-NNNNN.parquet`` in order.

    Each shard is written by one process, reading, checking and encoding its records itself, so the files
    are byte-identical for any ``num_proc``; the parent merges the workers' reports in shard order. A worker
    holds one row group of records at a time. Returns each file written with its number of records.
    """
    global _tick
    tasks = [(format_name, shard, folder / f"{split}-{i:05d}.tmp") for i, shard in enumerate(shards)]
    bar = tqdm(total=sum(len(s) for s in shards), desc=f"{split}: {len(shards)} shard(s)", unit="img",
               disable=not progress)
    counts: list[int] = []
    pool = None
    try:
        if num_proc <= 1 or len(tasks) <= 1:
            _tick = lambda: bar.update(1)  # noqa: E731
            for task in tasks:
                count, part = _write_shard_task(task)
                counts.append(count)
                report.merge(part)
        else:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            counter = ctx.Value("q", 0)
            pool = ctx.Pool(min(num_proc, len(tasks)), initializer=_count_in, initargs=(counter,))
            results = pool.imap(_write_shard_task, tasks)
            while len(counts) < len(tasks):
                try:
                    count, part = results.next(timeout=0.5)
                except multiprocessing.TimeoutError:
                    continue
                finally:
                    bar.update(counter.value - bar.n)
                counts.append(count)
                report.merge(part)
    finally:
        _tick = None
        bar.close()
        if pool is not None:
            pool.terminate()
    written = [(path, count) for (_, _, path), count in zip(tasks, counts) if count]
    return [(path.rename(path.with_name(f"{split}-{i:05d}-of-{len(written):05d}.parquet")), count)
            for i, (path, count) in enumerate(written)]


PREPARED_MARK = "freereal-prepare"  # every card prepare writes says "converted ... with `freereal-prepare FMT`"


def is_prepared_folder(folder: Path) -> bool:
    """True for a folder that a previous ``prepare`` wrote (its dataset card says so)."""
    card = folder / "README.md"
    return card.is_file() and PREPARED_MARK in card.read_text(errors="replace")


def check_output_folder(src: str | Path, out: str | Path, overwrite: bool = False) -> None:
    """Refuses an ``out`` that is a file, that holds or lies inside ``src``, or that is a non-empty folder (unless
    ``overwrite``), an earlier ``prepare`` output included: replacing its ``data/`` would delete a dataset this run
    did not write, e.g. the train split of a run that prepared another release into the same folder. Raises
    ``ValueError`` naming the path."""
    src_path, out_path = Path(src).resolve(), Path(out).resolve()
    if out_path.exists() and not out_path.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out_path == src_path or out_path in src_path.parents:
        raise ValueError(f"--out {out} contains the release {src}: writing there could destroy it; choose "
                         f"another folder")
    if src_path in out_path.parents:
        raise ValueError(f"--out {out} lies inside the release {src}; choose a folder outside it")
    if out_path.is_dir() and any(out_path.iterdir()) and not overwrite:
        held = ("holds a dataset freereal-prepare wrote" if is_prepared_folder(out_path) else
                "is not empty and was not written by freereal-prepare")
        raise ValueError(f"--out {out} {held}; pass --overwrite to replace its data/ and README.md, or give "
                         f"another folder")


def prepare(format_name: str, src: str | Path, out: str | Path, *, name: str | None = None,
            split: str | None = None, max_shard_bytes: int = 500_000_000, progress: bool = True,
            entries: Sequence[Entry] | None = None, overwrite: bool = False,
            num_proc: int = 1) -> tuple[dict[str, list[Path]], Report]:
    """Converts the release under ``src`` into a Hub-like dataset folder ``out``.

    Everything is written into a staging folder beside ``out`` and swapped in (``data/`` and ``README.md``) only
    when complete: a run that fails halfway leaves a previous output as it was. ``out`` may not hold or lie
    inside ``src``, and a non-empty ``out`` is refused unless ``overwrite``.
    ``split`` forces every image into one split (default: from folder names, see ``formats``). Each split is
    cut into shards of about ``max_shard_bytes`` of image files (:func:`plan_shards`), and ``num_proc``
    processes write them, a shard each at a time (:func:`write_shards`): the output is byte-identical for any
    number, and the work scales with the processes while there are more shards than processes.
    Returns the parquet files per split and the report of what was read, repaired and skipped.
    """
    out = Path(out)
    check_output_folder(src, out, overwrite)
    entries = list(entries) if entries is not None else get_format(format_name).entries(src)
    if not entries:
        raise ValueError(f"no images found under {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (staging / "data").mkdir()
        report = Report()
        by_split: dict[str, list[Entry]] = {}
        for e in entries:
            by_split.setdefault(split or e.split, []).append(e)
        counts, names = {}, {}
        for split_name, split_entries in sorted(by_split.items()):
            files = write_shards(format_name, plan_shards(split_entries, max_shard_bytes), staging / "data",
                                 split_name, report, num_proc=num_proc, progress=progress)
            names[split_name] = [p.name for p, _ in files]
            counts[split_name] = sum(n for _, n in files)
        names = {k: v for k, v in names.items() if v}
        if not names:  # an empty dataset with exit status 0 would hide that nothing was read
            raise ValueError(f"none of the {len(entries)} images under {src} could be read ({report.summary()}; "
                             f"see the warnings above); nothing was written")
        sizes = {k: sum((staging / "data" / n).stat().st_size for n in v) for k, v in names.items()}
        _card(name or out.name, format_name, {k: counts[k] for k in names}, report, sizes).save(staging / "README.md")
        _swap_in(staging, out, ("data", "README.md"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {k: [out / "data" / n for n in v] for k, v in names.items()}, report


def _swap_in(staging: Path, out: Path, names: Sequence[str]) -> None:
    """Moves ``names`` from ``staging`` into ``out``; the old ones are moved aside first and removed last."""
    out.mkdir(parents=True, exist_ok=True)
    old = staging / ".old"
    old.mkdir()
    for n in names:
        if (out / n).exists():
            (out / n).rename(old / n)
    for n in names:
        (staging / n).rename(out / n)


def _card(name: str, format_name: str, splits: dict[str, int], report: Report, split_bytes: dict[str, int]):
    from ..hub import dataset_card

    return dataset_card(name=name, source_format=format_name, splits=splits, split_bytes=split_bytes,
                        features_yaml=FEATURES._to_yaml_list(), report=report.summary())


__all__ = ["prepare", "check_output_folder", "is_prepared_folder", "streaming_dataset", "iter_records", "plan_shards",
           "write_shards"]
