"""Shared fixtures: the MMOCR reference (skipped with the reason when it cannot be set up) and tiny inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def mmocr(tmp_path_factory):
    """An :class:`tests.mmocr_reference.MMOCR` runner, or a skip naming why MMOCR cannot run here."""
    from mmocr_reference import MMOCR, ReferenceUnavailable

    try:
        return MMOCR(tmp_path_factory.mktemp("mmocr"))
    except ReferenceUnavailable as err:
        pytest.skip(f"MMOCR reference unavailable: {err}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
