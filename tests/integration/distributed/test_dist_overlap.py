"""Overlapped exchanges end to end: a real master, real workers, `DistConfig.overlap`.

With overlap a worker's exchange runs on a thread while its next mini-batches
train, and a window whose exchange is still in flight grows instead of
waiting; so the commit count is no longer fixed by the window, but every
commit still says how many batches it covers. Checked against the blocking
run of the same configuration and the centralized reference: the macro F gap
stays within test_dist_e2e's bar for N = 2, run.json reports the overlap, its
lag and the blocked fraction, and EASGD (a barrier per round) never overlaps.

Measured 2026-12-02 on this 2-core VM (bench/bench_overlap.py has the speed
figures): on this fixture overlapped LSTM runs at N = 2 reached macro F
0.983-1.0 with AEASGD and ADAG, as the blocking runs do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_dist_e2e import BATCH, EPOCHS, TOLERANCE, _train, expected_commits
from trafficdl_worker.trainer import MAX_LAG_WINDOWS, MIN_LAG_BATCHES

from trafficdl.cli import main
from trafficdl.config import DistConfig
from trafficdl.distributed.launch import run_local
from trafficdl.training.run import run_centralized

WINDOW = 1  # a commit every mini-batch: where waiting would cost most


@pytest.fixture(scope="module")
def centralized_lstm(dist_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    out = tmp_path_factory.mktemp("overlap-central")
    return run_centralized(dist_dataset, _train("lstm"), out)["metrics"]["macro_f1"]


@pytest.mark.parametrize("algorithm", ["aeasgd", "adag"])
def test_overlapped_run_matches_centralized_and_reports_its_waits(
    dist_dataset: Path, tmp_path: Path, centralized_lstm: float, algorithm: str
) -> None:
    dist = DistConfig(workers=2, algorithm=algorithm, window=WINDOW, threads_per_worker=1,
                      overlap=True)  # fmt: skip
    result = run_local(dist_dataset, _train("lstm"), dist, tmp_path / "run", progress=False)
    run = result.run
    assert run["dist_config"]["overlap"] is True and run["commits_rejected"] == 0
    ex = run["exchange"]
    assert ex["overlap"] is True and len(ex["blocked_fraction_per_rank"]) == 2
    assert 0 < ex["blocked_fraction"] < 1 and ex["blocked_seconds"] > 0
    # Training went on while exchanges were in flight: on average at least part of a batch.
    assert ex["lag_batches_mean"] > 0
    # A window grows while its predecessor is in flight, up to a bound of batches.
    most = expected_commits(run["split"]["partitions"], EPOCHS, BATCH, WINDOW)
    bound = max(MAX_LAG_WINDOWS * WINDOW, MIN_LAG_BATCHES)
    assert most / (bound + 1) <= run["commits_total"] <= most
    history = json.loads((result.out_dir / "history.json").read_text())["commits"]
    assert [c["counter"] for c in history] == list(range(1, run["commits_total"] + 1))
    gap = centralized_lstm - result.figures["macro_f1"]
    assert gap <= TOLERANCE[2], f"macro F {result.figures['macro_f1']:.3f} vs {centralized_lstm}"


def test_blocking_and_barrier_runs_report_no_overlap(dist_dataset: Path, tmp_path: Path) -> None:
    for algorithm in ("aeasgd", "easgd"):
        overlap = algorithm == "easgd"  # asked for, but a barrier round cannot overlap
        dist = DistConfig(workers=2, algorithm=algorithm, window=2, threads_per_worker=1,
                          elastic_lr=0.09, overlap=overlap)  # fmt: skip
        run = run_local(dist_dataset, _train("lstm"), dist, tmp_path / algorithm,
                        progress=False).run  # fmt: skip
        ex = run["exchange"]
        assert ex["overlap"] is False and ex["lag_batches_mean"] == 0.0
        assert run["commits_total"] == expected_commits(run["split"]["partitions"], EPOCHS,
                                                        BATCH, 2)  # fmt: skip
        # the whole exchange blocks the loop: a real share of it on this tiny model
        assert 0 < ex["blocked_fraction"] < 1


def test_the_cli_flag_runs_overlapped_and_says_how_long_workers_waited(
    dist_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    rc = main(["train", str(dist_dataset), "--out", str(out), "--workers", "2", "--model", "lstm",
               "--window", "1", "--overlap", "--epochs", "2", "--val-fraction", "0"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["dist_config"]["overlap"] is True and run["exchange"]["overlap"] is True
    share = f"{run['exchange']['blocked_fraction']:.1%}"
    assert f"exchanges overlapped: workers blocked {share} of their loop" in printed
    assert run["exchange"]["data_plane_ranks"] == [0, 1]  # the launcher's workers are local
    assert "tensors moved through the same-node data plane for all 2 workers" in printed
    assert main(["train", str(dist_dataset), "--out", str(tmp_path / "x"), "--overlap=3"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--overlap" in err and "Traceback" not in err
