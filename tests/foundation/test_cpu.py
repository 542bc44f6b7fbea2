"""vrft.cpu: the demo's process settings apply on Linux/glibc and leave a set OMP_WAIT_POLICY alone."""

import sys

import pytest

from vrft.cpu import tune_cpu_process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_mallopt_applies_and_user_omp_setting_wins(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    done = tune_cpu_process()
    assert done["mallopt"] is True
    assert done["omp_passive"] is False
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
