"""Run spec round trip, config checks and run.json figures, without processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trafficdl.config import ConfigError, DistConfig, TrainConfig
from trafficdl.distributed import rundir
from trafficdl.distributed.spec import RunSpec, check_dist_config

SPEC = RunSpec(
    run_id="r",
    train=TrainConfig(model="lstm", epochs=2),
    dist=DistConfig(workers=4, worker_price=1.0, master_price=3.0),
    dataset="/d",
    num_classes=2,
    label_names=["a", "b"],
    model_version="v",
    adapter={"kind": "packets", "length": 20, "fields": 4, "mean": [1.0] * 4, "std": [2.0] * 4},
    model_overrides={"packets": 20},
)


def test_spec_json_round_trip() -> None:
    assert RunSpec.from_json(SPEC.to_json()) == SPEC
    assert SPEC.cost_of(3600) == pytest.approx(4 * 1.0 + 3.0)
    assert SPEC.node_hours_of(1800) == pytest.approx(2.5)


def test_synchronous_overshoot_is_refused_with_a_fix() -> None:
    with pytest.raises(ConfigError, match=r"--elastic-lr 0\.045"):
        check_dist_config(DistConfig(workers=4, algorithm="easgd"))
    check_dist_config(DistConfig(workers=4, algorithm="easgd", elastic_lr=0.045))
    check_dist_config(DistConfig(workers=16, algorithm="aeasgd"))  # async: per-commit α only
    with pytest.raises(ConfigError):
        check_dist_config(DistConfig(workers=0))


def commit(seconds: float, epoch: float, loss: float, staleness: int = 0) -> dict:
    return {
        "seconds": seconds,
        "epoch": epoch,
        "loss": loss,
        "accuracy": 0.5,
        "staleness": staleness,
        "final": False,
        "rank": 0,
        "counter": 0,
    }


def test_epoch_history_groups_commits_by_epoch() -> None:
    commits = [commit(1.0, 0.5, 2.0), commit(2.0, 1.0, 1.0), commit(5.0, 2.0, float("nan"))]
    h = rundir.epoch_history(commits, 3)
    assert [r["epoch"] for r in h] == [1, 2]  # no commit fell in epoch 3
    assert h[0]["loss"] == pytest.approx(1.5) and h[0]["seconds"] == 2.0
    assert h[1]["loss"] is None and h[1]["seconds"] == 3.0 and h[1]["time"] == 5.0


def test_summary_has_the_papers_figures_and_strict_json(tmp_path: Path) -> None:
    figures = {
        "accuracy": 0.9,
        "macro_recall": 0.8,
        "macro_precision": 0.7,
        "macro_f1": float("nan"),
        "confusion": [[1, 0], [0, 1]],
        "labels": ["a", "b"],
    }
    run = rundir.summary(
        SPEC,
        training_seconds=100.0,
        figures=figures,
        commits=[commit(1, 1, 1, staleness=3), commit(2, 2, 1, staleness=1)],
        counters={"commits_total": 2},
        split={"train": 8, "test": 2},
        t1_seconds=200.0,
    )
    assert run["wtpe_seconds"] == 50.0
    assert run["ideal_seconds"] == 50.0 and run["overhead_over_ideal"] == 2.0
    assert run["cost"] == pytest.approx((4 + 3) * 100 / 3600)
    assert run["ideal_cost"] == pytest.approx((4 + 3) * 50 / 3600)
    assert run["staleness"] == {"mean": 2.0, "max": 3}
    rundir.write_json(tmp_path / "run.json", run)
    back = json.loads((tmp_path / "run.json").read_text())  # strict: NaN became null
    assert back["figures"]["macro_f1"] is None and back["commits_total"] == 2
