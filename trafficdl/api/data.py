"""Datasets for notebooks: objects as a pandas DataFrame, inputs as a PyTorch Dataset.

`TrafficDataset` wraps the on-disk format (trafficdl.dataset.Dataset, memory
mapped) instead of copying it: `.objects` is built from the structured
`objects.npy` column by column, so any per-object field the capture code
records (tunnel metadata included) shows up without this module knowing it.
`to_torch` goes through the models' own input adapters, so a notebook model
sees exactly the scaling `trafficdl train` and `classify` use. pandas and
torch are imported inside the methods: opening a dataset costs neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from trafficdl.dataset import ENCRYPTION_KINDS, PACKET_FIELDS, Dataset
from trafficdl.errors import TrafficdlError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from trafficdl.models.adapters import InputAdapter

InputKind = Literal["payload", "packets"]


def objects_frame(ds: Dataset) -> pd.DataFrame:
    """One row per object: every field of objects.npy, then label, capture_path, encryption.

    The raw fields keep their on-disk names (trafficdl.dataset.OBJECT_DTYPE:
    capture, proto, src, sport, dst, dport, n_packets, n_bytes, start,
    duration, encrypted, and whatever the capture code adds), so the frame and
    the interchange files (trafficdl.interchange) share one vocabulary.
    """
    import pandas as pd

    objects = np.asarray(ds.objects)
    cols: dict[str, Any] = {}
    for name in objects.dtype.names or ():
        col = objects[name]
        cols[name] = col.astype(object) if col.dtype.kind == "U" else col
    labels = np.asarray(ds.labels, dtype=np.int64)
    names = np.asarray(ds.label_names, dtype=object)
    cols["label"] = names[labels] if len(names) else np.array([], dtype=object)
    captures = np.asarray([c.get("path", "") for c in ds.meta.get("captures", [])], dtype=object)
    if "capture" in cols and len(captures):
        idx = np.asarray(cols["capture"], dtype=np.int64)
        ok = (idx >= 0) & (idx < len(captures))
        cols["capture_path"] = np.where(ok, captures[np.clip(idx, 0, len(captures) - 1)], "")
    if "encrypted" in cols:
        kinds = np.asarray(ENCRYPTION_KINDS, dtype=object)
        enc = np.asarray(cols["encrypted"], dtype=np.int64)
        cols["encryption"] = np.where(enc < len(kinds), kinds[np.minimum(enc, len(kinds) - 1)], "")
    return pd.DataFrame(cols)


@dataclass
class TrafficDataset:
    """A dataset written by `trafficdl.extract` (or `trafficdl import`), opened for reading.

    Attributes are memory-mapped numpy arrays: `payload` uint8 [n, N_b],
    `packets` float32 [n, N_p, 4] (fields `packet_fields`), `labels` int32 [n]
    indexing `label_names`; `meta` is dataset.json. `objects` is the DataFrame
    view; `to_torch` the PyTorch one.
    """

    raw: Dataset

    @property
    def path(self) -> Path:
        return self.raw.path

    @property
    def meta(self) -> dict[str, Any]:
        return self.raw.meta

    @property
    def label_names(self) -> list[str]:
        return list(self.raw.label_names)

    @property
    def packet_fields(self) -> tuple[str, ...]:
        return tuple(self.raw.meta.get("packet_fields", PACKET_FIELDS))

    @property
    def payload(self) -> np.ndarray:
        return self.raw.payload

    @property
    def packets(self) -> np.ndarray:
        return self.raw.packets

    @property
    def labels(self) -> np.ndarray:
        return self.raw.labels

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return (
            f"TrafficDataset({str(self.path)!r}, {len(self)} objects, "
            f"{len(self.label_names)} labels)"
        )

    @property
    def objects(self) -> pd.DataFrame:
        """One row per object (see `objects_frame`); built on each access."""
        return objects_frame(self.raw)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The stratified (train, test) row indices `trafficdl train` uses for this seed."""
        from trafficdl.dataset import train_test_split

        return train_test_split(np.asarray(self.labels), test_fraction, seed)

    def to_torch(
        self,
        input: InputKind = "payload",
        indices: np.ndarray | None = None,
        *,
        adapter: InputAdapter | None = None,
    ) -> torch.utils.data.Dataset:
        """A `torch.utils.data.Dataset` of (x, y) over these rows (all when None).

        input="payload": x is float32 [N_b], the payload bytes scaled to [0, 1]
        (the 1D-CNN's input). input="packets": x is float32 [N_p, 4], each
        packet field standardized with mean/std fitted on these rows' real
        packets (padding stays 0; the LSTM's input). Pass the training set's
        `.adapter` to scale a test split with the training statistics.
        y is the int64 class index into `label_names`.
        """
        from trafficdl.models.adapters import InputAdapter

        if input not in ("payload", "packets"):
            raise TrafficdlError(f"input must be 'payload' or 'packets', not {input!r}")
        rows = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if adapter is None:
            length = self.payload.shape[1] if input == "payload" else self.packets.shape[1]
            adapter = InputAdapter(kind=input, length=int(length), fields=len(self.packet_fields))
            if input == "packets":
                adapter = adapter.fit(self.packets[rows], self.raw.objects["n_packets"][rows])
        elif adapter.kind != input:
            raise TrafficdlError(f"adapter is for {adapter.kind!r} input, not {input!r}")
        return _tensor_dataset(self.raw, rows, adapter)


def _tensor_dataset(ds: Dataset, rows: np.ndarray, adapter: InputAdapter) -> Any:
    """The rows read once through the adapter into memory (see training.data.load_split)."""
    import torch

    from trafficdl.training.data import load_split

    class ObjectsDataset(torch.utils.data.Dataset):
        """(x, y) pairs of model-ready inputs; `.adapter` and `.indices` say how and which."""

        def __init__(self) -> None:
            split = load_split(ds, rows, adapter)
            self.x = adapter.to_input(split.x)
            self.y = split.y
            self.indices = split.indices
            self.adapter = adapter

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return self.x[i], self.y[i]

    return ObjectsDataset()


def open_dataset(path: str | Path | TrafficDataset) -> TrafficDataset:
    """Open a dataset folder (raises trafficdl.errors.TrafficdlError when it is not one)."""
    if isinstance(path, TrafficDataset):
        return path
    return TrafficDataset(Dataset.open(path))
