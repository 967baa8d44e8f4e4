"""Bounded-memory dataset assembly: per-capture parts on disk, then one memmap copy.

Each capture's arrays are saved as soon as it is extracted (by the worker
process itself, so they never travel through a pipe), and the final arrays are
filled part by part through np.lib.format.open_memmap: peak memory is one
capture's objects, not the dataset's. Parts live in `<out>/.parts` (same file
system: no cross-device copies) and are removed once the dataset is complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.dataset import OBJECT_DTYPE, write_dataset_meta

ARRAYS = ("payload", "packets", "objects")


def parts_dir(out: str | Path) -> Path:
    d = Path(out) / ".parts"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_part(spill: Path, index: int, arrays: dict[str, np.ndarray]) -> None:
    for name in ARRAYS:
        np.save(spill / f"{index:06d}-{name}.npy", arrays[name])


def assemble(
    out: str | Path,
    parts: Sequence[tuple[int, int, int]],  # (part index, objects, label index)
    *,
    payload_bytes: int,
    packets: int,
    label_names: Sequence[str],
    meta: dict[str, Any],
) -> np.ndarray:
    """Concatenate the saved parts into the dataset at `out`; returns labels (small)."""
    root = Path(out)
    spill = root / ".parts"
    n = sum(k for _, k, _ in parts)
    (root / "dataset.json").unlink(missing_ok=True)  # an older dataset here is now incomplete
    fmt = np.lib.format
    payload = fmt.open_memmap(root / "payload.npy", "w+", np.uint8, (n, payload_bytes))
    pkts = fmt.open_memmap(root / "packets.npy", "w+", np.float32, (n, packets, 4))
    objects = fmt.open_memmap(root / "objects.npy", "w+", OBJECT_DTYPE, (n,))
    labels = np.empty(n, np.int32)
    row = 0
    for index, k, label in parts:
        if k == 0:
            continue
        for name, dest in (("payload", payload), ("packets", pkts), ("objects", objects)):
            dest[row : row + k] = np.load(spill / f"{index:06d}-{name}.npy", mmap_mode="r")
        labels[row : row + k] = label
        row += k
    for arr in (payload, pkts, objects):
        arr.flush()
    del payload, pkts, objects
    np.save(root / "labels.npy", labels)
    write_dataset_meta(
        root,
        n_objects=n,
        payload_bytes=payload_bytes,
        packets=packets,
        label_names=label_names,
        meta=meta,
    )
    shutil.rmtree(spill, ignore_errors=True)
    return labels


def encrypted_share(out: str | Path) -> float:
    objects = np.load(Path(out) / "objects.npy", mmap_mode="r")
    return float((objects["encrypted"] > 0).mean()) if len(objects) else 0.0
