"""Synthetic captures (trafficdl.synth) extracted into datasets, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trafficdl.capture import ExtractConfig, extract_dataset
from trafficdl.dataset import Dataset
from trafficdl.synth import synthesize


def _make(root: Path, apps: int, flows: int, seed: int) -> tuple[Path, Path]:
    captures, data = root / "captures", root / "dataset"
    synthesize(captures, apps=apps, flows_per_app=flows, seed=seed)
    extract_dataset([captures], data, ExtractConfig(), jobs=1, progress=False)
    return captures, data


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def six_apps(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """6 apps x 150 biflows; facebook and messenger are the similar pair."""
    _, data = _make(tmp_path_factory.mktemp("six"), apps=6, flows=150, seed=0)
    return Dataset.open(data)


@pytest.fixture(scope="session")
def small_apps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(captures dir, dataset dir): 4 apps x 40 biflows, for the CLI round trips."""
    return _make(tmp_path_factory.mktemp("small"), apps=4, flows=40, seed=1)
