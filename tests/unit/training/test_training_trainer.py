"""The centralized Trainer: determinism, WTPE history, early stopping, checkpoints, resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.training import CheckpointError, load_checkpoint, predict_logits, save_checkpoint
from trafficdl.training.run import train_model


def _cfg(**kw: object) -> TrainConfig:
    return TrainConfig(**{"model": "lstm", "epochs": 3, "lr": 3e-3, "batch_size": 20, **kw})


def test_same_seed_same_model_on_cpu(toy_dataset: Callable[..., Dataset]) -> None:
    ds = toy_dataset(classes=3, per_class=20)
    rows = np.arange(len(ds))
    a = train_model(ds, _cfg(model="cnn1d", epochs=1, batch_size=30, seed=5), rows)
    b = train_model(ds, _cfg(model="cnn1d", epochs=1, batch_size=30, seed=5), rows)
    c = train_model(ds, _cfg(model="cnn1d", epochs=1, batch_size=30, seed=6), rows)
    sa, sb, sc = (t.model.state_dict() for t in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.history[0]["loss"] == b.history[0]["loss"]


def test_history_records_wtpe_and_validation(toy_dataset: Callable[..., Dataset]) -> None:
    ds = toy_dataset(classes=3, per_class=30)
    trainer = train_model(ds, _cfg(val_fraction=0.2), np.arange(len(ds)))
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]
    for r in trainer.history:
        assert r["seconds"] > 0 and r["samples_per_s"] > 0
        assert 0.0 <= r["val_accuracy"] <= 1.0 and r["val_loss"] > 0
    assert trainer.best_epoch in (1, 2, 3)
    assert trainer.stop_reason == "epoch budget of 3 reached" and not trainer.stopped_early


def test_cli_defaults_stop_on_a_plateau_within_a_budget() -> None:
    from trafficdl.commands.train import _T
    from trafficdl.config import CONVERGING

    assert (_T.epochs, _T.val_fraction, _T.patience, _T.average_epochs) == (150, 0.1, 20, 2.5)
    assert CONVERGING == {"epochs": 150, "val_fraction": 0.1, "patience": 20, "average_epochs": 2.5}
    # a fixed count of the last weights
    assert (TrainConfig().val_fraction, TrainConfig().patience) == (0.0, 0)
    assert TrainConfig().average_epochs == 0.0


def test_early_stopping_keeps_the_best_weights(toy_dataset: Callable[..., Dataset]) -> None:
    # Random labels: the model can only memorise, so validation loss soon rises.
    ds = toy_dataset(classes=2, per_class=40, random_labels=True)
    cfg = _cfg(epochs=40, lr=3e-3, val_fraction=0.3, patience=3)
    trainer = train_model(ds, cfg, np.arange(len(ds)))
    assert trainer.stopped_early and len(trainer.history) < 40
    best = min(trainer.history, key=lambda r: r["val_loss"])
    assert trainer.best_epoch == best["epoch"]
    assert len(trainer.history) - trainer.best_epoch == 3
    assert trainer.stop_reason.startswith("validation loss did not improve for 3 epochs")
    assert f"at epoch {trainer.best_epoch})" in trainer.stop_reason
    assert trainer.val is not None
    from trafficdl.training import evaluate_loss

    now = evaluate_loss(trainer.model, trainer.val.x, trainer.val.y, adapter=trainer.adapter)
    assert now.loss == pytest.approx(best["val_loss"], rel=1e-4)


def test_checkpoint_round_trip_rebuilds_the_same_classifier(
    toy_dataset: Callable[..., Dataset], tmp_path: Path
) -> None:
    ds = toy_dataset(classes=3, per_class=20)
    path = tmp_path / "ck.pt"
    trainer = train_model(ds, _cfg(), np.arange(len(ds)), checkpoint_path=path)
    ckpt = load_checkpoint(path)
    assert ckpt.model_name == "lstm" and ckpt.label_names == ds.label_names
    assert ckpt.epoch == 3 and len(ckpt.history) == 3
    assert ckpt.train_config == trainer.cfg
    assert ckpt.extract_config == ds.meta["extract_config"]
    assert ckpt.adapter == trainer.adapter and ckpt.optimizer is not None
    model = ckpt.build_model()
    x = trainer.train_split.x
    torch.testing.assert_close(
        predict_logits(model, x, adapter=ckpt.adapter),
        predict_logits(trainer.model, x, adapter=trainer.adapter),
    )


def test_resume_continues_exactly_where_it_stopped(
    toy_dataset: Callable[..., Dataset], tmp_path: Path
) -> None:
    ds = toy_dataset(classes=3, per_class=20)
    rows = np.arange(len(ds))
    straight = train_model(ds, _cfg(epochs=4), rows)
    path = tmp_path / "ck.pt"
    train_model(ds, _cfg(epochs=2), rows, checkpoint_path=path)
    resumed = train_model(ds, _cfg(epochs=4), rows, checkpoint_path=path, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.history] == pytest.approx(
        [r["loss"] for r in straight.history], rel=1e-5
    )
    s1, s2 = straight.model.state_dict(), resumed.model.state_dict()
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-5, atol=1e-6)


def test_bad_checkpoints_are_clear_user_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a trafficdl checkpoint"):
        load_checkpoint(other)


def test_checkpoint_refuses_weights_of_another_architecture(tmp_path: Path) -> None:
    from trafficdl.models import build_model, input_adapter

    model = build_model("lstm", 2)
    path = save_checkpoint(
        tmp_path / "c.pt",
        model,
        model_name="lstm",
        label_names=["a", "b"],
        adapter=input_adapter("lstm"),
    )
    ckpt = load_checkpoint(path)
    ckpt.model_config = {"units": 50}
    with pytest.raises(CheckpointError, match="do not fit"):
        ckpt.build_model()


def test_rich_progress_prints_one_line_per_epoch(toy_dataset: Callable[..., Dataset]) -> None:
    import io

    from rich.console import Console

    from trafficdl.training.progress_bar import RichReporter

    ds = toy_dataset(classes=2, per_class=10)
    buf = io.StringIO()
    reporter = RichReporter(Console(file=buf, width=200))
    train_model(ds, _cfg(val_fraction=0.3), np.arange(len(ds)), reporter=reporter)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3
    assert all("loss" in ln and "val_acc" in ln and "samples/s" in ln for ln in lines)


def test_init_offset_changes_only_the_initialization(
    toy_dataset: Callable[..., Dataset], tmp_path: Path
) -> None:
    # bench_floor's second reference: same rows and batch order, another initial model.
    from trafficdl.training.run import run_centralized

    ds = toy_dataset()
    cfg = TrainConfig(model="lstm", epochs=1, seed=3)
    dirs = {"first": 0, "again": 0, "other": 1000}
    runs = {name: run_centralized(ds.path, cfg, tmp_path / name, init_offset=off)["run"]
            for name, off in dirs.items()}  # fmt: skip
    assert runs["first"]["split"] == runs["other"]["split"] == runs["again"]["split"]
    weights = {name: load_checkpoint(tmp_path / name / "checkpoint.pt").state_dict
               for name in dirs}  # fmt: skip
    key = next(iter(weights["first"]))
    assert torch.equal(weights["first"][key], weights["again"][key])  # offset 0: as before
    assert not torch.equal(weights["first"][key], weights["other"][key])
