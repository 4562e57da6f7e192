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
import shutil
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


def iter_records(format_name: str, entries: Sequence[Entry], report: Report | None = None,
                 progress: bool = False) -> Iterator[dict[str, Any]]:
    """Checked records of ``entries`` (see ``formats.Format.entries``); bad ones are warned about, counted
    in ``report`` and skipped."""
    fmt = get_format(format_name)
    report = report if report is not None else Report()
    for entry in tqdm(entries, desc=f"reading {format_name}", unit="img", disable=not progress):
        try:
            labels = fmt.labels(entry)
            with open(entry.image, "rb") as f:
                data = f.read()
            yield clean_record(entry.key, data, report=report, **labels)
        except (RecordError, OSError) as exc:
            report.add("records skipped", entry.key, str(exc))


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


def prepare(format_name: str, src: str | Path, out: str | Path, *, name: str | None = None,
            split: str | None = None, max_shard_bytes: int = 500_000_000, progress: bool = True,
            entries: Sequence[Entry] | None = None) -> tuple[dict[str, list[Path]], Report]:
    """Converts the release under ``src`` into a Hub-like dataset folder ``out`` (replacing its ``data/``).

    ``split`` forces every image into one split (default: from folder names, see ``formats``).
    Returns the parquet files per split and the report of what was read, repaired and skipped.
    """
    out = Path(out)
    entries = list(entries) if entries is not None else get_format(format_name).entries(src)
    if not entries:
        raise ValueError(f"no images found under {src}")
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    report = Report()
    by_split: dict[str, list[Entry]] = {}
    for e in entries:
        by_split.setdefault(split or e.split, []).append(e)
    files, counts = {}, {}
    for split_name, split_entries in sorted(by_split.items()):
        writer = _ShardWriter(data_dir, split_name, max_shard_bytes)
        for record in iter_records(format_name, split_entries, report, progress=progress):
            writer.add(record)
        files[split_name] = writer.close()
        counts[split_name] = writer.count
    files = {k: v for k, v in files.items() if v}
    card = _card(name or Path(out).name, format_name, {k: counts[k] for k in files}, report)
    card.save(out / "README.md")
    return files, report


def _card(name: str, format_name: str, splits: dict[str, int], report: Report):
    from ..hub import dataset_card

    return dataset_card(name=name, source_format=format_name, splits=splits,
                        features_yaml=FEATURES._to_yaml_list(), report=report.summary())


__all__ = ["prepare", "streaming_dataset", "iter_records"]
