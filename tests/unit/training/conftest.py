"""Small learnable datasets built in code (no capture needed): each class has its own
payload byte signature and packet-size/timing profile, plus noise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from support.datasets import make_dataset

from trafficdl.dataset import Dataset

# Flows of 5-29 packets (20 kept); each app has a 32-byte header signature in its payload
# and its own sizes, window and pacing. A test may override any of these, e.g.
# random_labels=True, which leaves nothing to learn but memorisation.
TOY: dict[str, Any] = dict(
    classes=3, per_class=40, payload_bytes=784, payload="header", size_step=400.0,
    size_noise=50.0, window_base=65535.0, window_step=-1000.0, window_noise=100.0,
    window_rotates=False, packet_counts=(5, 30),
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Callable[..., Dataset]:
    def make(**kwargs: Any) -> Dataset:
        out = tmp_path / f"ds{len(list(tmp_path.iterdir()))}"
        recipe = {**TOY, **kwargs}
        meta = {"extract_config": {"object": "biflow", "payload_bytes": recipe["payload_bytes"]}}
        return Dataset.open(make_dataset(out, meta=meta, **recipe))

    return make
