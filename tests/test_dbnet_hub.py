"""DBNet through the Hugging Face machinery: save/load, Auto classes, the Hub cache offline, remote code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hub_cache import populate_hub_cache, run_without_package
from transformers import AutoConfig, AutoImageProcessor, AutoModel

import freereal_hf
from freereal_hf import DBNetConfig, DBNetForTextDetection, TextDetectionImageProcessor, config_from_preset
from freereal_hf.convert.mmocr import CheckpointMismatchError, mmocr_to_hf


def tiny_dbnet(seed: int = 0, **overrides) -> DBNetForTextDetection:
    torch.manual_seed(seed)
    model = DBNetForTextDetection(DBNetConfig(neck_lateral_channels=32, neck_out_channels=8, **overrides))
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
    return model.eval()


def _maps(model, x):
    with torch.no_grad():
        out = model(x)
    return torch.stack([out.prob_logits, out.prob, out.thr, out.binary])


def test_save_pretrained_round_trip_is_exact(tmp_path):
    model = tiny_dbnet()
    model.save_pretrained(tmp_path)
    TextDetectionImageProcessor.for_config(model.config).save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is DBNetForTextDetection
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DBNetConfig)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), TextDetectionImageProcessor)
    assert (tmp_path / "model.safetensors").exists()
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(_maps(model, x), _maps(loaded, x))


def test_from_pretrained_hub_id_from_offline_cache(tmp_path):
    model = tiny_dbnet(seed=3)
    model.save_pretrained(tmp_path / "repo")
    populate_hub_cache(tmp_path / "cache", "freereal/dbnet-tiny", tmp_path / "repo")
    x = torch.randn(1, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    torch.save(_maps(model, x), tmp_path / "expected.pt")
    code = textwrap.dedent(f"""
        import torch, freereal_hf
        from transformers import AutoModel
        model = AutoModel.from_pretrained("freereal/dbnet-tiny").eval()
        x = torch.load({str(tmp_path / 'x.pt')!r})
        with torch.no_grad():
            out = model(x)
        got = torch.stack([out.prob_logits, out.prob, out.thr, out.binary])
        assert torch.equal(got, torch.load({str(tmp_path / 'expected.pt')!r})), "outputs differ"
        print(type(model).__name__)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("DBNetForTextDetection")


def test_remote_code_loads_without_the_package(tmp_path):
    model = tiny_dbnet(seed=4)
    DBNetForTextDetection.register_for_auto_class("AutoModel")
    try:
        model.save_pretrained(tmp_path / "repo")
    finally:
        DBNetForTextDetection._auto_class = None
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_dbnet.DBNetConfig",
                                  "AutoModel": "modeling_dbnet.DBNetForTextDetection",
                                  "AutoModelForObjectDetection": "modeling_dbnet.DBNetForTextDetection"}
    shipped = sorted(p.name for p in (tmp_path / "repo").glob("*.py"))
    assert {"modeling_dbnet.py", "configuration_dbnet.py", "backbones.py", "polygons.py"} <= set(shipped)
    x = torch.randn(1, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    torch.save(_maps(model, x), tmp_path / "expected.pt")
    code = textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'repo')!r}, trust_remote_code=True).eval()
        assert "freereal_hf" not in type(model).__module__, type(model).__module__
        with torch.no_grad():
            out = model(torch.load({str(tmp_path / 'x.pt')!r}))
        got = torch.stack([out.prob_logits, out.prob, out.thr, out.binary])
        assert torch.equal(got, torch.load({str(tmp_path / 'expected.pt')!r})), "outputs differ"
        print("ok", type(model).__module__)
    """)
    proc = run_without_package(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok")


def test_pretrained_backbone_offline_warns_and_uses_random_init(tmp_path):
    code = textwrap.dedent("""
        import warnings, torch
        from freereal_hf import DBNetConfig, DBNetForTextDetection
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = DBNetForTextDetection(DBNetConfig(use_pretrained_backbone=True, neck_lateral_channels=16,
                                                      neck_out_channels=8))
        assert any("random initialisation" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert model.backbone.conv1.weight.std() > 0
        print("ok")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_presets_build_the_mmocr_variants():
    r18, r50, dcn = (config_from_preset(n) for n in ("dbnet_r18", "dbnet_r50", "dbnet_r50_dcnv2"))
    assert (r18.backbone_config.backbone, r50.backbone_config.backbone) == ("resnet18", "resnet50")
    assert r50.norm_eval and not dcn.norm_eval and dcn.dcn_stages == [False, True, True, True]
    assert (r18.test_scale, r50.test_scale) == ([1333, 736], [4068, 1024])
    with pytest.raises(ValueError, match="unknown preset"):
        config_from_preset("dbnet_r101")


def test_norm_eval_keeps_backbone_statistics_frozen():
    model = DBNetForTextDetection(DBNetConfig(norm_eval=True, neck_lateral_channels=16, neck_out_channels=8))
    model.train()
    before = model.backbone.bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, model.backbone.bn1.running_mean)
    assert model.det_head.binarize[1].training  # the head's BN still trains


def test_converter_names_missing_and_unexpected_keys(tmp_path):
    state = dict(tiny_dbnet().state_dict())
    state.pop("det_head.binarize.0.weight")
    state["det_head.extra.weight"] = torch.zeros(1)
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        mmocr_to_hf(tmp_path / "bad.pth", "dbnet_r18")
    assert "det_head.binarize.0.weight" in str(err.value) and "det_head.extra.weight" in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "freereal_hf.convert.cli", "to-hf", str(tmp_path / "bad.pth"),
                           str(tmp_path / "out"), "--model", "dbnet_r18"], capture_output=True, text=True)
    assert proc.returncode == 1 and "missing keys" in proc.stderr


def test_converter_refuses_pickled_objects(tmp_path):
    import argparse

    torch.save({"state_dict": {}, "meta": argparse.Namespace(cmd="rm -rf /")}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights-only"):
        mmocr_to_hf(tmp_path / "evil.pth", "dbnet_r18")


def test_package_registers_auto_classes():
    config = AutoConfig.for_model("freereal_dbnet")
    assert isinstance(config, DBNetConfig)
    assert isinstance(AutoModel.from_config(DBNetConfig(neck_lateral_channels=16, neck_out_channels=8)),
                      DBNetForTextDetection)
    assert "freereal_dbnet" in freereal_hf.DETECTORS
    assert np.isfinite(config.k)
