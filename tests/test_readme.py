"""README's Python examples run as written (those that need no data of the reader's own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
RUNNABLE = [b for b in BLOCKS if "~/data" not in b]


def test_readme_has_the_examples():
    assert len(BLOCKS) >= 4 and len(RUNNABLE) == len(BLOCKS) - 1  # only the data block reads the reader's files


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write outputs/ relative to the working directory
    namespace: dict = {}
    exec(compile(RUNNABLE[index], f"README.md python block {index}", "exec"), namespace)
    if "result" in namespace and isinstance(namespace["result"], dict) and "final_dir" in namespace["result"]:
        assert (tmp_path / namespace["result"]["final_dir"] / "model.safetensors").is_file()
