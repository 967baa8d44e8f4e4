"""The real runners' pure parts: fold hand-over and run.json → CellResult with a split check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.study.records import Cell
from trafficdl.study.runners import RunnerError, fold_config, from_run_json
from trafficdl.study.sweep import CellTask


def task() -> CellTask:
    return CellTask(
        Cell("lstm", 2, "1e", "aeasgd", "paper"),
        1,
        3,
        Path("/nonexistent"),
        np.arange(90),
        np.arange(90, 120),
        TrainConfig(model="lstm", epochs=4),
        DistConfig(workers=2),
        Path("/tmp"),
    )


RUN = {
    "split": {"train": 90, "test": 30},
    "training_seconds": 8.0,
    "wtpe_seconds": 2.0,
    "epochs": 4,
    "figures": {"accuracy": 0.9, "macro_recall": 0.8, "macro_f1": 0.7, "macro_precision": 0.6},
    "confusion": [[14, 1], [2, 13]],
    "labels": ["a", "b"],
    "commits_total": 8,
}


def test_single_holdout_needs_no_fold_fields() -> None:
    cfg = TrainConfig()
    assert fold_config(cfg, 1, 0) is cfg


def test_fold_is_handed_over_as_config() -> None:
    cfg = fold_config(TrainConfig(), 5, 3)
    assert (cfg.folds, cfg.fold) == (5, 3)


def test_fold_config_selects_the_sweeps_fold_rows() -> None:
    """The run's split (master and workers call run_split) is the sweep's fold."""
    from trafficdl.dataset import stratified_kfold
    from trafficdl.training.data import run_split

    labels = np.repeat(np.arange(3), 20)
    train, test = run_split(labels, fold_config(TrainConfig(), 5, 3))
    want_train, want_test = stratified_kfold(labels, 5, TrainConfig().seed)[3]
    assert np.array_equal(train, want_train) and np.array_equal(test, want_test)


def test_run_json_becomes_a_result() -> None:
    res = from_run_json(RUN, task(), threads=1)
    assert (res.t_s, res.wtpe_s, res.epochs) == (8.0, 2.0, 4)
    assert (res.accuracy, res.macro_recall, res.macro_f) == (0.9, 0.8, 0.7)
    assert res.confusion == [[14, 1], [2, 13]] and res.extra["commits_total"] == 8


def test_a_run_on_other_rows_is_refused() -> None:
    wrong = {**RUN, "split": {"train": 96, "test": 24}}
    with pytest.raises(RunnerError, match="wrong split"):
        from_run_json(wrong, task(), threads=1)
