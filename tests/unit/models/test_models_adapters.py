"""Input adapters: payload scaling, packet-field standardization, fixed lengths, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trafficdl.errors import TrafficdlError
from trafficdl.models import input_adapter
from trafficdl.models.adapters import InputAdapter


def test_payload_bytes_become_unit_floats_per_batch_and_fixed_length() -> None:
    adapter = input_adapter("cnn1d")
    rows = np.array([[0, 255, 51] + [7] * 797], dtype=np.uint8)  # longer than 784
    prepared = adapter.prepare(rows, None, np.array([3]))
    assert prepared.dtype == torch.uint8 and prepared.shape == (1, 784)
    x = adapter.to_input(prepared)
    assert x.dtype == torch.float32
    assert x[0, :3].tolist() == pytest.approx([0.0, 1.0, 0.2])
    short = adapter.prepare(np.full((2, 10), 9, np.uint8), None, np.array([1, 1]))
    assert short.shape == (2, 784) and int(short[:, 10:].sum()) == 0


def _packets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    packets = np.zeros((50, 20, 4), np.float32)
    n = rng.integers(1, 25, size=50)
    for i in range(50):
        k = min(n[i], 20)
        packets[i, :k] = rng.normal([500, 0, 30000, 0.05], [100, 1, 5000, 0.01], size=(k, 4))
    return packets, n


def test_packet_fields_standardized_on_real_packets_padding_stays_zero() -> None:
    packets, n = _packets()
    adapter = input_adapter("lstm").fit(packets, n)
    real = np.arange(20)[None, :] < np.minimum(n, 20)[:, None]
    assert adapter.mean == pytest.approx(packets[real].mean(axis=0), rel=1e-4)
    x = adapter.prepare(None, packets, n).numpy()
    assert x[real].mean(axis=0) == pytest.approx([0, 0, 0, 0], abs=1e-4)
    assert x[real].std(axis=0) == pytest.approx([1, 1, 1, 1], abs=1e-3)
    assert np.all(x[~real] == 0.0)


def test_constant_field_does_not_divide_by_zero() -> None:
    packets, n = _packets()
    packets[..., 2] = np.where(packets[..., 0] != 0, 5.0, 0.0)  # constant window
    adapter = input_adapter("lstm").fit(packets, n)
    assert adapter.std[2] == 1.0
    assert np.isfinite(adapter.prepare(None, packets, n).numpy()).all()


def test_adapter_round_trips_through_plain_data() -> None:
    packets, n = _packets()
    adapter = input_adapter("lstm").fit(packets, n)
    again = InputAdapter.from_dict(adapter.to_dict())
    assert again == adapter
    assert torch.equal(again.prepare(None, packets, n), adapter.prepare(None, packets, n))


def test_unfitted_or_misshaped_input_is_rejected() -> None:
    adapter = input_adapter("lstm")
    with pytest.raises(ValueError, match="before fit"):
        adapter.prepare(None, np.zeros((1, 20, 4), np.float32), np.array([1]))
    with pytest.raises(TrafficdlError, match="expected"):
        adapter.fit(np.zeros((3, 20, 5), np.float32), np.array([1, 1, 1]))
    with pytest.raises(TrafficdlError, match="no packets"):
        adapter.fit(np.zeros((3, 20, 4), np.float32), np.array([0, 0, 0]))
