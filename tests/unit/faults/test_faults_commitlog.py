"""The commit log (trafficdl_master.commitlog) and the log mode of recovery.Checkpointer."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from trafficdl_master import commitlog
from trafficdl_master.center import Center
from trafficdl_master.commitlog import CommitLog, read_records, read_segment, segments
from trafficdl_master.recovery import Checkpointer, restore
from trafficdl_master.snapshot_store import CheckpointStore
from trafficdl_master.state import CenterState, CommitInfo

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule

SPEC = RunSpec(run_id="r1", train=TrainConfig(model="lstm", epochs=3),
               dist=DistConfig(workers=4, algorithm="dynsgd"), dataset="/d", num_classes=2,
               label_names=["a", "b"], model_version="v1")  # fmt: skip


def records(path: Path, n: int, size: int = 1000) -> list[np.ndarray]:
    log = CommitLog(path, base=0)
    arrays = [np.full(size, i, dtype=np.float32) for i in range(1, n + 1)]
    tickets = [log.append({"counter": i}, a) for i, a in enumerate(arrays, start=1)]
    log.wait(tickets[-1])
    log.close()
    return arrays


def test_append_then_read_back_in_order(tmp_path: Path) -> None:
    arrays = records(tmp_path, 5)
    [(base, path)] = segments(tmp_path)
    back = list(read_segment(path))
    assert base == 0 and [r.counter for r in back] == [1, 2, 3, 4, 5]
    assert all(np.array_equal(r.payload, a) for r, a in zip(back, arrays, strict=True))
    assert path.stat().st_size % commitlog.BLOCK == 0  # block-aligned records (O_DIRECT)
    assert [r.counter for r in read_records(tmp_path, after=3)] == [4, 5]


def test_big_records_are_written_in_overlapped_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commitlog, "PIECE", 3 * commitlog.BLOCK)  # many pieces per record
    log = CommitLog(tmp_path, base=0)
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(n, dtype=np.float32) for n in (20_011, 0, 3, 9_000)]
    tickets = [log.append({"counter": i}, a) for i, a in enumerate(arrays, start=1)]
    log.wait(tickets[-1])
    log.close()
    back = list(read_records(tmp_path, after=0))
    assert [r.counter for r in back] == [1, 2, 3, 4]
    assert all(np.array_equal(r.payload, a) for r, a in zip(back, arrays, strict=True))


def test_one_fsync_covers_every_commit_that_arrived_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, in_sync = threading.Event(), threading.Event()
    real_sync = commitlog._Segment.sync

    def slow_sync(self: commitlog._Segment) -> None:
        in_sync.set()
        gate.wait(10)
        real_sync(self)

    monkeypatch.setattr(commitlog._Segment, "sync", slow_sync)
    log = CommitLog(tmp_path, base=0)
    first = log.append({"counter": 1}, np.ones(10, np.float32))
    threading.Thread(target=log.wait, args=(first,), daemon=True).start()  # the leader
    assert in_sync.wait(10)  # the leader is inside the first group's fsync
    later = [log.append({"counter": i}, np.ones(10, np.float32)) for i in range(2, 11)]
    done = threading.Event()
    threading.Thread(target=lambda: (log.wait(later[-1]), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # not acknowledged before its fsync
    gate.set()
    log.wait(first)
    assert done.wait(10)
    assert log.fsyncs == 2 and log.records == 10  # 10 commits, 2 fsyncs
    log.close()


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_a_torn_last_record_is_dropped(tmp_path: Path, damage: str) -> None:
    records(tmp_path, 3, size=5000)
    [(_, path)] = segments(tmp_path)
    data = bytearray(path.read_bytes())
    record = len(data) // 3
    if damage == "cut":
        data = data[: 2 * record + record // 2]
    else:
        data[2 * record + 4000] ^= 0xFF  # a payload byte: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert [r.counter for r in read_segment(path)] == [1, 2]


def commit_from(ck: Checkpointer, rank: int, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for s in range(1, count + 1):
        info = CommitInfo(rank=rank, based_on_counter=max(ck.center.state.update_counter - 2, 0),
                          sequence=s, batches_done=s, epoch=s / 100)  # fmt: skip
        ck.commit(info, torch.from_numpy(rng.standard_normal(300, dtype=np.float32)))


def live(directory: Path, log_bytes: int) -> Checkpointer:
    c = Center(CenterState(vector=torch.zeros(300), world_size=4), get_rule("dynsgd"))
    for r in range(4):
        c.register(r, "w", block=False)
    ck = Checkpointer(CheckpointStore(directory), SPEC, c, every=1, log_bytes=log_bytes)
    ck.start_log()
    return ck


def test_replay_rebuilds_exactly_the_live_state(tmp_path: Path) -> None:
    ck = live(tmp_path, log_bytes=20 * 4096)  # a snapshot (and a cut) every ~20 commits
    threads = [threading.Thread(target=commit_from, args=(ck, r, 40, r)) for r in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if ck._background is not None:
        ck._background.join()
    live_state = ck.center.state
    assert live_state.update_counter == 160
    assert len(ck.store.paths()) >= 3  # background snapshots ran
    assert segments(tmp_path)[0][0] > 0  # and the log was cut behind them
    ck.close()
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 160
    assert torch.equal(state.vector, live_state.vector)  # bit for bit, staleness and all
    for r in range(4):
        assert state.workers[r].last_sequence == 40 and state.workers[r].acked_batches == 40
    assert [h["counter"] for h in state.history] == list(range(1, 161))
    assert state.commits_total == 160


def test_a_corrupt_newest_snapshot_falls_back_and_replays_further(tmp_path: Path) -> None:
    ck = live(tmp_path, log_bytes=10 * 4096)
    commit_from(ck, 0, 35, seed=1)
    if ck._background is not None:
        ck._background.join()
    expected = ck.center.state.vector.clone()
    ck.close()
    newest = CheckpointStore(tmp_path).paths()[0]
    newest.write_bytes(newest.read_bytes()[:-10])
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 35 and torch.equal(state.vector, expected)


def test_a_failing_log_falls_back_to_a_full_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ck = live(tmp_path, log_bytes=1 << 30)
    commit_from(ck, 0, 2, seed=2)

    def broken(self: commitlog._Segment, buf: memoryview) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(commitlog._Segment, "write", broken)
    saves = len(CheckpointStore(tmp_path).paths())
    commit_from(ck, 1, 1, seed=3)  # acknowledged: covered by a snapshot instead
    assert len(CheckpointStore(tmp_path).paths()) == saves + 1
    monkeypatch.undo()
    commit_from(ck, 2, 1, seed=4)  # and a new log takes over
    expected = ck.center.state.vector.clone()
    ck.close()
    state = restore(CheckpointStore(tmp_path), SPEC)
    assert state.update_counter == 4 and torch.equal(state.vector, expected)
