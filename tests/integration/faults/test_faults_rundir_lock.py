"""Two runs on one `--out`: the second is refused, the first untouched.

A real `trafficdl train` (centralized) runs in its own process; once it has
written its first checkpoint it is frozen with SIGSTOP, so its files hold
still. A second run on the same run directory, centralized or distributed,
must fail with one line naming the holder's pid, exit 2, and change no file
(hashes and mtimes). Thawed, the first run completes normally.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_cluster import file_states, make_dataset

from trafficdl.cli import main

EPOCHS = 40


def test_a_second_run_on_the_same_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, out = make_dataset(tmp_path / "ds", per_class=100), tmp_path / "run"
    args = ["train", str(dataset), "--model", "lstm", "--batch-size", "25", "--out", str(out),
            "--quiet", "--patience", "0", "--val-fraction", "0"]  # every epoch: it is timed
    cmd = [sys.executable, "-m", "trafficdl.cli", *args, "--epochs", str(EPOCHS)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)
        time.sleep(0.2)  # a save under way when it stopped is frozen, not racing us
        before = file_states(out)
        for extra in ([], ["--workers", "2"]):
            assert main([*args, "--epochs", "3", *extra]) == 2
            err = capsys.readouterr().err.strip()
            assert err == (f"trafficdl: error: run directory {out} is in use by another run "
                           f"(pid {first.pid}); wait for it to end or train into another --out")
            assert file_states(out) == before
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr
    finally:
        if first.poll() is None:
            first.kill()
    run = json.loads((out / "run.json").read_text())
    assert run["epochs_run"] == EPOCHS and run["mode"] == "centralized"
