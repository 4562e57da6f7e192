"""Ships a detector's code next to its weights, so a Hub repo loads with ``trust_remote_code=True``.

transformers copies only a model file and its same-folder (``from .x import``) imports. Our detectors
import shared modules from the parent package (``from ..backbones import``), so this module copies the
whole import closure of the config and model classes into the repo folder flat, rewriting
``from ..x``/``from .x`` to ``from .x``, and writes ``auto_map`` into ``config.json``. The image processor
and the ``text-detection`` pipeline go along (``image_processing.py``, ``pipelines.py``: they import nothing
of freereal_hf), registered in ``preprocessor_config.json``'s ``auto_map`` and ``config.json``'s
``custom_pipelines``, so ``pipeline("text-detection", model=repo, trust_remote_code=True)`` works without the
package.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

_IMPORT = re.compile(r"^from (\.+)([\w.]*) import ", re.M)


def _resolve(module_file: Path, dots: str, name: str) -> Path:
    base = module_file.parent
    for _ in range(len(dots) - 1):
        base = base.parent
    target = base.joinpath(*name.split(".")) if name else base
    return target.with_suffix(".py") if target.with_suffix(".py").exists() else target / "__init__.py"


def _closure(start: list[Path]) -> list[Path]:
    """Module files reachable from ``start`` through top-level relative imports (column 0 only)."""
    seen: list[Path] = []
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        for dots, name in _IMPORT.findall(path.read_text()):
            todo.append(_resolve(path, dots, name))
    return seen


def export_remote_code(model, save_directory: str | Path) -> list[str]:
    """Copies the model's code into ``save_directory`` and registers it in its ``config.json``.

    Returns the file names written. Raises ``ValueError`` if two modules would share a flat name.
    """
    save_directory = Path(save_directory)
    config_file = Path(inspect.getfile(type(model.config)))
    model_file = Path(inspect.getfile(type(model)))
    package = Path(__file__).resolve().parent
    files = _closure([config_file, model_file]) + [package / "image_processing.py", package / "pipelines.py"]
    flat: dict[str, Path] = {}
    for path in files:
        name = path.parent.name + ".py" if path.name == "__init__.py" else path.name
        if name in flat and flat[name] != path:
            raise ValueError(f"cannot ship {path} and {flat[name]} flat: both are {name}")
        flat[name] = path
    names = {path: name for name, path in flat.items()}
    for name, path in flat.items():
        def relink(match: re.Match, path: Path = path) -> str:
            return f"from .{names[_resolve(path, match.group(1), match.group(2))][:-3]} import "

        (save_directory / name).write_text(_IMPORT.sub(relink, path.read_text()))
    config_path = save_directory / "config.json"
    config = json.loads(config_path.read_text())
    model_ref = f"{names[model_file][:-3]}.{type(model).__name__}"
    config["auto_map"] = {"AutoConfig": f"{names[config_file][:-3]}.{type(model.config).__name__}",
                          "AutoModel": model_ref, "AutoModelForObjectDetection": model_ref}
    config["custom_pipelines"] = {"text-detection": {"impl": "pipelines.TextDetectionPipeline", "pt": ["AutoModel"],
                                                     "tf": [], "type": "image"}}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    link_image_processor(save_directory)
    return sorted(flat)


def link_image_processor(save_directory: str | Path) -> bool:
    """Registers a saved image processor as remote code when its folder holds a remote-code model.

    Whichever of the model and the processor is saved second calls this; it adds ``auto_map`` to
    ``preprocessor_config.json`` (and ships ``image_processing.py``). Returns whether it did.
    """
    folder = Path(save_directory)
    processor_path, config_path = folder / "preprocessor_config.json", folder / "config.json"
    if not (processor_path.is_file() and config_path.is_file()):
        return False
    if "AutoModel" not in json.loads(config_path.read_text()).get("auto_map", {}):
        return False
    source = Path(__file__).resolve().parent / "image_processing.py"
    (folder / source.name).write_text(source.read_text())
    processor = json.loads(processor_path.read_text())
    processor["auto_map"] = {"AutoImageProcessor": f"{source.stem}.{processor['image_processor_type']}"}
    processor_path.write_text(json.dumps(processor, indent=2, sort_keys=True) + "\n")
    return True


__all__ = ["export_remote_code", "link_image_processor"]
