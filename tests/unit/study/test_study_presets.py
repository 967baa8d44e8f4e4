"""Presets: the paper's dist-keras defaults, and the robust rule's scaling with N."""

from __future__ import annotations

import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.study import presets
from trafficdl.study.presets import PresetError

TRAIN = TrainConfig(model="lstm", batch_size=50, lr=1e-3)


@pytest.mark.parametrize("n", [1, 2, 16])
def test_paper_is_alpha_half_whatever_n(n: int) -> None:
    train, dist = presets.apply("paper", TRAIN, DistConfig(workers=n, rho=1.0), n)
    assert dist.alpha == pytest.approx(0.5)
    assert train == TRAIN and dist.window == 0  # the cell's window is kept


def test_robust_holds_total_pull_and_steps_per_epoch() -> None:
    train, dist = presets.apply("robust", TRAIN, DistConfig(workers=8, window_epochs=1.0), 8)
    assert dist.alpha * 8 == pytest.approx(presets.ROBUST_BETA) == pytest.approx(1.8)
    assert train.batch_size == 6  # 50 / 8: a worker steps as often as the centralized trainer
    assert dist.window == presets.ROBUST_WINDOW
    assert (train.lr, train.epochs, train.patience) == (TRAIN.lr, TRAIN.epochs, TRAIN.patience)


def test_robust_many_workers_keep_alpha_commit_every_batch_and_wait_longer() -> None:
    plateau = TrainConfig(model="lstm", batch_size=50, lr=1e-3, val_fraction=0.1, patience=5)
    train, dist = presets.apply("robust", plateau, DistConfig(workers=16, window_epochs=1.0), 16)
    assert dist.alpha == pytest.approx(0.225) and dist.window == 1
    assert (train.batch_size, train.patience, train.lr) == (3, 10, plateau.lr)
    train, _ = presets.apply("robust", TRAIN, DistConfig(workers=16), 16)
    assert train.patience == 0  # fixed epochs (sweeps) stay fixed
    _, dist = presets.apply("robust", TRAIN, DistConfig(workers=16, algorithm="easgd"), 16)
    assert dist.alpha * 16 == pytest.approx(0.9) and dist.window == presets.ROBUST_WINDOW


@pytest.mark.parametrize(("n", "beta"), [(2, 0.9), (4, 0.9), (5, 1.8), (8, 1.8), (64, 64 * 0.225)])
def test_robust_pull_grows_with_n(n: int, beta: float) -> None:
    _, dist = presets.apply("robust", TRAIN, DistConfig(workers=n), n)
    assert dist.alpha * n == pytest.approx(beta)


def test_robust_synchronous_keeps_the_easgd_bound() -> None:
    _, dist = presets.apply("robust", TRAIN, DistConfig(workers=8, algorithm="easgd"), 8)
    assert dist.alpha * 8 == pytest.approx(0.9) and dist.alpha * 8 <= 1.0


def test_robust_keeps_shorter_windows_and_small_n_defaults() -> None:
    _, dist = presets.apply("robust", TRAIN, DistConfig(workers=4, window=2), 4)
    assert dist.window == 2
    train, dist = presets.apply("robust", TRAIN, DistConfig(workers=1), 1)
    assert dist.alpha == pytest.approx(0.5) and train.batch_size == 50  # N = 1: as the paper
    train, _ = presets.apply("robust", TrainConfig(batch_size=8), DistConfig(workers=64), 64)
    assert train.batch_size == 1


def test_none_and_unknown() -> None:
    d = DistConfig(workers=3, rho=2.0, elastic_lr=0.2)
    assert presets.apply("none", TRAIN, d, 3) == (TRAIN, d)
    with pytest.raises(PresetError, match="unknown preset"):
        presets.apply("fastest", TRAIN, d, 3)
