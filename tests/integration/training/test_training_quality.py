"""Both models learn real (synthetic) app traffic through capture → extract → train.

Fixed seeds on CPU make these figures exact repeats on one machine: measured
(2026-12-01, this 2-core VM, two runs, identical) macro F 0.961 for the CNN
(4 epochs) and accuracy 0.861 / macro F 0.862 for the LSTM (30 epochs), chance
being 1/6. The bars sit 0.03-0.04 below those figures: room for another CPU's
kernels (other summation orders) but not for a real regression.
"""

from __future__ import annotations

from pathlib import Path

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.evaluation import most_confused_pair
from trafficdl.training.run import run_centralized


def test_cnn_reaches_macro_f_09_and_the_similar_pair_is_the_hardest(
    six_apps: Dataset, tmp_path: Path
) -> None:
    cfg = TrainConfig(model="cnn1d", epochs=4, batch_size=50, lr=1e-3, seed=0)
    result = run_centralized(six_apps.path, cfg, tmp_path / "cnn")
    figures = result["metrics"]
    assert figures["macro_f1"] >= 0.93, figures["confusion"]  # measured 0.961
    a, b, rate = most_confused_pair(figures)
    assert {a, b} == {"facebook", "messenger"}
    assert rate > 0.0
    pair = ("facebook", "messenger")
    f1 = {app: f["f1"] for app, f in figures["per_class"].items()}
    others = [v for app, v in f1.items() if app not in pair]
    assert sum(f1[a] for a in pair) / 2 < sum(others) / len(others), f1


def test_lstm_reaches_its_measured_quality(six_apps: Dataset, tmp_path: Path) -> None:
    cfg = TrainConfig(model="lstm", epochs=30, batch_size=50, lr=1e-3, seed=0)
    figures = run_centralized(six_apps.path, cfg, tmp_path / "lstm")["metrics"]
    assert figures["accuracy"] >= 0.82, figures["confusion"]  # measured 0.861
    assert figures["macro_f1"] >= 0.82, figures["per_class"]  # measured 0.862
