"""The reusable training pieces: optimizer/device choice, batches, class weights, steps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.errors import TrafficdlError
from trafficdl.models import build_model, input_adapter
from trafficdl.training import (
    TensorSplit,
    batches,
    class_weights,
    fit_adapter,
    holdout_indices,
    load_split,
    make_optimizer,
    select_device,
    train_steps,
)


def test_make_optimizer_by_name_case_insensitive() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = make_optimizer(TrainConfig(optimizer="SGD", lr=0.3, weight_decay=0.1), params)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["weight_decay"] == 0.1
    assert isinstance(make_optimizer(TrainConfig(), params), torch.optim.Adam)
    with pytest.raises(TrafficdlError, match="unknown optimizer"):
        make_optimizer(TrainConfig(optimizer="nesterov"), params)


def test_select_device() -> None:
    assert select_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(TrafficdlError, match="no CUDA"):
            select_device("cuda")


def test_class_weights_inverse_frequency() -> None:
    y = torch.tensor([0] * 6 + [1] * 2 + [3] * 4)
    w = class_weights(y, 4)
    assert w.tolist() == pytest.approx([12 / 18, 12 / 6, 0.0, 12 / 12])


def test_batches_cover_rows_once_deterministic_per_epoch() -> None:
    split = TensorSplit(torch.arange(23)[:, None], torch.arange(23), np.arange(23))
    e1 = [y.tolist() for _, y in batches(split, 5, shuffle=True, seed=3, epoch=1)]
    assert [len(b) for b in e1] == [5, 5, 5, 5, 3]
    assert sorted(y for b in e1 for y in b) == list(range(23))
    again = [y.tolist() for _, y in batches(split, 5, shuffle=True, seed=3, epoch=1)]
    assert again == e1
    e2 = [y.tolist() for _, y in batches(split, 5, shuffle=True, seed=3, epoch=2)]
    assert e2 != e1
    plain = [y.tolist() for _, y in batches(split, 10, shuffle=False)]
    assert plain == [list(range(10)), list(range(10, 20)), [20, 21, 22]]


def test_load_split_reads_rows_and_fits_stats_on_training_rows_only(
    toy_dataset: Callable[..., Dataset],
) -> None:
    ds = toy_dataset(classes=3, per_class=20)
    train, val, test = holdout_indices(ds.labels, 0.25, 0.2, seed=0)
    assert len(set(train) | set(val) | set(test)) == len(ds)
    assert not set(train) & set(val) and not set(train) & set(test)
    adapter = fit_adapter(ds, train, input_adapter("lstm"))
    other = fit_adapter(ds, test, input_adapter("lstm"))
    assert adapter.mean != other.mean
    split = load_split(ds, test, adapter)
    assert split.x.shape == (len(test), 20, 4)
    assert split.y.tolist() == ds.labels[np.sort(test)].tolist()


def test_train_steps_learns_and_respects_max_steps(toy_dataset: Callable[..., Dataset]) -> None:
    ds = toy_dataset(classes=3, per_class=30)
    adapter = fit_adapter(ds, np.arange(len(ds)), input_adapter("lstm"))
    split = load_split(ds, np.arange(len(ds)), adapter)
    torch.manual_seed(0)
    model = build_model("lstm", 3)
    opt = make_optimizer(TrainConfig(lr=3e-3), model.parameters())
    first = train_steps(model, opt, batches(split, 10, shuffle=True), adapter=adapter, max_steps=4)
    assert first.batches == 4 and first.samples == 40
    for epoch in range(15):
        last = train_steps(
            model, opt, batches(split, 10, shuffle=True, epoch=epoch), adapter=adapter
        )
    assert last.samples == len(ds)
    assert last.loss < first.loss * 0.5
    assert last.accuracy > 0.8


def test_class_weighting_reaches_the_loss(toy_dataset: Callable[..., Dataset]) -> None:
    from trafficdl.training.run import train_model

    ds = toy_dataset(classes=3, per_class=10)
    rows = np.concatenate([np.arange(10), np.arange(10, 14), np.arange(20, 30)])  # class 1 rare
    plain = train_model(ds, TrainConfig(model="lstm", epochs=1), rows)
    weighted = train_model(ds, TrainConfig(model="lstm", epochs=1, class_weighting=True), rows)
    assert plain.loss_fn.weight is None
    w = weighted.loss_fn.weight.tolist()
    assert w[1] > w[0] == pytest.approx(w[2])
