"""Run configuration validation and the paper's cost model."""

import pytest

from trafficdl.config import ConfigError, DistConfig, TrainConfig, from_dict, to_dict
from trafficdl.cost import NODE_TYPES, cost, ideal_cost, ideal_seconds, node_hours


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "resnet"},
        {"epochs": 0},
        {"lr": 0},
        {"test_fraction": 1.0},
        {"folds": 1},
        {"folds": 5, "fold": 5},
        {"device": "tpu"},
    ],
)
def test_invalid_train_configs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workers": -1},
        {"algorithm": "sgd"},
        {"window": 0, "window_epochs": 0},
        {"rho": 5.0, "elastic_lr": 0.3},  # α = 1.5 > 1 overshoots the worker
        {"wire_dtype": "int8"},
        {"chunk_bytes": 8 << 20},
    ],
)
def test_invalid_dist_configs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        DistConfig(**kwargs)


def test_window_in_epochs_becomes_batches() -> None:
    assert DistConfig(window=7).window_batches(139) == 7
    assert DistConfig(window_epochs=1 / 20).window_batches(139) == 7
    assert DistConfig(window_epochs=90).window_batches(139) == 90 * 139
    assert DistConfig(window_epochs=1e-6).window_batches(139) == 1
    assert DistConfig().alpha == pytest.approx(0.5)


def test_configs_round_trip_and_ignore_unknown_keys() -> None:
    cfg = TrainConfig(model="lstm", folds=10, fold=3)
    assert from_dict(TrainConfig, {**to_dict(cfg), "future_field": 1}) == cfg


def test_cost_is_the_papers_formula() -> None:
    ds4 = NODE_TYPES["DS4v2"].hourly_price
    # 8 workers + master for half an hour at the paper's DS4v2 price
    assert cost(8, 1800, ds4, ds4) == pytest.approx(9 * ds4 / 2)
    assert node_hours(8, 1800) == pytest.approx(4.5)
    assert ideal_seconds(800, 8) == 100
    assert ideal_cost(800, 8, 1.0, 2.0) == pytest.approx(10 * 100 / 3600)
