"""Fixtures of the model tests: each tiny architecture is built ONCE per session into a temp directory."""

from __future__ import annotations

import pytest

from vrft.models.tiny import TINY_ARCHS, build_tiny


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """arch -> freshly built tiny model directory (built lazily, once per session)."""
    root = tmp_path_factory.mktemp("tiny")
    built = {}

    def get(arch: str):
        if arch not in built:
            built[arch] = build_tiny(arch, root / arch, seed=0)
        return built[arch]

    return get


@pytest.fixture(params=sorted(TINY_ARCHS))
def arch(request):
    return request.param
