"""Parsing a training dataclass from the command line or from one YAML/JSON file (HfArgumentParser)."""

from __future__ import annotations

import sys
from typing import Any


def parse_dataclass(cls: type, argv: list[str] | None, prog: str) -> Any:
    """``cls`` filled from ``argv``: ``--name value`` flags, or a single ``.yaml``/``.yml``/``.json`` path
    (flags after it override the file's values)."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(cls, prog=prog, description=cls.__doc__)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        path, rest = argv[0], argv[1:]
        if path.endswith(".json"):
            (from_file,) = parser.parse_json_file(path, allow_extra_keys=False)
        else:
            (from_file,) = parser.parse_yaml_file(path, allow_extra_keys=False)
        if not rest:
            return from_file
        defaults = {k: v for k, v in vars(from_file).items()}
        parser.set_defaults(**defaults)
        argv = rest
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args
