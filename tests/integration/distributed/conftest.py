"""Fixtures for the distributed tests: small learnable datasets made by code."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.datasets import make_dataset


@pytest.fixture(scope="session")
def dist_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Classes differ in their payload byte pattern and packet sizes, with noise on top,
    so both models can learn them in an epoch or two but not trivially at init."""
    return make_dataset(tmp_path_factory.mktemp("dist") / "ds", payload="prototype")
