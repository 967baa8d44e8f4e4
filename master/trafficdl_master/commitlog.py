"""An append-only log of applied commits with group commit: durability without a snapshot per ack.

Why: saving a full fsync'd snapshot of the centre before every acknowledgement
cost 40-60% of the exchange rate. Instead each applied commit (its header and
the contribution as folded) is appended here in fold order; the first
committer to `wait` while no write is in progress takes every queued record,
writes them with one `pwrite` and covers them with one `fdatasync` (group
commit, leader/follower: no hand-off to a writer thread); a commit is
acknowledged once the fsync that covers it returns. A snapshot now
and then (recovery.py) lets the log be cut: `rotate(base)` starts a new
segment and segments older than a durable snapshot are deleted (`drop_before`).
On restart the newest snapshot is loaded and the records after it replayed
(`read_records`), so the centre is the one every acknowledged commit built.

Segment files are `commits-u<base:012d>.tdllog`: `base` is the update counter
of the snapshot they follow. Each record starts at a 4096-byte boundary:

    0   magic b"TDLLOG1\\0", u32 meta length, u32 reserved (0), u64 payload length,
        u32 CRC-32 of meta + payload, u32 CRC-32 of the 28 bytes before it   (32 bytes)
    32  zero padding to 64
    64  meta: UTF-8 JSON (the commit header, the counter it made, dtype, shape)
    ..  payload: the contribution's raw bytes; zero padding to a multiple of 4096

Records are written with O_DIRECT where the filesystem allows it (on this
project's VMs a buffered 23 MB write costs ~80 ms of CPU in the page cache, a
direct one ~1 ms of CPU and ~15 ms of disk time), from a page-aligned buffer.
A record whose header, lengths or CRC do not check is a torn tail: it was never
acknowledged (its fsync did not return) and reading stops there.

Test hook: TRAFFICDL_TEST_COMMITLOG_STALL=n makes the leader stop for good
just before writing the group that holds its n-th record (the fault test kills
the master there, in the middle of a group commit).
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.atomic import fsync_dir
from trafficdl_master.snapshot_store import CheckpointError

log = logging.getLogger("trafficdl.master")

MAGIC = b"TDLLOG1\0"
_HEAD = struct.Struct("<8sIIQI")  # magic, meta length, reserved, payload length, body CRC
HEAD_BYTES = 64
BLOCK = 4096
PIECE = 4 << 20  # a big record is copied, hashed and written in pieces, overlapped
_NAME = re.compile(r"^commits-u(\d{12})\.tdllog$")
STALL_ENV = "TRAFFICDL_TEST_COMMITLOG_STALL"


class CommitLogError(CheckpointError):
    """The log could not be written (I/O): nothing after the failure is acknowledged."""


@dataclass(frozen=True)
class Record:
    """One applied commit as read back: its meta (header, counter) and contribution."""

    meta: dict[str, Any]
    payload: np.ndarray

    @property
    def counter(self) -> int:
        return int(self.meta["counter"])


def segment_name(base: int) -> str:
    return f"commits-u{base:012d}.tdllog"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """(base, path) of every log segment in `directory`, oldest first."""
    found = []
    for p in directory.iterdir() if directory.is_dir() else ():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _round(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def encode_header(meta_bytes: bytes, body_crc: int, payload_len: int) -> bytes:
    head = _HEAD.pack(MAGIC, len(meta_bytes), 0, payload_len, body_crc)
    return head + struct.pack("<I", zlib.crc32(head)) + bytes(HEAD_BYTES - _HEAD.size - 4)


def read_segment(path: Path) -> Iterator[Record]:
    """The whole records of one segment in order; stops silently at a torn or empty tail."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset + HEAD_BYTES <= size:
            f.seek(offset)
            head = f.read(HEAD_BYTES)
            magic, meta_len, _, payload_len, body_crc = _HEAD.unpack_from(head)
            (head_crc,) = struct.unpack_from("<I", head, _HEAD.size)
            if magic != MAGIC or head_crc != zlib.crc32(head[: _HEAD.size]):
                if any(head):
                    log.warning("commit log %s: torn record at %d dropped", path.name, offset)
                return
            total = _round(HEAD_BYTES + meta_len + payload_len)
            if offset + total > size:
                log.warning("commit log %s: short record at %d dropped", path.name, offset)
                return
            body = bytearray(meta_len + payload_len)
            f.readinto(body)
            if zlib.crc32(body) != body_crc:
                log.warning("commit log %s: CRC mismatch at %d, record dropped", path.name, offset)
                return
            meta = json.loads(bytes(body[:meta_len]))
            payload = np.frombuffer(body, np.dtype(meta["dtype"]), offset=meta_len)
            yield Record(meta, payload.reshape(meta["shape"]))
            offset += total


def read_records(directory: Path, after: int) -> Iterator[Record]:
    """Records with counters after..., contiguous, across segments; stops at the first gap."""
    expected = after + 1
    for _, path in segments(directory):
        for rec in read_segment(path):
            if rec.counter < expected:
                continue  # covered by the snapshot
            if rec.counter != expected:
                log.error("commit log %s: counter %d after %d, replay stops",
                          path.name, rec.counter, expected - 1)  # fmt: skip
                return
            yield rec
            expected += 1


class _Segment:
    """One open segment file, appended at `offset` (O_DIRECT when the filesystem allows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # a snapshot at `base` covers the rest
        try:
            self.fd = os.open(path, flags | getattr(os, "O_DIRECT", 0), 0o644)
            self.direct = hasattr(os, "O_DIRECT")
        except OSError:  # tmpfs and some others refuse O_DIRECT
            self.fd = os.open(path, flags, 0o644)
            self.direct = False
        self.offset = 0
        self._reopen = threading.Lock()

    def write(self, buf: memoryview, at: int) -> None:
        """Write `buf` at `at` bytes past `offset` (block-aligned; `offset` moves in `advance`)."""
        try:
            done = os.pwrite(self.fd, buf, self.offset + at)
        except OSError as exc:
            if not self.direct or exc.errno != 22:  # EINVAL: direct I/O refused late
                raise
            with self._reopen:
                if self.direct:
                    fd, self.fd = self.fd, os.open(self.path, os.O_WRONLY)
                    os.close(fd)
                    self.direct = False
            done = os.pwrite(self.fd, buf, self.offset + at)
        if done != len(buf):
            raise OSError(f"short write to {self.path}: {done} of {len(buf)} bytes")

    def advance(self, nbytes: int) -> None:
        self.offset += nbytes

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class CommitLog:
    """The writer side: `append` in fold order, `wait` for durability (group commit)."""

    def __init__(self, directory: str | Path, base: int) -> None:
        """A new segment after the snapshot at counter `base`, which must be durable already
        (a segment of that name from an earlier life is cut: its records are covered or torn)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._queue: list[tuple[int, Any]] = []  # (ticket, record parts or ("rotate", base))
        self._next = 0  # last ticket handed out
        self._durable = 0  # every ticket <= this is on disk
        self._error: CommitLogError | None = None
        self._writing = False  # a waiter is writing a group (the leader)
        self.fsyncs = 0
        self.records = 0
        self.bytes_since_rotate = 0
        self._stall_at = int(os.environ.get(STALL_ENV, "0") or 0)
        self._segment = _Segment(self.directory / segment_name(base))
        fsync_dir(self.directory)
        self._buf = mmap.mmap(-1, BLOCK)
        self._disk = ThreadPoolExecutor(1, thread_name_prefix="commit-log-disk")

    # ------------------------------------------------------------ callers
    def append(self, meta: dict[str, Any], payload: np.ndarray) -> int:
        """Queue one applied commit; returns its ticket for `wait`. Call in fold order."""
        array = np.ascontiguousarray(payload)
        meta = {**meta, "dtype": array.dtype.str, "shape": list(array.shape)}
        meta_bytes = json.dumps(meta).encode()
        with self._cond:
            self._next += 1
            self._queue.append((self._next, (meta_bytes, array)))
            self.bytes_since_rotate += _round(HEAD_BYTES + len(meta_bytes) + array.nbytes)
            self._cond.notify_all()
            return self._next

    def rotate(self, base: int) -> int:
        """Records appended after this call go to a new segment that follows snapshot `base`."""
        with self._cond:
            self._next += 1
            self._queue.append((self._next, ("rotate", base)))
            self.bytes_since_rotate = 0
            self._cond.notify_all()
            return self._next

    def last_ticket(self) -> int:
        with self._cond:
            return self._next

    def wait(self, ticket: int) -> None:
        """Return once `ticket` is durable; raises CommitLogError if the log failed.

        Leader/follower group commit: a waiter that finds no write in progress takes
        every queued record and writes them itself (no hand-off to another thread);
        the others wait for the fsync that covers them, or lead the next group."""
        with self._cond:
            while self._durable < ticket:
                if self._error is not None:
                    raise self._error
                if self._writing or not self._queue:
                    self._cond.wait()
                    continue
                batch, self._queue = self._queue, []
                self._writing = True
                self._cond.release()
                try:
                    self._write(batch)
                except Exception as exc:  # OSError, or a bug: every waiter must hear of it
                    self._error = CommitLogError(f"cannot append to the commit log: {exc}")
                    log.error("%s", self._error)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    if self._error is None:
                        self._durable = batch[-1][0]
                    self._cond.notify_all()

    def drop_before(self, base: int) -> None:
        """Delete segments that a durable snapshot at counter >= `base` covers."""
        for seg_base, path in segments(self.directory):
            if seg_base < base and path != self._segment.path:
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("cannot remove commit log %s: %s", path, exc)

    def close(self) -> None:
        """Write what is queued, then close (records nobody waited for are written too)."""
        with contextlib.suppress(CommitLogError):
            self.wait(self.last_ticket())
        self._disk.shutdown()
        self._segment.close()

    # ------------------------------------------------------------- writer
    def _write(self, batch: list[tuple[int, Any]]) -> None:
        pending: list[tuple[bytes, np.ndarray]] = []
        for _, item in batch:
            if item[0] == "rotate":
                self._flush(pending)
                pending = []
                self._segment.close()
                self._segment = _Segment(self.directory / segment_name(item[1]))
                fsync_dir(self.directory)
            else:
                pending.append(item)
        self._flush(pending)

    def _flush(self, records: list[tuple[bytes, np.ndarray]]) -> None:
        """One pwrite and one fdatasync for every record of the group."""
        if not records:
            return
        if self._stall_at and self.records + len(records) >= self._stall_at:
            log.warning("%s: commit log writer stalled before record %d", STALL_ENV,
                        self._stall_at)  # fmt: skip
            while True:
                time.sleep(3600)
        total = sum(_round(HEAD_BYTES + len(m) + a.nbytes) for m, a in records)
        if len(self._buf) < total:
            self._buf.close()
            self._buf = mmap.mmap(-1, _round(total))
        view = memoryview(self._buf)
        pieces: list[Future[None]] = []  # written by the disk thread while we copy on
        at = 0
        for meta_bytes, array in records:
            start = at + HEAD_BYTES
            view[start : start + len(meta_bytes)] = meta_bytes
            crc = zlib.crc32(meta_bytes)
            src = array.reshape(-1).view(np.uint8)
            payload_at = start + len(meta_bytes)
            head_end = min(_round(payload_at + 1), _round(payload_at + src.nbytes))
            written = head_end  # the first block(s) go last: they hold the header
            for lo in range(0, src.nbytes, PIECE):
                hi = min(lo + PIECE, src.nbytes)
                dst = np.frombuffer(self._buf, np.uint8, hi - lo, payload_at + lo)
                dst[:] = src[lo:hi]  # numpy copies without the GIL, like crc32 hashes
                crc = zlib.crc32(dst, crc)
                ready = (payload_at + hi) // BLOCK * BLOCK
                if ready - written >= PIECE or hi == src.nbytes:
                    end = ready
                    if hi == src.nbytes:  # the last piece: zero padding to the block
                        end = _round(payload_at + hi)
                        view[payload_at + hi : end] = bytes(end - payload_at - hi)
                    if end > written:
                        pieces.append(self._disk.submit(self._segment.write,
                                                        view[written:end], written))  # fmt: skip
                        written = end
            view[at : at + HEAD_BYTES] = encode_header(meta_bytes, crc, src.nbytes)
            if not src.nbytes:
                view[payload_at:head_end] = bytes(head_end - payload_at)
            self._segment.write(view[at:head_end], at)
            at = _round(payload_at + src.nbytes)
        for piece in pieces:
            piece.result()
        self._segment.advance(at)
        self._segment.sync()
        view.release()
        self.fsyncs += 1
        self.records += len(records)


__all__ = ["CommitLog", "CommitLogError", "Record", "read_records", "read_segment", "segments"]
