"""Results are never left half-written: a file is written beside its path and swapped in when complete, so an
earlier file there stays whole until the new one is (a killed or failing command leaves it as it was)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_then_swap(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Calls ``write(partial)`` on a hidden path beside ``path`` (same folder, so the swap is one rename), then
    ``os.replace``s it onto ``path``; on any error the partial file is removed and ``path`` is untouched. The
    parent folder is created. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


__all__ = ["write_then_swap"]
