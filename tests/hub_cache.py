"""Builds a Hugging Face Hub cache by hand, laid out as ``snapshot_download`` leaves it, for offline tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def populate_hub_cache(cache_dir: Path, repo_id: str, folder: Path, repo_type: str = "model",
                       revision: str = "main") -> Path:
    """Puts ``folder``'s files into ``cache_dir`` as the snapshot of ``repo_id`` at ``revision``:
    ``{type}s--org--name/blobs/<sha256>``, ``refs/<revision>`` holding the commit hash and
    ``snapshots/<commit>/<file>`` links to the blobs. Returns the snapshot folder."""
    repo = Path(cache_dir) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    commit = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()
    snapshot = repo / "snapshots" / commit
    for path in files:
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        target = snapshot / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path("../" * (len(path.relative_to(folder).parts) + 1)) / "blobs" / blob.name)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


def run_without_package(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh offline python where ``import freereal_hf`` fails (as on a machine without the
    package), with its own transformers modules cache; returns the finished process."""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    code = 'import sys\nsys.modules["freereal_hf"] = None\n' + code
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
