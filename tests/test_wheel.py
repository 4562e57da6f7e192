"""The package as a wheel holds everything it reads at run time: every module, the h-mean metric script and the
card templates of model_cards/. A wheel install (not an editable one) renders a model card, which is where a
finished run's result used to be lost (the templates lived only in the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_every_module_and_template_and_writes_a_card(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("freereal_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "freereal_hf").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    templates = {f"freereal_hf/model_cards/{p.name}" for p in (ROOT / "model_cards").glob("*.md")}
    assert templates and templates <= names, sorted(templates - names)

    site = tmp_path / "site"  # the wheel's files alone, imported from elsewhere than the checkout
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = ("import freereal_hf, torch\n"
            "from freereal_hf import DBNetForTextDetection, config_from_preset\n"
            "from freereal_hf.hub import model_card\n"
            "assert freereal_hf.__file__.startswith(sys.argv[1]), freereal_hf.__file__\n"
            "torch.manual_seed(0)\n"
            "model = DBNetForTextDetection(config_from_preset('dbnet_r18'))\n"
            "card = model_card(model, job='fine-tuning', datasets=['demo'], hmean={'precision': 1.0, "
            "'recall': 0.5, 'hmean': 0.6667}, eval_dataset='demo')\n"
            "print(card.content)\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FREEREAL_MODEL_CARDS", None)
    run = subprocess.run([sys.executable, "-c", "import sys\n" + code, str(site)], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pipeline_tag: object-detection" in run.stdout and "0.6667" in run.stdout
