"""Master checkpoints on a schedule and resumes from them (trafficdl_master.recovery)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from trafficdl_master.center import Center
from trafficdl_master.recovery import HISTORY_FILE, Checkpointer, RecoveryError, restore
from trafficdl_master.snapshot_store import CheckpointError, CheckpointStore
from trafficdl_master.state import CenterState, CommitInfo

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule

SPEC = RunSpec(run_id="r1", train=TrainConfig(model="lstm", epochs=3),
               dist=DistConfig(workers=2), dataset="/d", num_classes=2,
               label_names=["a", "b"], model_version="v1")  # fmt: skip


def live(state: CenterState | None = None) -> Center:
    c = Center(state or CenterState(vector=torch.zeros(4), world_size=2), get_rule("downpour"))
    for r in range(2):
        c.register(r, "w", block=False)
    return c


def commit(c: Center, rank: int, batches: int, epoch: float = 0.1) -> int:
    ci = CommitInfo(rank=rank, based_on_counter=c.state.update_counter, sequence=batches,
                    batches_done=batches, epoch=epoch)  # fmt: skip
    return c.commit(ci, torch.ones(4)).update_counter


def test_checkpoint_before_every_ack_then_restore_everything(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    c = live()
    ck = Checkpointer(store, SPEC, c, every=1)
    for i, rank in enumerate((0, 1, 0), start=1):
        ck.on_committed(commit(c, rank, 2 * i))
        assert store.latest_good().update_counter == i  # saved before the reply
    ck.on_committed(c.state.update_counter)  # already covered: no new file
    assert len(store.paths()) == 3
    saved_t = store.latest_good().meta["training_seconds"]
    assert 0 < saved_t <= c.training_seconds()
    time.sleep(0.2)  # the outage
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 3 and state.restarts == 1
    assert torch.equal(state.vector, torch.full((4,), 3.0))
    assert state.workers[0].acked_batches == 6 and state.workers[0].last_sequence == 6
    assert state.workers[1].acked_batches == 4 and not state.workers[1].connected
    assert [h["counter"] for h in state.history] == [1, 2, 3]
    assert state.elapsed_before >= saved_t + 0.2  # T so far + the outage
    assert len((tmp_path / HISTORY_FILE).read_text().splitlines()) == 3


def test_every_k_updates_and_epoch_boundaries(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    c = live()
    ck = Checkpointer(store, SPEC, c, every=3)
    ck.on_committed(commit(c, 0, 1))
    ck.on_committed(commit(c, 1, 1))
    assert store.paths() == []
    ck.on_committed(commit(c, 0, 2))
    assert store.latest_good().update_counter == 3
    epochs = Checkpointer(CheckpointStore(tmp_path / "e"), SPEC, live(), every=0)
    e = epochs.center
    epochs.on_committed(commit(e, 0, 5, epoch=1.0))
    assert epochs.store.paths() == []  # rank 1 is still in epoch 0
    epochs.on_committed(commit(e, 1, 5, epoch=1.0))
    assert epochs.store.latest_good().update_counter == 2  # the slowest rank reached epoch 1


def test_torn_newest_checkpoint_falls_back_and_cuts_the_history_log(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    c = live()
    ck = Checkpointer(store, SPEC, c, every=1)
    for i in range(1, 4):
        ck.on_committed(commit(c, i % 2, i))
    newest = store.paths()[0]
    newest.write_bytes(newest.read_bytes()[:-10])  # torn
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 2 and len(state.history) == 2
    log = (tmp_path / HISTORY_FILE).read_text().splitlines()
    assert [json.loads(x)["counter"] for x in log] == [1, 2]  # the orphan record is gone
    # The restored master appends after the cut: the log stays consistent.
    c2 = live(state)
    ck2 = Checkpointer(CheckpointStore(tmp_path), SPEC, c2, every=1)
    ck2.on_committed(commit(c2, 1, 9))
    log = (tmp_path / HISTORY_FILE).read_text().splitlines()
    assert [json.loads(x)["counter"] for x in log] == [1, 2, 3]


def test_checkpoints_of_another_run_are_refused(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    Checkpointer(store, SPEC, live(), every=1).save()
    other = RunSpec(**{**SPEC.__dict__, "run_id": "r2"})
    with pytest.raises(RecoveryError, match="belongs to run 'r1'"):
        restore(store, other)
    assert restore(CheckpointStore(tmp_path / "empty"), SPEC) is None


def test_a_failed_save_loses_nothing_and_the_next_one_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    c = live()
    ck = Checkpointer(store, SPEC, c, every=1)
    ck.on_committed(commit(c, 0, 1))
    real_save = store.save

    def disk_full(*args: object, **kwargs: object) -> Path:
        raise CheckpointError("cannot write checkpoint: No space left on device")

    monkeypatch.setattr(store, "save", disk_full)
    with pytest.raises(CheckpointError):  # the servicer answers UNAVAILABLE: no ack
        ck.on_committed(commit(c, 1, 1))
    monkeypatch.setattr(store, "save", real_save)
    ck.on_committed(c.state.update_counter)  # the worker's retry, deduplicated, saves now
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 2
    assert [h["counter"] for h in state.history] == [1, 2]  # no record twice
    with (tmp_path / HISTORY_FILE).open("ab") as f:
        f.write(b'{"torn": ')  # a dead master's torn append
    assert len(restore(CheckpointStore(tmp_path), SPEC).history) == 2
