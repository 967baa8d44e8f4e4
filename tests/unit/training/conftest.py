"""Small learnable datasets built in code (no capture needed): each class has its own
payload byte signature and packet-size/timing profile, plus noise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trafficdl.dataset import OBJECT_DTYPE, Dataset, write_dataset


def make_toy_dataset(
    out: Path,
    *,
    classes: int = 3,
    per_class: int = 40,
    seed: int = 0,
    payload_bytes: int = 784,
    random_labels: bool = False,
) -> Dataset:
    rng = np.random.default_rng(seed)
    n = classes * per_class
    labels = np.repeat(np.arange(classes), per_class).astype(np.int32)
    payload = rng.integers(0, 256, size=(n, payload_bytes), dtype=np.uint8)
    signatures = rng.integers(0, 256, size=(classes, 32), dtype=np.uint8)
    for c in range(classes):
        payload[labels == c, 8:40] = signatures[c]  # a per-app header
    packets = np.zeros((n, 20, 4), dtype=np.float32)
    n_packets = rng.integers(5, 30, size=n)
    for i in range(n):
        k = min(n_packets[i], 20)
        c = labels[i]
        packets[i, :k, 0] = rng.normal(200 + 400 * c, 50, size=k)  # size
        packets[i, :k, 1] = rng.integers(0, 2, size=k) * 2 - 1  # direction
        packets[i, :k, 2] = rng.normal(65535 - 1000 * c, 100, size=k)  # window
        packets[i, :k, 3] = rng.exponential(0.01 * (c + 1), size=k)  # iat
    objects = np.zeros(n, dtype=OBJECT_DTYPE)
    objects["proto"] = 6
    objects["src"] = "10.0.0.1"
    objects["dst"] = "10.0.0.2"
    objects["sport"] = 40000 + np.arange(n) % 20000
    objects["dport"] = 443
    objects["n_packets"] = n_packets
    if random_labels:  # nothing to learn: a model can only memorise (overfit)
        labels = rng.permutation(labels)
    write_dataset(
        out,
        payload=payload,
        packets=packets,
        labels=labels,
        objects=objects,
        label_names=[f"app{c}" for c in range(classes)],
        meta={"extract_config": {"object": "biflow", "payload_bytes": payload_bytes}},
    )
    return Dataset.open(out)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Callable[..., Dataset]:
    def make(**kwargs: object) -> Dataset:
        return make_toy_dataset(tmp_path / f"ds{len(list(tmp_path.iterdir()))}", **kwargs)

    return make
