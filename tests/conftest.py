"""Shared fixtures: the MMOCR reference (skipped with the reason when it cannot be set up) and tiny inputs."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# pytest-xdist runs two workers (setup.cfg): one thread each, so that they do not fight over the cores, and the
# same in the processes tests start (MMOCR's reference, killed runs, remote code): results that tests compare
# exactly must be summed in the same order on both sides
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def mmocr(tmp_path_factory):
    """An :class:`tests.mmocr_reference.MMOCR` runner, or a skip naming why MMOCR cannot run here."""
    from mmocr_reference import MMOCR, ReferenceUnavailable

    try:
        return MMOCR(tmp_path_factory.mktemp("mmocr"))
    except ReferenceUnavailable as err:
        pytest.skip(f"MMOCR reference unavailable: {err}")


@pytest.fixture(scope="module")
def module_tmp_path(tmp_path_factory, request):
    """A folder for one test module's shared files (saved models, trained runs), removed when the module's tests
    are done: pytest keeps ``tmp_path_factory`` folders to the end of the session, and the suite's models add up
    to gigabytes."""
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
