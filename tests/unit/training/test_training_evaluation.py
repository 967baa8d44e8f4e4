"""Figures (accuracy, macro P/R/F, confusion), fold summaries and the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.errors import TrafficdlError
from trafficdl.evaluation import (
    classification_figures,
    confusion_matrix,
    macro_f1_stderr,
    most_confused_pair,
    summarize_folds,
)
from trafficdl.plots import confusion_percent, plot_confusion, plot_fold_metrics, plot_history
from trafficdl.training.crossval import cross_validate


def test_figures_by_hand() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 0])
    f = classification_figures(y_true, y_pred, ["a", "b", "c"])
    assert f["confusion"] == [[3, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert f["accuracy"] == pytest.approx(5 / 8)
    # recalls 3/4, 1/2, 1/2; precisions 3/5, 1/2, 1/1
    assert f["macro_recall"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert f["macro_precision"] == pytest.approx((0.6 + 0.5 + 1.0) / 3)
    f_a = 2 * 0.6 * 0.75 / 1.35
    f_c = 2 * 1.0 * 0.5 / 1.5
    assert f["per_class"]["a"]["f1"] == pytest.approx(f_a)
    assert f["macro_f1"] == pytest.approx((f_a + 0.5 + f_c) / 3)
    assert f["per_class"]["c"]["support"] == 2


def test_absent_class_is_left_out_of_macro_means_and_never_predicted_has_zero_precision() -> None:
    f = classification_figures(np.array([0, 0, 1]), np.array([0, 0, 0]), ["a", "b", "c"])
    assert f["per_class"]["b"]["precision"] == 0.0
    assert f["macro_recall"] == pytest.approx(0.5)  # (1 + 0) / 2: "c" has no objects


def test_macro_f_standard_error_matches_a_row_bootstrap_and_shrinks_with_rows() -> None:
    cm = np.array([[32, 0, 6, 2], [0, 37, 0, 3], [7, 0, 29, 4], [0, 0, 2, 38]])
    # The same bootstrap done the slow way: resample (true, predicted) rows, recompute.
    rows = np.array([(i, j) for i in range(4) for j in range(4) for _ in range(cm[i, j])])
    rng = np.random.default_rng(1)
    slow = [classification_figures(*rows[rng.integers(0, len(rows), len(rows))].T,
                                   list("abcd"))["macro_f1"] for _ in range(1500)]  # fmt: skip
    se = macro_f1_stderr(cm)
    assert 0.02 < se < 0.05 and se == pytest.approx(np.std(slow, ddof=1), rel=0.1)
    assert macro_f1_stderr(cm * 4) == pytest.approx(se / 2, rel=0.1)  # ~1/sqrt(rows)
    assert macro_f1_stderr(np.diag([10, 10, 10, 10])) == 0.0  # no error to resample
    assert macro_f1_stderr(cm) == se  # seeded: repeatable


def test_confusion_matrix_counts() -> None:
    cm = confusion_matrix(np.array([1, 1, 0]), np.array([1, 0, 0]), 2)
    assert cm.tolist() == [[1, 0], [1, 1]]


def test_fold_summary_mean_std_and_pooled_confusion() -> None:
    labels = ["a", "b"]
    f1 = classification_figures(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), labels)
    f2 = classification_figures(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), labels)
    s = summarize_folds([f1, f2])
    assert s["accuracy"]["mean"] == pytest.approx(0.875)
    assert s["accuracy"]["std"] == pytest.approx(np.std([1.0, 0.75], ddof=1))
    assert s["confusion"] == [[3, 1], [0, 4]]
    assert s["per_class"]["a"]["recall"]["mean"] == pytest.approx(0.75)


def test_most_confused_pair_is_symmetric_rate() -> None:
    cm = [[90, 8, 2], [9, 91, 0], [1, 0, 99]]
    f = {"confusion": cm, "labels": ["fb", "fbm", "yt"]}
    a, b, rate = most_confused_pair(f)
    assert (a, b) == ("fb", "fbm") and rate == pytest.approx(17 / 200)


def test_plots_write_pngs(tmp_path: Path) -> None:
    cm = [[98, 2, 0], [5, 95, 0], [0, 0, 50]]
    assert confusion_percent(cm).sum(axis=1).tolist() == pytest.approx([100, 100, 100])
    out = plot_confusion(cm, ["a", "b", "c"], tmp_path / "cm.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    folds = [{"accuracy": 0.9, "macro_recall": 0.88, "macro_f1": 0.87}] * 3
    assert plot_fold_metrics(folds, tmp_path / "folds.png").stat().st_size > 5000
    history = [{"epoch": i, "loss": 1 / i, "accuracy": 0.5, "val_loss": None} for i in (1, 2)]
    assert plot_history(history, tmp_path / "h.png").stat().st_size > 5000


def test_cross_validate_tests_every_object_once(toy_dataset: Callable[..., Dataset]) -> None:
    ds = toy_dataset(classes=3, per_class=12)
    cfg = TrainConfig(model="lstm", epochs=3, lr=3e-3, batch_size=10)
    cv = cross_validate(ds, cfg, 3)
    assert cv["k"] == 3 and len(cv["folds"]) == 3
    assert sum(f["n"] for f in cv["folds"]) == len(ds)
    assert np.sum(cv["summary"]["confusion"]) == len(ds)
    assert 0.0 <= cv["summary"]["macro_f1"]["mean"] <= 1.0
    with pytest.raises(TrafficdlError, match="cannot make 20 folds"):
        cross_validate(ds, cfg, 20)
