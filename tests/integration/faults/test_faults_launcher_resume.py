"""Ctrl-C, then `--resume`: an interrupted local run continues where it stopped.

The `trafficdl train --workers 2` command runs as a real process; once its
master has checkpointed a few dozen commits it gets SIGINT, as Ctrl-C in a
terminal sends (the children run in their own process group, so only the
launcher gets it). It must stop master and workers cleanly: exit 130, no
process of the run left, no temp or torn file in the run directory, and a
line saying how to resume. A `--resume` with other settings is refused with one
line naming the differences, exit 2, every file of the run directory untouched
(hashes and mtimes). The right `--resume` continues the same run: one run id,
one history whose update counters go 1..n without a gap or a repeat, the
undisturbed number of commits, and T = the first part + the second part (the
time it was stopped is not counted). An asynchronous run may resume with
another N (elastic scaling): it completes rescaled, one history.
"""

from __future__ import annotations

import json
import math
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_cluster import durable_commits, file_states, make_dataset, run_processes
from trafficdl_master.snapshot_store import CheckpointStore

from trafficdl.cli import main

EPOCHS, BATCH, WINDOW = 60, 25, 2  # long enough that Ctrl-C at 60 commits lands mid-run
STOP_AFTER_COMMITS = 60
GAP_S = 3.0  # the run stays stopped this long before it is resumed


def _args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(dataset), "--workers", "2", "--model", "lstm", "--epochs", str(EPOCHS),
            "--batch-size", str(BATCH), "--lr", "0.003", "--window", str(WINDOW),
            "--threads-per-worker", "1", "--seed", "5", "--out", str(out), "--quiet",
            "--patience", "0", "--val-fraction", "0.0",  # every epoch: the commits are counted
            *extra]  # fmt: skip


def _saved_commits(out: Path) -> int:
    return max([0, *(durable_commits(d) for d in out.glob("checkpoints/*"))])


def _interrupt(root: Path) -> dict:
    """Start the command, SIGINT it once STOP_AFTER_COMMITS commits are checkpointed."""
    dataset, out = make_dataset(root / "ds", per_class=200), root / "run"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "trafficdl.cli", *_args(dataset, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        while _saved_commits(out) < STOP_AFTER_COMMITS:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 300, "no progress"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {"dataset": dataset, "out": out, "rc": proc.returncode, "stderr": stderr,
            "wall": time.monotonic() - t0}  # fmt: skip


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    stopped = _interrupt(tmp_path_factory.mktemp("resume"))
    time.sleep(GAP_S)
    return stopped


def test_ctrl_c_stops_the_run_cleanly_and_says_how_to_resume(interrupted: dict) -> None:
    out = interrupted["out"]
    assert interrupted["rc"] == 130, interrupted["stderr"]
    record = json.loads((out / "launch.json").read_text())
    run_id = record["run_id"]
    assert record["sessions"][-1]["outcome"] == "interrupted"
    lines = interrupted["stderr"].strip().splitlines()
    assert lines[-2].startswith(f"trafficdl: run {run_id} stopped at update ")
    assert lines[-1].startswith("trafficdl: continue it with: trafficdl train ")
    # The hint is the command as given plus --resume (the last test runs it).
    hint = shlex.split(lines[-1].split(": ", 2)[2])
    assert sorted(hint[1:]) == sorted([*_args(interrupted["dataset"], out), "--resume"])
    assert run_processes(run_id) == {}  # master and workers are gone
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".corrupt"))
                 or p.name.startswith(".ckpt-tmp-")]  # fmt: skip
    assert leftovers == []
    assert not (out / "run.json").exists()
    store = CheckpointStore(out / "checkpoints" / run_id)
    newest = store.latest_good()  # verifies the checksum: nothing half-written
    assert newest is not None and newest.path == store.paths()[0]
    assert newest.update_counter >= STOP_AFTER_COMMITS
    master_log = (out / "logs" / "master.log").read_text()
    assert "trafficdl-master: stopped; the run continues from its last checkpoint" in master_log


def test_a_resume_with_other_settings_is_refused_and_touches_nothing(
    interrupted: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    out = interrupted["out"]
    before = file_states(out)
    args = _args(interrupted["dataset"], out, "--resume")
    args[args.index("--window") + 1] = "3"
    args[args.index("--model") + 1] = "cnn1d"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trafficdl: error: --resume: ")
    assert "--model lstm (now cnn1d)" in err and "--window 2 (now 3)" in err
    assert file_states(out) == before


def test_resume_continues_the_same_run(interrupted: dict) -> None:
    out = interrupted["out"]
    run_id = json.loads((out / "launch.json").read_text())["run_id"]
    stopped = CheckpointStore(out / "checkpoints" / run_id).latest_good()
    assert stopped is not None
    t_first = float(stopped.meta["training_seconds"])
    hint = interrupted["stderr"].strip().splitlines()[-1].split(": ", 2)[2]
    t0 = time.monotonic()
    assert main(shlex.split(hint)[1:]) == 0  # exactly what the interrupted run said
    wall = time.monotonic() - t0
    run = json.loads((out / "run.json").read_text())
    history = json.loads((out / "history.json").read_text())
    record = json.loads((out / "launch.json").read_text())
    assert run["run_id"] == run_id and [s["outcome"] for s in record["sessions"]] == [
        "interrupted", "succeeded"]  # fmt: skip
    counters = [c["counter"] for c in history["commits"]]
    batches = [EPOCHS * math.ceil(r / BATCH) for r in run["split"]["partitions"]]
    assert counters == list(range(1, len(counters) + 1))  # strictly increasing, no gap
    assert run["commits_total"] == len(counters) == sum((b - 1) // WINDOW + 1 for b in batches)
    assert counters[stopped.update_counter - 1] == stopped.update_counter
    master_log = (out / "logs" / "master.log").read_text()
    assert (f"continued run {run_id} from {stopped.path.name}: update {stopped.update_counter}, "
            f"T so far {t_first:.2f} s (stopped, not counted:") in master_log  # fmt: skip
    workers_log = (out / "logs" / "worker-0.log").read_text()
    assert "rank 0 resumes at batch" in workers_log
    # T = both parts: the first up to the stop, the second from the moment every
    # worker was back; the stopped time (GAP_S at least) and start-ups are outside.
    t = run["training_seconds"]
    assert t_first <= interrupted["wall"]
    assert 0 < t - t_first < wall
    assert run["restarts"] == 1 and run["figures"]["macro_f1"] > 0.6


def test_an_asynchronous_run_resumes_with_another_n(tmp_path: Path) -> None:
    """The documented exception: `--workers` of an aeasgd run may change on --resume; the
    master rescales the run (re-partitioned rows, every rank at the slowest acknowledged
    epoch) and cost integrates N(t)."""
    stopped = _interrupt(tmp_path)
    assert stopped["rc"] == 130, stopped["stderr"]
    out = stopped["out"]
    args = _args(stopped["dataset"], out, "--resume")
    args[args.index("--workers") + 1] = "3"
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    [rescale] = run["rescales"]
    assert (rescale["from"], rescale["to"]) == (2, 3) and run["workers"] == 3
    assert rescale["update_counter"] >= STOP_AFTER_COMMITS
    counters = [c["counter"] for c in json.loads((out / "history.json").read_text())["commits"]]
    assert counters == list(range(1, len(counters) + 1))
    sessions = json.loads((out / "launch.json").read_text())["sessions"]
    assert [(s["workers"], s["outcome"]) for s in sessions] == [(2, "interrupted"),
                                                                  (3, "succeeded")]  # fmt: skip
