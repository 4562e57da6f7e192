"""Turning a native release into a folder laid out like a Hub dataset repo, or a streaming dataset.

``prepare(format, src, out)`` writes ``out/data/<split>-NNNNN-of-NNNNN.parquet`` and ``out/README.md`` (a
dataset card whose YAML config points ``load_dataset(out)`` at the shards), checking every record on the
way (:func:`freereal_hf.data.records.clean_record`): problems are warned about by record name, repaired or
skipped, and counted in the returned :class:`~freereal_hf.data.records.Report`.

``streaming_dataset(format, src)`` reads the same records lazily as a ``datasets.IterableDataset`` with one
shard per image, so ``split_dataset_by_node`` (or DataLoader workers) share them out exactly once.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
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
                 progress: bool = False, num_proc: int = 1) -> Iterator[dict[str, Any]]:
    """Checked records of ``entries`` (see ``formats.Format.entries``), in their order; bad ones are warned
    about, counted in ``report`` and skipped.

    ``num_proc > 1`` reads and checks them in that many processes (forked where the platform allows, so that a
    shared annotation file such as SynthText's ``gt.mat``, read once for the entries, is not read again), in
    order: the records, and so the shards written from them, are the same for any ``num_proc``.
    """
    report = report if report is not None else Report()
    bar = tqdm(total=len(entries), desc=f"reading {format_name}", unit="img", disable=not progress)
    if num_proc <= 1:
        results: Iterator[tuple[dict[str, Any] | None, Report]] = (_read_one(format_name, e) for e in entries)
        pool = None
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(num_proc)
        results = pool.imap(functools.partial(_read_one, format_name), entries, chunksize=8)
    try:
        for record, part in results:
            report.merge(part)
            bar.update(1)
            if record is not None:
                yield record
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


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


class _ShardWriter:
    """Writes records of one split to parquet files of at most ``max_bytes`` each (row groups of 64)."""

    def __init__(self, folder: Path, split: str, max_bytes: int) -> None:
        self.folder, self.split, self.max_bytes = folder, split, max_bytes
        self.paths: list[Path] = []
        self.rows: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.bytes = 0
        self.count = 0
        self.schema = FEATURES.arrow_schema

    def add(self, record: dict[str, Any]) -> None:
        self.rows.append(FEATURES.encode_example(record))
        self.bytes += len(record["image"]["bytes"])
        self.count += 1
        if len(self.rows) >= 64:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            path = self.folder / f"{self.split}-{len(self.paths):05d}.tmp"
            self.paths.append(path)
            self.writer = pq.ParquetWriter(path, self.schema)
        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.rows = []
        if self.bytes >= self.max_bytes:
            self.writer.close()
            self.writer, self.bytes = None, 0

    def close(self) -> list[Path]:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        final = []
        for i, path in enumerate(self.paths):
            target = path.with_name(f"{self.split}-{i:05d}-of-{len(self.paths):05d}.parquet")
            path.rename(target)
            final.append(target)
        return final


PREPARED_MARK = "freereal-prepare"  # every card prepare writes says "converted ... with `freereal-prepare FMT`"


def is_prepared_folder(folder: Path) -> bool:
    """True for a folder that a previous ``prepare`` wrote (its dataset card says so)."""
    card = folder / "README.md"
    return card.is_file() and PREPARED_MARK in card.read_text(errors="replace")


def check_output_folder(src: str | Path, out: str | Path, overwrite: bool = False) -> None:
    """Refuses an ``out`` that is a file, that holds or lies inside ``src``, or that is a non-empty folder not
    written by ``prepare`` (unless ``overwrite``). Raises ``ValueError`` naming the path."""
    src_path, out_path = Path(src).resolve(), Path(out).resolve()
    if out_path.exists() and not out_path.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out_path == src_path or out_path in src_path.parents:
        raise ValueError(f"--out {out} contains the release {src}: writing there could destroy it; choose "
                         f"another folder")
    if src_path in out_path.parents:
        raise ValueError(f"--out {out} lies inside the release {src}; choose a folder outside it")
    if out_path.is_dir() and any(out_path.iterdir()) and not overwrite and not is_prepared_folder(out_path):
        raise ValueError(f"--out {out} is not empty and was not written by freereal-prepare; pass --overwrite to "
                         f"replace its data/ and README.md")


def prepare(format_name: str, src: str | Path, out: str | Path, *, name: str | None = None,
            split: str | None = None, max_shard_bytes: int = 500_000_000, progress: bool = True,
            entries: Sequence[Entry] | None = None, overwrite: bool = False,
            num_proc: int = 1) -> tuple[dict[str, list[Path]], Report]:
    """Converts the release under ``src`` into a Hub-like dataset folder ``out``.

    Everything is written into a staging folder beside ``out`` and swapped in (``data/`` and ``README.md``) only
    when complete: a run that fails halfway leaves a previous output as it was. ``out`` may not hold or lie
    inside ``src``, and a non-empty ``out`` that ``prepare`` did not write is refused unless ``overwrite``.
    ``split`` forces every image into one split (default: from folder names, see ``formats``). ``num_proc``
    processes read and check the records; the output is byte-identical for any number.
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
            writer = _ShardWriter(staging / "data", split_name, max_shard_bytes)
            for record in iter_records(format_name, split_entries, report, progress=progress, num_proc=num_proc):
                writer.add(record)
            names[split_name] = [p.name for p in writer.close()]
            counts[split_name] = writer.count
        names = {k: v for k, v in names.items() if v}
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


__all__ = ["prepare", "check_output_folder", "is_prepared_folder", "streaming_dataset", "iter_records"]
