"""One run per run directory: an exclusive lock on RUN_DIR/.lock for the whole run.

Two `trafficdl train` runs given the same `--out` would otherwise write into
each other (checkpoints, history, run.json). The first takes a `flock` on
RUN_DIR/.lock (released by the kernel when its process ends, even on SIGKILL,
so a crashed run never leaves a stale lock); a second one is refused before
it writes anything, with the holder's pid (from /proc/locks) in the message.
The lock file is never written to: holding it changes nothing in RUN_DIR.

The lock is re-entrant within one process (the `train` command holds it and the
launcher it calls takes it again): `flock` locks belong to an open file
description, so a second `open` + `flock` in the same process would refuse itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from trafficdl.errors import TrafficdlError

LOCK_NAME = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # resolved run dir -> (fd, depth)
_guard = threading.Lock()


class RunDirBusy(TrafficdlError):
    """Another run holds this run directory."""


@contextlib.contextmanager
def hold(run_dir: str | Path) -> Iterator[Path]:
    """Hold RUN_DIR's lock for the block (creates RUN_DIR); raises RunDirBusy at once
    when another process holds it."""
    out = Path(run_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrafficdlError(f"cannot create run directory {out}: {exc.strerror}") from None
    key = out.resolve()
    with _guard:
        fd, depth = _held.get(key, (-1, 0))
        if depth == 0:
            fd = _acquire(key)
        _held[key] = (fd, depth + 1)
    try:
        yield out
    finally:
        with _guard:
            fd, depth = _held.pop(key)
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                os.close(fd)  # releases the flock


def _acquire(run_dir: Path) -> int:
    path = run_dir / LOCK_NAME
    try:
        # No O_TRUNC: a refused run must not touch the holder's file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TrafficdlError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(os.fstat(fd).st_ino)
        os.close(fd)
        raise RunDirBusy(
            f"run directory {run_dir} is in use by another run (pid {holder}); "
            "wait for it to end or train into another --out"
        ) from None
    return fd


def _holder(inode: int) -> str:
    """The pid holding a flock on this inode, from /proc/locks ("?" when unknown)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "?"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF"
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            return parts[4]
    return "?"
