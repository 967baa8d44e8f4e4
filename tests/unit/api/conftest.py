"""A tiny synthetic dataset and two trained checkpoints, made once for the API tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import trafficdl


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(captures dir, dataset dir): 3 apps x 16 biflows."""
    root = tmp_path_factory.mktemp("api")
    trafficdl.synthesize(root / "captures", apps=3, flows_per_app=16, captures_per_app=2, seed=3)
    trafficdl.extract(root / "captures", root / "dataset")
    return root / "captures", root / "dataset"


@pytest.fixture(scope="session")
def lstm_run(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    return trafficdl.train(tiny[1], tmp_path_factory.mktemp("lstm"), model="lstm", epochs=3,
                           lr=0.005, test_fraction=0.25)  # fmt: skip
