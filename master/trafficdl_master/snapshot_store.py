"""Atomic, self-checking checkpoints of the master's state, so a restarted master resumes.

A snapshot is a dict of numpy arrays (centre vector, algorithm state) plus
JSON-able metadata (update counter, per-worker progress, training seconds,
run id, model fingerprint, ...). One file per snapshot:

    0   magic b"TDLCKPT\\0", u32 format version, u32 flags (0),
        u64 manifest length, u64 payload length            (32 bytes, little-endian)
    32  sha256 over bytes [0, 32) and [64, end)            (32 bytes)
    64  manifest: UTF-8 JSON {"meta": ..., "arrays": [{name, dtype, shape, offset, nbytes}]}
        zero padding to a multiple of 64
    ..  payload: each array's raw bytes at a 64-byte aligned offset

A file is written under a temporary name in the same directory, fsynced,
renamed over its final name and the directory fsynced, so a crash leaves
either the previous set of files or the new one, never a half file under a
final name. The checksum catches what rename cannot (a torn write below the
filesystem, bit rot, a truncating copy): such a file is logged, renamed to
`*.corrupt` and the previous good one used. `latest_good()` never raises for
a bad file. Names carry a save sequence number, so "newest" never depends on
clocks or on the update counter (two saves can share a counter).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.atomic import fsync_dir
from trafficdl.errors import TrafficdlError

log = logging.getLogger(__name__)

MAGIC = b"TDLCKPT\0"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sIIQQ")  # magic, version, flags, manifest length, payload length
HEADER_BYTES = 64
ALIGN = 64
SUFFIX = ".tdlckpt"
_NAME = re.compile(r"^ckpt-(\d{8,})-u(\d+)" + re.escape(SUFFIX) + r"(\.corrupt)?$")
_TMP_PREFIX = ".ckpt-tmp-"
_ALLOWED_KINDS = "biufc"  # bool, ints, floats, complex: no objects, no structs
STALE_TMP_SECONDS = 600.0  # a temp file this old belongs to a writer that died


class CheckpointError(TrafficdlError):
    """A snapshot could not be saved (bad input or I/O); earlier checkpoints are untouched."""


class CorruptCheckpoint(CheckpointError):
    """A checkpoint file failed validation (torn, truncated, checksum mismatch, bad manifest)."""


@dataclass(frozen=True)
class Snapshot:
    """One loaded checkpoint. Arrays are writable and independent of the file."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    seq: int
    path: Path

    @property
    def saved_at(self) -> float:
        """Wall-clock (Unix seconds) of the save: a restart's outage is now - saved_at."""
        return float(self.meta["saved_at"])

    @property
    def update_counter(self) -> int:
        return int(self.meta["update_counter"])


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _layout(arrays: Mapping[str, np.ndarray]) -> tuple[list[dict[str, Any]], list[np.ndarray], int]:
    entries, flat, offset = [], [], 0
    for name, value in arrays.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(f"array {name!r}: need str names and numpy arrays")
        if value.dtype.kind not in _ALLOWED_KINDS or value.dtype.fields is not None:
            raise CheckpointError(f"array {name!r}: dtype {value.dtype} cannot be checkpointed")
        entries.append(
            {
                "name": name,
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                "offset": offset,
                "nbytes": int(value.nbytes),
            }
        )
        flat.append(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
        offset = _align(offset + value.nbytes)
    return entries, flat, offset


def write_checkpoint(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> int:
    """Write one checkpoint atomically at `path`; returns its size in bytes."""
    entries, flat, payload_len = _layout(arrays)
    try:
        manifest = json.dumps({"meta": dict(meta), "arrays": entries}).encode()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not JSON-serialisable: {exc}") from None
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, 0, len(manifest), payload_len)
    body_pad = _align(HEADER_BYTES + len(manifest)) - HEADER_BYTES - len(manifest)
    digest = hashlib.sha256(head)
    fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + bytes(32))  # checksum placeholder, filled in below
            for part in (manifest, bytes(body_pad)):
                digest.update(part)
                f.write(part)
            written = 0
            for entry, data in zip(entries, flat, strict=True):
                pad = bytes(entry["offset"] - written)
                digest.update(pad)
                f.write(pad)
                digest.update(data)
                f.write(data)
                written = entry["offset"] + entry["nbytes"]
            tail = bytes(payload_len - written)
            digest.update(tail)
            f.write(tail)
            f.seek(len(head))
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from None
    return HEADER_BYTES + len(manifest) + body_pad + payload_len


def read_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify one checkpoint file; raises CorruptCheckpoint on any defect."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < HEADER_BYTES:
                raise CorruptCheckpoint(f"{path.name}: {size} bytes, shorter than a header")
            buf = bytearray(size)
            if f.readinto(buf) != size:
                raise CorruptCheckpoint(f"{path.name}: file changed while reading")
    except OSError as exc:
        raise CorruptCheckpoint(f"{path.name}: unreadable: {exc}") from None
    magic, version, _flags, manifest_len, payload_len = _HEAD.unpack_from(buf)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise CorruptCheckpoint(f"{path.name}: not a version-{FORMAT_VERSION} checkpoint")
    payload_at = _align(HEADER_BYTES + manifest_len)
    if payload_at + payload_len != size:
        raise CorruptCheckpoint(
            f"{path.name}: {size} bytes, header says {payload_at + payload_len}"
        )
    view = memoryview(buf)
    digest = hashlib.sha256(view[: _HEAD.size])
    digest.update(view[HEADER_BYTES:])
    if digest.digest() != bytes(view[_HEAD.size : HEADER_BYTES]):
        raise CorruptCheckpoint(f"{path.name}: checksum mismatch")
    try:
        manifest = json.loads(bytes(view[HEADER_BYTES : HEADER_BYTES + manifest_len]))
        arrays = {}
        for e in manifest["arrays"]:
            dtype = np.dtype(e["dtype"])
            count = int(np.prod(e["shape"], dtype=np.int64))
            if dtype.kind not in _ALLOWED_KINDS or count * dtype.itemsize != e["nbytes"]:
                raise ValueError(f"array {e['name']!r} does not match its shape")
            if e["offset"] + e["nbytes"] > payload_len:
                raise ValueError(f"array {e['name']!r} lies beyond the payload")
            flat = np.frombuffer(buf, dtype, count, payload_at + e["offset"])
            arrays[e["name"]] = flat.reshape(e["shape"])
        return arrays, dict(manifest["meta"])
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptCheckpoint(f"{path.name}: bad manifest: {exc}") from None


class CheckpointStore:
    """The checkpoints of one run in one directory, owned by one master at a time.

    `save()` writes snapshot n+1 and keeps the newest `keep`; `latest_good()`
    returns the newest snapshot that verifies, or None. Thread-safe.
    """

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        if keep < 1:
            raise CheckpointError("keep at least one checkpoint")
        self.directory = Path(directory)
        self.keep = keep
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create checkpoint directory {directory}: {exc}"
            ) from None
        self._remove_stale_temps()

    def _entries(self, corrupt: bool = False) -> list[tuple[int, Path]]:
        """(seq, path) of final-named files, newest first; temp files never match."""
        found = []
        for p in self.directory.iterdir():
            m = _NAME.match(p.name)
            if m and (corrupt or not m.group(3)):
                found.append((int(m.group(1)), p))
        return sorted(found, reverse=True)

    def paths(self) -> list[Path]:
        """Checkpoint files (not quarantined), newest first."""
        return [p for _, p in self._entries()]

    def counters(self) -> list[int]:
        """The update counters of the checkpoint files (not quarantined), newest first."""
        return [int(_NAME.match(p.name).group(2)) for p in self.paths()]  # type: ignore[union-attr]

    def save(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
        """Write a new snapshot; `meta` must hold `update_counter`. Returns its path.

        Adds `saved_at` (wall clock) to the stored metadata. Raises CheckpointError
        on bad input or I/O failure, leaving earlier checkpoints as they were.
        """
        if "update_counter" not in meta:
            raise CheckpointError("checkpoint metadata needs an 'update_counter'")
        counter = meta["update_counter"]
        if not isinstance(counter, int) or isinstance(counter, bool) or counter < 0:
            raise CheckpointError("update_counter must be a non-negative int")
        stored = {**meta, "saved_at": time.time()}
        with self._lock:
            newest = self._entries(corrupt=True)
            seq = newest[0][0] + 1 if newest else 1
            path = self.directory / f"ckpt-{seq:08d}-u{counter}{SUFFIX}"
            write_checkpoint(path, arrays, stored)
            self._prune()
        return path

    def _prune(self) -> None:
        for _, old in self._entries()[self.keep :]:
            try:
                old.unlink()
            except OSError as exc:  # a leftover costs disk, not correctness
                log.warning("cannot remove old checkpoint %s: %s", old, exc)

    def latest_good(self) -> Snapshot | None:
        """The newest checkpoint that verifies; bad ones are logged and set aside."""
        with self._lock:
            try:
                entries = self._entries()
            except OSError as exc:
                log.error("cannot list checkpoint directory %s: %s", self.directory, exc)
                return None
            for seq, path in entries:
                try:
                    arrays, meta = read_checkpoint(path)
                except CorruptCheckpoint as exc:
                    log.error("checkpoint rejected, trying an older one: %s", exc)
                    self._quarantine(path)
                    continue
                return Snapshot(arrays=arrays, meta=meta, seq=seq, path=path)
        return None

    def _quarantine(self, path: Path) -> None:
        try:
            path.rename(path.with_name(path.name + ".corrupt"))
        except OSError as exc:
            log.warning("cannot set aside corrupt checkpoint %s: %s", path, exc)

    def _remove_stale_temps(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for p in self.directory.glob(_TMP_PREFIX + "*"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except OSError:
                pass  # another process got there first, or it is not ours to remove


def benchmark(directory: str | Path, num_elements: int = 5_800_000, repeats: int = 3) -> dict:
    """Median save and load seconds of a float32 centre of `num_elements` (23 MB by default).

    For bench/: `{"bytes": ..., "save_s": ..., "load_s": ...}`; save includes the fsyncs.
    """
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(num_elements, dtype=np.float32)
    meta = {"update_counter": 0, "run_id": "bench", "workers": {str(r): {} for r in range(16)}}
    store = CheckpointStore(directory, keep=2)
    saves, loads = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        path = store.save({"centre": centre}, {**meta, "update_counter": i})
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        snap = store.latest_good()
        loads.append(time.perf_counter() - t0)
        if snap is None or snap.path != path:
            raise CheckpointError(f"benchmark: the checkpoint just saved did not load ({path})")
    return {
        "bytes": path.stat().st_size,
        "save_s": float(np.median(saves)),
        "load_s": float(np.median(loads)),
    }


__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "CorruptCheckpoint",
    "Snapshot",
    "benchmark",
    "read_checkpoint",
    "write_checkpoint",
]
