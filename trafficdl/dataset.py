"""The on-disk dataset format, and the splits every training mode shares.

A dataset is a directory written once by `trafficdl extract` and read many
times by training processes, so it is a set of plain `.npy` arrays (loaded with
`mmap_mode="r"`: a worker touches only the rows of its partition) plus one
`dataset.json` with everything a human or a later run needs to know:

    dataset.json   format/version, segmentation, input sizes, label names,
                   per-capture provenance (path, label, packets, objects, error)
    payload.npy    uint8  [n, payload_bytes]   first L4 payload bytes, zero-padded
    packets.npy    float32[n, packets, 4]      (size, direction, window, iat)
    labels.npy     int32  [n]                  index into label names
    objects.npy    structured [n]              see OBJECT_DTYPE

Payload bytes are stored raw (1 byte each, 4x smaller than float32) and scaled
to [0, 1] by `payload_float` / the model input adapter; that is the paper's
input, without paying for it on disk.

Splits are stratified and deterministic in (seed, rank, N) so that every
process of a distributed run computes the same split without talking.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.errors import TrafficdlError

FORMAT_NAME = "trafficdl-dataset"
FORMAT_VERSION = 1
PACKET_FIELDS = ("size", "direction", "window", "iat")

# Per-object provenance. Addresses are text (IPv4 or IPv6) so the same column
# serves both families; protocol is the IP protocol number (6 TCP, 17 UDP).
OBJECT_DTYPE = np.dtype(
    [
        ("capture", "<i4"),  # index into meta["captures"]
        ("proto", "u1"),
        ("src", "U39"),
        ("sport", "<u2"),
        ("dst", "U39"),
        ("dport", "<u2"),
        ("n_packets", "<i4"),
        ("n_bytes", "<i8"),  # L4 payload bytes in both directions
        ("start", "<f8"),  # epoch seconds of the first packet
        ("duration", "<f8"),
        ("encrypted", "u1"),  # 0 no/unknown, 1 TLS, 2 QUIC, 3 DTLS
        # Tunnels the object was carried in (decapsulated; its 5-tuple and inputs are the
        # inner ones), outermost first joined by "+": "gtp", "vxlan", "pppoe+gtp"...; ""
        # for none. outer_src/outer_dst: the outermost tunnel's IP endpoints, client side
        # first ("" when the tunnels carry no IP, e.g. PPPoE, MPLS); tunnel_id: the
        # innermost tunnel's id (GTP-U TEID, VNI, GRE key, MPLS label, PPPoE session)
        # as seen on the object's first packet. Datasets written before these fields
        # existed lack them: read with `objects.dtype.names` in mind.
        ("encap", "U24"),
        ("outer_src", "U39"),
        ("outer_dst", "U39"),
        ("tunnel_id", "<u4"),
    ]
)
ENCRYPTION_KINDS = ("none", "tls", "quic", "dtls")


class DatasetError(TrafficdlError):
    """A dataset directory is missing, incomplete or of an unknown format."""


@dataclass
class Dataset:
    """A dataset opened for reading; arrays are memory-mapped, not loaded."""

    path: Path
    meta: dict[str, Any]
    payload: np.ndarray
    packets: np.ndarray
    labels: np.ndarray
    objects: np.ndarray
    label_names: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        root = Path(path)
        meta_file = root / "dataset.json"
        if not meta_file.is_file():
            raise DatasetError(f"{root}: not a trafficdl dataset (no dataset.json)")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{meta_file}: unreadable ({exc})") from exc
        if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
            raise DatasetError(
                f"{root}: format {meta.get('format')!r} v{meta.get('version')} "
                f"is not {FORMAT_NAME} v{FORMAT_VERSION}"
            )
        arrays = {}
        for name in ("payload", "packets", "labels", "objects"):
            f = root / f"{name}.npy"
            if not f.is_file():
                raise DatasetError(f"{root}: missing {f.name}")
            arrays[name] = np.load(f, mmap_mode="r")
        n = len(arrays["labels"])
        if any(len(a) != n for a in arrays.values()):
            raise DatasetError(f"{root}: arrays disagree on the number of objects")
        return cls(path=root, meta=meta, label_names=list(meta["labels"]), **arrays)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def payload_float(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """Payload bytes of the selected rows scaled to [0, 1] as float32."""
        rows = self.payload if index is None else self.payload[index]
        return np.asarray(rows, dtype=np.float32) / np.float32(255.0)


def write_dataset(
    out: str | Path,
    *,
    payload: np.ndarray,
    packets: np.ndarray,
    labels: np.ndarray,
    objects: np.ndarray,
    label_names: Sequence[str],
    meta: dict[str, Any],
) -> Path:
    """Write a complete dataset; `meta` adds to the format fields (captures, config...)."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    if not (len(payload) == len(packets) == len(objects) == n):
        raise ValueError("payload, packets, labels and objects must have the same length")
    np.save(root / "payload.npy", np.ascontiguousarray(payload, dtype=np.uint8))
    np.save(root / "packets.npy", np.ascontiguousarray(packets, dtype=np.float32))
    np.save(root / "labels.npy", np.ascontiguousarray(labels, dtype=np.int32))
    np.save(root / "objects.npy", np.asarray(objects, dtype=OBJECT_DTYPE))
    return write_dataset_meta(
        root,
        n_objects=n,
        payload_bytes=int(payload.shape[1]) if payload.ndim == 2 else 0,
        packets=int(packets.shape[1]) if packets.ndim == 3 else 0,
        label_names=label_names,
        meta=meta,
    )


def write_dataset_meta(
    out: str | Path,
    *,
    n_objects: int,
    payload_bytes: int,
    packets: int,
    label_names: Sequence[str],
    meta: dict[str, Any],
) -> Path:
    """Write dataset.json for arrays already in `out` (e.g. filled chunk by chunk
    through np.lib.format.open_memmap); written last, its presence means complete."""
    root = Path(out)
    full = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "n_objects": int(n_objects),
        "payload_bytes": int(payload_bytes),
        "packets": int(packets),
        "packet_fields": list(PACKET_FIELDS),
        **meta,
        "labels": list(label_names),
    }
    tmp = root / "dataset.json.tmp"
    tmp.write_text(json.dumps(full, indent=2, sort_keys=True))
    tmp.replace(root / "dataset.json")  # dataset.json last: its presence means complete
    return root


# --------------------------------------------------------------------- splits


def _per_class_permutations(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]


def train_test_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified hold-out split: each class contributes round(n_c * fraction) tests
    (at least one when it has two or more objects). Returns sorted index arrays."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    train, test = [], []
    for idx in _per_class_permutations(labels, seed):
        k = round(len(idx) * test_fraction)
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_kfold(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K stratified folds (the paper's protocol): each object is tested exactly once;
    a class's objects are dealt round-robin so fold sizes differ by at most one."""
    if k < 2:
        raise ValueError("k must be >= 2")
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for idx in _per_class_permutations(labels, seed):
        # Continue the deal where the previous class stopped to balance fold sizes.
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    all_idx = np.arange(len(labels))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]


def partition(
    indices: np.ndarray, labels: np.ndarray, world_size: int, rank: int, seed: int
) -> np.ndarray:
    """The stratified partition D_rank of `indices` among `world_size` workers.

    Disjoint across ranks, their union is `indices`, and each class is spread as
    evenly as possible. `labels` is indexed by the values in `indices`.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    indices = np.asarray(indices)
    sub_labels = np.asarray(labels)[indices]
    mine = []
    offset = 0
    for pos in _per_class_permutations(sub_labels, seed):
        owner = (np.arange(len(pos)) + offset) % world_size
        mine.append(indices[pos[owner == rank]])
        offset += len(pos)
    return np.sort(np.concatenate(mine)) if mine else indices[:0]
