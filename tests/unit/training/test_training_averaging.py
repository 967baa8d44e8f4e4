"""The weights' exponential average (optim/averaging.py) and the runs that keep it.

The average is the model a converging run validates, stops on and tests: the
centralized Trainer advances it after every mini-batch, the master after every
fold of the centre. The checks: a young run's average follows its weights (a
horizon of at most a fifth of the epochs seen), the decay is exp(-epochs /
horizon) whatever the update size, the Trainer returns the average (not the
last weights, whose trajectory it does not change), and the master's centre
average follows the workers' mean epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from trafficdl_master.center import Center
from trafficdl_master.state import CenterState, CommitInfo

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.optim import get_rule
from trafficdl.optim.averaging import WARM_UP_SHARE, WeightAverage
from trafficdl.training.loop import evaluate_loss
from trafficdl.training.run import train_model


def _share(d: float, seen: float, horizon: float) -> float:
    """The documented rule: a horizon of at most a fifth of the epochs seen so far."""
    return 1 - math.exp(-d / min(horizon, WARM_UP_SHARE * seen))


def test_a_young_average_follows_the_weights_then_the_decay_is_per_epoch() -> None:
    avg = WeightAverage([torch.zeros(2)], horizon_epochs=10.0)
    avg.update([torch.full((2,), 4.0)], 1.0)  # the first epoch: almost all of it
    assert avg.average[0][0].item() == pytest.approx(4.0 * _share(1.0, 1.0, 10.0))
    assert avg.average[0][0].item() > 3.9  # the untrained start does not linger
    expected = avg.average[0][0].item()
    for seen in range(2, 6):  # a young run: a horizon of a fifth of its epochs
        avg.update([torch.full((2,), 5.0)], 1.0)
        expected += _share(1.0, seen, 10.0) * (5.0 - expected)
    assert avg.average[0][0].item() == pytest.approx(expected)
    # one horizon of progress in many small updates or in one: the same share, 1 - 1/e
    small, big = (WeightAverage([torch.zeros(1)], 2.0) for _ in range(2))
    small.seen = big.seen = 1e6  # past the warm-up
    for _ in range(100):
        small.update([torch.ones(1)], 0.02)
    big.update([torch.ones(1)], 2.0)
    assert small.average[0].item() == pytest.approx(1 - math.exp(-1), rel=1e-5)
    assert big.average[0].item() == pytest.approx(1 - math.exp(-1), rel=1e-5)
    assert small.share(0.0) == 0.0
    with pytest.raises(ValueError, match="horizon"):
        WeightAverage([torch.zeros(1)], 0.0)


def _cfg(**kw: object) -> TrainConfig:
    return TrainConfig(**{"model": "lstm", "epochs": 4, "lr": 3e-3, "batch_size": 20, **kw})


def test_trainer_returns_the_average_not_the_last_weights(
    toy_dataset: Callable[..., Dataset],
) -> None:
    ds = toy_dataset(classes=3, per_class=30)
    rows = np.arange(len(ds))
    last = train_model(ds, _cfg(), rows)
    averaged = train_model(ds, _cfg(average_epochs=1.0), rows)
    assert last.average is None and averaged.average is not None
    # same seed, same batches: averaging leaves the training itself unchanged ...
    assert [r["loss"] for r in last.history] == [r["loss"] for r in averaged.history]
    # ... and the model returned is the average, which is not the last weights
    kept = list(averaged.model.parameters())
    assert all(torch.equal(p, a) for p, a in zip(kept, averaged.average.average, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(kept, last.model.parameters(), strict=True))


def test_validation_and_the_kept_best_are_of_the_average(
    toy_dataset: Callable[..., Dataset],
) -> None:
    ds = toy_dataset(classes=3, per_class=30)
    trainer = train_model(ds, _cfg(average_epochs=1.0, val_fraction=0.2), np.arange(len(ds)))
    assert trainer.best is not None and trainer.val is not None
    best = min(trainer.history, key=lambda r: r["val_loss"])
    again = evaluate_loss(trainer.model, trainer.val.x, trainer.val.y, adapter=trainer.adapter,
                          loss_fn=trainer.loss_fn)  # fmt: skip
    assert again.loss == pytest.approx(best["val_loss"], rel=1e-5)


def _commit(rank: int, seq: int, epoch: float) -> CommitInfo:
    return CommitInfo(rank=rank, based_on_counter=0, sequence=seq, window_batches=1, epoch=epoch)


def test_master_averages_the_centre_over_the_workers_mean_epoch() -> None:
    c = Center(CenterState(vector=torch.zeros(3), world_size=2), get_rule("downpour"))
    for r in range(2):
        c.register(r, f"w{r}", block=False)
    assert torch.equal(c.model_copy(), c.state.vector)  # no averaging: the centre itself
    c.set_averaging(0.5)
    centres = []
    for seq, epoch in enumerate((1.0, 2.0), start=1):
        for rank in (0, 1):
            c.commit(_commit(rank, seq, epoch), torch.ones(3))
            centres.append(c.state.vector.clone())
    # mean epochs 0.5, 1, 1.5, 2: each fold moves the average by half an epoch's share
    expected = torch.zeros(3)
    for i, centre in enumerate(centres, start=1):
        expected += _share(0.5, 0.5 * i, 0.5) * (centre - expected)
    assert torch.allclose(c.model_copy(), expected)
    assert not torch.allclose(c.model_copy(), c.state.vector)
