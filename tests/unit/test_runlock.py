"""One run per run directory: trafficdl.runlock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trafficdl import runlock

HOLDER = """
import sys, time
from trafficdl import runlock
with runlock.hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_process_is_refused_and_the_lock_is_released_at_exit(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = run / runlock.LOCK_NAME
        before = lock.stat()
        busy = rf"in use by another run \(pid {holder.pid}\)"
        with pytest.raises(runlock.RunDirBusy, match=busy), runlock.hold(run):
            pass
        after = lock.stat()
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    finally:
        holder.communicate("\n", timeout=30)
    with runlock.hold(run):  # the holder exited: free again
        pass


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with runlock.hold(tmp_path / "r"), runlock.hold(tmp_path / "r"):
        pass
    with runlock.hold(tmp_path / "r"):
        pass
    assert (tmp_path / "r" / runlock.LOCK_NAME).read_bytes() == b""  # never written to
