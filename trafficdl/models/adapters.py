"""Input adapters: dataset rows → the tensors a model eats, and the scaling they need.

Two steps, split for speed: `prepare` runs once per data set (a training split,
a capture to classify) and gives a compact in-memory tensor; `to_input` runs per
mini-batch on the chosen device. Payload bytes stay uint8 in memory (4x smaller
than float32) and become [0, 1] floats per batch, the paper's scaling. Packet
fields are standardized per field with a mean/std fitted on the *training* rows
only — over real packets, not the zero padding of short biflows, which stays
zero so "no packet" keeps one meaning. The statistics live in the adapter's
dict, which every checkpoint stores, so classify scales exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from trafficdl.errors import TrafficdlError

INPUT_KINDS = ("payload", "packets")


@dataclass(frozen=True)
class InputAdapter:
    """How one model's input is built from (payload, packets, n_packets) rows."""

    kind: str  # "payload" (CNN) or "packets" (LSTM)
    length: int  # payload bytes, or packets per object
    fields: int = 4  # packet fields per packet (packets kind only)
    mean: tuple[float, ...] = field(default_factory=tuple)  # per packet field
    std: tuple[float, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {self.kind!r}")

    @property
    def fitted(self) -> bool:
        return self.kind == "payload" or len(self.mean) == self.fields

    def fit(self, packets: np.ndarray, n_packets: np.ndarray) -> InputAdapter:
        """Return a copy with field statistics from these (training) rows."""
        if self.kind == "payload":
            return self
        rows = _fit_shape(np.asarray(packets, dtype=np.float32), self.length, self.fields)
        real = rows[_real_mask(n_packets, self.length)]
        if len(real) == 0:
            raise TrafficdlError("cannot fit packet-field statistics: no packets in training rows")
        mean = real.mean(axis=0, dtype=np.float64)
        std = real.std(axis=0, dtype=np.float64)
        std = np.where(std > 1e-8, std, 1.0)  # a constant field stays at zero
        return replace(self, mean=tuple(map(float, mean)), std=tuple(map(float, std)))

    def prepare(
        self, payload: np.ndarray | None, packets: np.ndarray | None, n_packets: np.ndarray
    ) -> torch.Tensor:
        """Compact model input for these rows: uint8 bytes, or standardized float fields."""
        if self.kind == "payload":
            if payload is None:
                raise ValueError("payload rows are required for a payload model")
            arr = _fit_shape(np.asarray(payload, dtype=np.uint8), self.length)
            return torch.from_numpy(np.ascontiguousarray(arr))
        if not self.fitted:
            raise ValueError("packet adapter used before fit()")
        if packets is None:
            raise ValueError("packet rows are required for a packet model")
        rows = _fit_shape(np.asarray(packets, dtype=np.float32), self.length, self.fields)
        out = (rows - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        out[~_real_mask(n_packets, self.length)] = 0.0
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        """Per-batch step from `prepare`'s form to the model's float input."""
        if batch.dtype == torch.uint8:
            return batch.to(torch.float32).div_(255.0)
        return batch

    def prepare_dataset(self, dataset: Any, indices: np.ndarray) -> torch.Tensor:
        """`prepare` for rows of a trafficdl.dataset.Dataset (memory-mapped: reads only these)."""
        idx = np.asarray(indices)
        n_packets = np.asarray(dataset.objects["n_packets"][idx])
        if self.kind == "payload":
            return self.prepare(dataset.payload[idx], None, n_packets)
        return self.prepare(None, dataset.packets[idx], n_packets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "length": self.length,
            "fields": self.fields,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputAdapter:
        return cls(
            kind=data["kind"],
            length=int(data["length"]),
            fields=int(data.get("fields", 4)),
            mean=tuple(data.get("mean", ())),
            std=tuple(data.get("std", ())),
        )


def _real_mask(n_packets: np.ndarray, length: int) -> np.ndarray:
    """[n, length] True where a row holds a real packet rather than padding."""
    n = np.minimum(np.asarray(n_packets, dtype=np.int64), length)
    return np.arange(length)[None, :] < n[:, None]


def _fit_shape(rows: np.ndarray, length: int, fields: int | None = None) -> np.ndarray:
    """Truncate or zero-pad axis 1 to `length` (the paper's fixed-length inputs)."""
    if fields is not None and (rows.ndim != 3 or rows.shape[2] != fields):
        raise TrafficdlError(f"packet rows have shape {rows.shape}, expected [n, *, {fields}]")
    if fields is None and rows.ndim != 2:
        raise TrafficdlError(f"payload rows have shape {rows.shape}, expected [n, bytes]")
    if rows.shape[1] == length:
        return rows
    if rows.shape[1] > length:
        return rows[:, :length]
    pad = [(0, 0), (0, length - rows.shape[1])] + ([(0, 0)] if fields is not None else [])
    return np.pad(rows, pad)
