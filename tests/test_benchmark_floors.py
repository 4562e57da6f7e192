"""The benchmark scripts' floors (the calls MMOCR makes, timed alone) time the same work our code does: the
outlines they fill give exactly our kernel maps, and the regions they grow include every region returned."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from polygon_cases import probability_map, random_polygons

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from benchmark_dbnet import floor as dbnet_floor  # noqa: E402
from benchmark_psenet_panet import floor as kernel_floor  # noqa: E402


@pytest.mark.parametrize("ratios, ids", [((1.0, 0.5), True), ((1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4), False)])
def test_kernel_floor_fills_our_maps(ratios, ids):
    polygons, ignored = random_polygons(np.random.default_rng(3), 200, 200, 12)
    assert kernel_floor(polygons, ignored, 200, ratios, ids, repeat=1) > 0  # asserts the maps equal inside


def test_dbnet_floor_grows_every_returned_region():
    prob = probability_map(np.random.default_rng(4), 200, 200, 8)
    assert dbnet_floor(prob, repeat=1) > 0  # asserts it grows at least the regions post-processing returns


@pytest.mark.parametrize("flag", ["--sets=-1", "--repeat=0", "--forward-repeat=-2"])
def test_kernel_benchmark_refuses_bad_numbers_before_any_work(flag, monkeypatch, capsys):
    """A negative number of extra polygon sets or repeats stops the benchmark with a usage error before MMOCR's
    reference is set up or anything is timed."""
    import benchmark_psenet_panet
    monkeypatch.setattr(benchmark_psenet_panet, "MMOCR", lambda *a: pytest.fail("set up MMOCR despite bad input"))
    monkeypatch.setattr(sys, "argv", ["benchmark_psenet_panet.py", flag])
    with pytest.raises(SystemExit) as exit_info:
        benchmark_psenet_panet.main()
    assert exit_info.value.code == 2 and "at least" in capsys.readouterr().err


def test_kernel_benchmark_refuses_an_unknown_set_kind_before_any_work(monkeypatch, capsys):
    import benchmark_psenet_panet
    monkeypatch.setattr(benchmark_psenet_panet, "MMOCR", lambda *a: pytest.fail("set up MMOCR despite bad input"))
    monkeypatch.setattr(sys, "argv", ["benchmark_psenet_panet.py", "--sets", "2", "--set-kind", "stars"])
    with pytest.raises(SystemExit) as exit_info:
        benchmark_psenet_panet.main()
    assert exit_info.value.code == 2 and "invalid choice: 'stars'" in capsys.readouterr().err
