"""Fixtures for the distributed tests: small learnable datasets made by code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficdl.dataset import OBJECT_DTYPE, write_dataset


def make_dataset(
    out: Path,
    *,
    classes: int = 3,
    per_class: int = 200,
    seed: int = 0,
    payload_bytes: int = 64,
    packets: int = 20,
) -> Path:
    """Classes differ in their payload byte pattern and packet sizes, with noise on top,
    so both models can learn them in an epoch or two but not trivially at init."""
    rng = np.random.default_rng(seed)
    n = classes * per_class
    labels = np.repeat(np.arange(classes), per_class).astype(np.int32)
    protos = rng.integers(0, 256, size=(classes, payload_bytes))
    payload = (protos[labels] + rng.normal(0, 40, size=(n, payload_bytes))).clip(0, 255)
    sizes = 200.0 + 300.0 * labels[:, None] + rng.normal(0, 150, size=(n, packets))
    direction = rng.choice([-1.0, 1.0], size=(n, packets))
    window = 1000.0 + 500.0 * ((labels[:, None] + np.arange(packets)) % classes)
    window = window + rng.normal(0, 300, size=(n, packets))
    iat = rng.exponential(0.01 * (1 + labels[:, None]), size=(n, packets))
    pk = np.stack([sizes, direction, window, iat], axis=-1).astype(np.float32)
    objects = np.zeros(n, dtype=OBJECT_DTYPE)
    objects["n_packets"] = packets
    objects["proto"] = 6
    return write_dataset(
        out,
        payload=payload.astype(np.uint8),
        packets=pk,
        labels=labels,
        objects=objects,
        label_names=[f"app{i}" for i in range(classes)],
        meta={"captures": []},
    )


@pytest.fixture(scope="session")
def dist_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("dist") / "ds")
