"""Run-level rules with real processes: the final commit, checkpoints, clean failures."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from torch.nn.utils import parameters_to_vector

from trafficdl.config import ConfigError, DistConfig, TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.distributed.launch import DistributedRunError, run_local
from trafficdl.errors import TrafficdlError
from trafficdl.models import build_model
from trafficdl.training.checkpoint import load_checkpoint
from trafficdl.training.data import holdout_indices
from trafficdl.training.evaluate import evaluate_model
from trafficdl.training.runtime import seed_everything

LSTM = TrainConfig(model="lstm", epochs=1, batch_size=50, lr=0.003)


def test_window_longer_than_training_still_moves_the_centre(
    dist_dataset: Path, tmp_path: Path
) -> None:
    """dist-keras' bug: with a window beyond a worker's batches the centre never moved.
    Here each worker makes exactly one (final) commit and the centre changes."""
    dist = DistConfig(workers=2, window_epochs=50.0, threads_per_worker=1)
    result = run_local(dist_dataset, LSTM, dist, tmp_path / "run", progress=False, t1_seconds=4.0)
    run = result.run
    assert run["commits_total"] == 2 and run["update_counter"] == 2
    assert [c["final"] for c in _commits(result.out_dir)] == [True, True]
    # The run directory has the same plots as a centralized one.
    for png in ("confusion.png", "history.png"):
        assert (result.out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ckpt = load_checkpoint(result.checkpoint)  # what `classify` loads
    seed_everything(LSTM.seed)
    initial = build_model("lstm", ckpt.num_classes, **ckpt.model_config)
    trained = ckpt.build_model()
    moved = (
        parameters_to_vector(trained.parameters()) - parameters_to_vector(initial.parameters())
    ).detach()
    assert float(moved.abs().max()) > 1e-4
    assert ckpt.dist_config is not None and ckpt.dist_config.workers == 2

    # The checkpoint reproduces run.json's figures on the same held-out rows.
    ds = Dataset.open(dist_dataset)
    _, _, test_idx = holdout_indices(ds.labels, LSTM.test_fraction, 0.0, LSTM.seed)
    figures = evaluate_model(trained, ds, test_idx, adapter=ckpt.adapter)
    assert figures["accuracy"] == pytest.approx(run["figures"]["accuracy"])
    assert np.array_equal(np.asarray(figures["confusion"]), np.asarray(run["confusion"]))

    # A known T1 gives the paper's ideal curve and cost.
    assert run["ideal_seconds"] == pytest.approx(2.0)
    assert run["ideal_cost"] == pytest.approx((0.698 * 2 + 0.698) * 2.0 / 3600)
    assert run["overhead_over_ideal"] == pytest.approx(run["training_seconds"] / 2.0)


def _commits(out: Path) -> list[dict]:
    import json

    return json.loads((out / "history.json").read_text())["commits"]


def test_bad_input_fails_before_any_process(tmp_path: Path, dist_dataset: Path) -> None:
    with pytest.raises(TrafficdlError, match="dataset"):
        run_local(tmp_path / "missing", LSTM, DistConfig(workers=1), tmp_path / "a")
    with pytest.raises(TrafficdlError, match="workers >= 1"):
        run_local(dist_dataset, LSTM, DistConfig(workers=0), tmp_path / "b")
    with pytest.raises(ConfigError, match="overshoot"):
        run_local(dist_dataset, LSTM, DistConfig(workers=4, algorithm="easgd"), tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_a_failing_worker_stops_the_run_with_its_error(dist_dataset: Path, tmp_path: Path) -> None:
    env = {"TRAFFICDL_DATASET": str(tmp_path / "not-on-this-node")}
    with pytest.raises(DistributedRunError, match=r"worker-0 exited with code 2.*not a trafficdl"):
        run_local(
            dist_dataset,
            LSTM,
            DistConfig(workers=1),
            tmp_path / "run",
            progress=False,
            extra_env=env,
        )
    assert not (tmp_path / "run" / "run.json").exists()
    # The master was stopped too: its port no longer answers.
    port = int((tmp_path / "run" / "logs" / "master.port").read_text())
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
