"""Elastic scaling without processes: resume points, re-partitioning and integrated cost."""

from __future__ import annotations

import dataclasses
import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from trafficdl_master import elastic as master_elastic
from trafficdl_master import metrics
from trafficdl_master.center import Center
from trafficdl_master.elastic import RescaleError, adapt
from trafficdl_master.recovery import Checkpointer, restore
from trafficdl_master.snapshot_store import CheckpointStore
from trafficdl_master.state import CenterState, CommitInfo

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.cost import spans_cost, spans_node_hours
from trafficdl.dataset import partition
from trafficdl.distributed import rescale_math, rundir
from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule

LABELS = np.repeat(np.arange(3), 40)  # 120 rows, 3 classes
TRAIN_IDX = np.arange(100)  # the first 100 rows train
BS, EPOCHS = 10, 4


def spec(workers: int, algorithm: str = "aeasgd", **dist: object) -> RunSpec:
    return RunSpec(
        run_id="r",
        train=TrainConfig(model="lstm", epochs=EPOCHS, batch_size=BS, seed=3),
        dist=DistConfig(
            workers=workers,
            algorithm=algorithm,
            worker_price=1.0,
            master_price=3.0,
            elastic_lr=0.01,
            **dist,
        ),
        dataset="/d",
        num_classes=3,
        label_names=["a", "b", "c"],
    )


def per_epoch(world: int, rank: int) -> int:
    return math.ceil(len(partition(TRAIN_IDX, LABELS, world, rank, 3)) / BS)


# ------------------------------------------------------------ arithmetic
def test_resume_point_is_the_same_fractional_epoch_rounded_down() -> None:
    assert rescale_math.batches_per_epoch(101, 10) == 11
    assert rescale_math.batches_per_epoch(100, 10) == 10
    # Slowest rank: 7 of its 5-batch epochs = 1.4 epochs (exact, no float drift).
    e = rescale_math.acknowledged_epoch({0: 9, 1: 7, 2: 15}, {0: 5, 1: 5, 2: 4})
    assert e == Fraction(7, 5)
    assert rescale_math.resume_batches(e, 5, EPOCHS) == 7  # same grid: exactly where it was
    assert rescale_math.resume_batches(e, 7, EPOCHS) == 9  # 9.8 -> 9: nothing skipped
    assert rescale_math.resume_batches(e, 10, EPOCHS) == 14
    assert rescale_math.resume_batches(Fraction(0), 7, EPOCHS) == 0
    # Never at or past the end: every rank keeps a batch for its final commit.
    assert rescale_math.resume_batches(Fraction(EPOCHS), 7, EPOCHS) == EPOCHS * 7 - 1
    assert rescale_math.acknowledged_epoch({}, {}) == 0


def test_cost_integrates_the_world_size_over_time() -> None:
    rescales = [
        {"at_seconds": 3600.0, "from": 5, "to": 3},  # any order
        {"at_seconds": 1800.0, "from": 2, "to": 5},
    ]
    spans = rescale_math.world_spans(rescales, 3, 5400.0)
    assert spans == [(2, 1800.0), (5, 1800.0), (3, 1800.0)]
    # (ρ·2 + ρ_M)·½ h + (ρ·5 + ρ_M)·½ h + (ρ·3 + ρ_M)·½ h with ρ = 1, ρ_M = 3
    assert spans_cost(spans, 1.0, 3.0) == pytest.approx((5 + 8 + 6) / 2)
    assert spans_node_hours(spans) == pytest.approx((3 + 6 + 4) / 2)
    # Before a later rescale's time (never past T): the spans stop at T.
    assert rescale_math.world_spans(rescales, 3, 900.0) == [(2, 900.0), (5, 0.0), (3, 0.0)]
    s = dataclasses.replace(spec(3), rescales=tuple(rescales))
    assert s.cost_of(5400.0) == pytest.approx(9.5)  # the final N for all of T: 9.0
    assert s.node_hours_of(5400.0) == pytest.approx(6.5)  # (3 + 1)·1.5 h: 6.0
    assert s.cost_of(3600.0) == pytest.approx((5 + 8) / 2)
    assert spec(3).cost_of(3600.0) == pytest.approx(6.0)  # no rescale: (ρN + ρ_M)·T


def test_run_json_lists_rescales_and_integrated_cost() -> None:
    s = dataclasses.replace(spec(3), rescales=({"at_seconds": 1800.0, "from": 2, "to": 3},))
    figures = {
        "accuracy": 1.0,
        "macro_recall": 1.0,
        "macro_precision": 1.0,
        "macro_f1": 1.0,
        "confusion": [[1]],
        "labels": ["a"],
    }
    run = rundir.summary(
        s, training_seconds=3600.0, figures=figures, commits=[], counters={}, split={}
    )
    assert run["rescales"] == [{"at_seconds": 1800.0, "from": 2, "to": 3}]
    assert run["cost"] == pytest.approx((5 + 6) / 2) and run["node_hours"] == pytest.approx(3.5)
    assert run["workers"] == 3


# ----------------------------------------------------------- the master
def restored(world: int, acked: dict[int, int], finished: tuple[int, ...] = ()) -> CenterState:
    st = CenterState(
        vector=torch.arange(6.0),
        world_size=world,
        update_counter=41,
        elapsed_before=12.5,
        commits_total=41,
        restarts=1,
        history=[{"counter": i + 1} for i in range(41)],
    )
    for r, a in acked.items():
        w = st.workers[r]
        w.acked_batches = w.batches_done = w.last_sequence = a
        w.registrations, w.commits = 2, 5
        w.finished = r in finished
    return st


@pytest.mark.parametrize(("old", "new"), [(2, 3), (3, 2)])
def test_rescale_keeps_the_centre_and_resumes_every_rank_at_the_slowest_epoch(
    old: int, new: int, caplog: pytest.LogCaptureFixture
) -> None:
    acked = {r: (r + 1) * per_epoch(old, r) // 2 + per_epoch(old, r) for r in range(old)}
    slowest = min(Fraction(acked[r], per_epoch(old, r)) for r in range(old))
    st = restored(old, acked)
    before = metrics.RESCALES._value.get()
    with caplog.at_level(logging.WARNING, logger="trafficdl.master"):
        s, record = adapt(st, spec(new), TRAIN_IDX, LABELS)
    assert record is not None and st.world_size == new and sorted(st.workers) == list(range(new))
    assert torch.equal(st.vector, torch.arange(6.0))  # centre, counters, history, T kept
    assert (st.update_counter, st.commits_total, len(st.history)) == (41, 41, 41)
    assert st.elapsed_before == 12.5 and st.restarts == 1
    for r, w in st.workers.items():
        at = w.acked_batches
        assert at == math.floor(slowest * per_epoch(new, r)) == record["resume_batches"][r]
        assert w.last_sequence == w.batches_done == at  # its first commit is not a "duplicate"
        assert not (w.connected or w.finished or w.lost) and w.registrations == 0
    assert record == {
        "at_seconds": 12.5,
        "from": old,
        "to": new,
        "update_counter": 41,
        "epoch": float(slowest),
        "resume_batches": record["resume_batches"],
        "rejoins": old,
    }
    assert st.rescales == [record] and s.rescales == (record,) and s.dist.workers == new
    assert metrics.RESCALES._value.get() == before + 1
    assert f"rescaled run r from {old} to {new} workers at update 41" in caplog.text
    # The record survives a checkpoint round trip (a later restart keeps it).
    again = CenterState.restore(st.snapshot())
    assert again.rescales == [record] and again.world_size == new
    s2, record2 = adapt(again, spec(new), TRAIN_IDX, LABELS)  # same N: nothing new
    assert record2 is None and s2.rescales == (record,)


def test_rescaled_centre_runs_to_the_end_with_the_new_world() -> None:
    st = restored(2, {0: 3, 1: 4})
    _, record = adapt(st, spec(3), TRAIN_IDX, LABELS)
    center = Center(st, get_rule("aeasgd"))
    center.resume()
    saved = []
    master_elastic.announce(center, lambda: saved.append(1), record)
    assert saved == [1] and "rescaled from 2 to 3 workers at update 41" in center.message
    assert center.progress(EPOCHS).epoch <= record["epoch"]  # never ahead of the slowest
    for r in range(3):
        assert center.register(r, f"w{r}", block=False) == r

    for r in range(3):
        total = EPOCHS * per_epoch(3, r)
        res = center.commit(
            CommitInfo(
                rank=r,
                based_on_counter=41,
                sequence=total,
                batches_done=total,
                epoch=EPOCHS,
                final=True,
            ),
            torch.ones(6),
        )
        assert res.applied and res.update_counter == 42 + r
    assert center.done.is_set() and center.state.update_counter == 44


def test_synchronous_run_refuses_a_world_size_change() -> None:
    st = restored(2, {0: 3, 1: 4})
    with pytest.raises(
        RescaleError,
        match=r"checkpointed with 2 workers .* started with 3: "
        r"the synchronous easgd cannot change its world size",
    ):
        adapt(st, spec(3, "easgd"), TRAIN_IDX, LABELS)
    assert st.world_size == 2  # untouched
    s, record = adapt(st, spec(2, "easgd"), TRAIN_IDX, LABELS)  # same N: a plain restart
    assert record is None and s.rescales == ()


def test_a_finished_run_keeps_its_world_size() -> None:
    st = restored(2, {0: EPOCHS * per_epoch(2, 0), 1: EPOCHS * per_epoch(2, 1)}, finished=(0, 1))
    s, record = adapt(st, spec(3), TRAIN_IDX, LABELS)
    assert record is None and st.world_size == 2 and s.dist.workers == 2


def test_the_rescale_is_durable_in_a_real_checkpoint(tmp_path: Path) -> None:
    """Saved at once after the rescale: a crash before any commit resumes the new world,
    and a later plain restart keeps the rescale record (for run.json and the cost)."""
    s_old = dataclasses.replace(spec(2), model_version="v1")
    st = restored(2, {0: 3, 1: 4})
    store = CheckpointStore(tmp_path)
    Checkpointer(store, s_old, Center(st, get_rule("aeasgd")), every=1).save()
    st = restore(CheckpointStore(tmp_path), s_old)
    s_new = dataclasses.replace(spec(3), model_version="v1")
    s_new, record = adapt(st, s_new, TRAIN_IDX, LABELS)
    center = Center(st, get_rule("aeasgd"))
    center.resume()
    master_elastic.announce(center, Checkpointer(store, s_new, center, every=1).save, record)
    again = restore(CheckpointStore(tmp_path), s_new)
    assert again.world_size == 3 and again.restarts == 3
    assert again.rescales == [record] and again.update_counter == 41
    assert again.workers[2].acked_batches == record["resume_batches"][2]
    s3, none = adapt(again, dataclasses.replace(spec(3), model_version="v1"), TRAIN_IDX, LABELS)
    assert none is None and s3.rescales == (record,)
