"""What the CLIs share: a training dataclass from the command line or one YAML/JSON file (HfArgumentParser), usage
errors as one line, and the checks of an output file or folder before any work."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable


def parse_dataclass(cls: type, argv: list[str] | None, prog: str) -> Any:
    """``cls`` filled from ``argv``: ``--name value`` flags, or a single ``.yaml``/``.yml``/``.json`` path
    (flags after it override the file's values)."""
    from transformers import HfArgumentParser

    from ..training.common import UsageError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(cls, prog=prog, description=cls.__doc__)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        path, rest = argv[0], argv[1:]
        try:
            if path.endswith(".json"):
                (from_file,) = parser.parse_json_file(path, allow_extra_keys=False)
            else:
                (from_file,) = parser.parse_yaml_file(path, allow_extra_keys=False)
        except (OSError, ValueError, TypeError) as err:  # missing file, unknown keys, not a mapping
            raise UsageError(f"{path}: {err}") from err
        if not rest:
            return from_file
        defaults = {k: v for k, v in vars(from_file).items()}
        parser.set_defaults(**defaults)
        argv = rest
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def report_errors(prog: str, run: Callable[[], int]) -> int:
    """Runs a command's body; a :class:`~freereal_hf.training.common.UsageError` (a bad argument, path or input,
    found before any work) becomes one line ``prog: error: ...`` on stderr and exit status 2."""
    from ..training.common import UsageError

    try:
        return run()
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def check_output_file(parser: argparse.ArgumentParser, path: str | os.PathLike, overwrite: bool, flag: str) -> Path:
    """Before any work: ``path`` (given as ``flag``) may be written. A folder there, or a parent that is a file,
    is an error; so is an existing file, unless ``overwrite`` (a result of an earlier run is not replaced
    silently). Missing parent folders are fine (they are created). Exits through ``parser.error``; returns the
    path."""
    out = Path(path)
    if out.is_dir():
        parser.error(f"{flag} {path} is a folder; give the file to write")
    if out.exists() and not overwrite:
        parser.error(f"{flag} {path} exists; pass --overwrite to replace it")
    if out.parent.exists() and not out.parent.is_dir():
        parser.error(f"{flag} {path}: {out.parent} is not a folder")
    return out


def check_output_folder(parser: argparse.ArgumentParser, path: str | os.PathLike, overwrite: bool, flag: str,
                        with_overwrite: str = "replace it") -> Path:
    """Before any work: the folder ``path`` (given as ``flag``) may be written. A file there is an error; so is
    a folder that is not empty, unless ``overwrite`` (``with_overwrite`` says what the flag then does). A missing
    folder is fine (it is created). Exits through ``parser.error``; returns the path."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        parser.error(f"{flag} {path} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        parser.error(f"{flag} {path} is not empty; pass --overwrite to {with_overwrite}")
    return out
