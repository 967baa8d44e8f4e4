"""The master's state and rule: folds, staleness, barrier, end rule, snapshots."""

from __future__ import annotations

import threading

import pytest
import torch
from trafficdl_master.center import Center, CenterError
from trafficdl_master.state import CenterState, CommitInfo, exchange_waits

from trafficdl.optim import get_rule
from trafficdl.rpc.framing import FrameCache, Frames, chunk_payload


def center(world: int, algorithm: str = "aeasgd", n: int = 3, **kw: float) -> Center:
    c = Center(CenterState(vector=torch.zeros(n), world_size=world), get_rule(algorithm), **kw)
    for r in range(world):
        c.register(r, f"w{r}", block=False)
    return c


def info(rank: int, based: int, seq: int, final: bool = False, window: int = 1) -> CommitInfo:
    return CommitInfo(
        rank=rank,
        based_on_counter=based,
        sequence=seq,
        final=final,
        window_batches=window,
        epoch=1.0,
    )


def test_register_waits_for_the_whole_world_then_starts_the_clock() -> None:
    now = [100.0]
    c = Center(
        CenterState(vector=torch.zeros(2), world_size=2), get_rule("aeasgd"), clock=lambda: now[0]
    )
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(c.register(-1, "a")))
    t.start()
    t.join(0.3)
    assert t.is_alive() and c.phase == "waiting" and c.training_seconds() == 0.0
    assert c.register(-1, "b") == 1
    t.join(2)
    assert got == [0] and c.phase == "running"
    now[0] = 103.5
    assert c.training_seconds() == pytest.approx(3.5)
    with pytest.raises(CenterError, match="outside world"):
        c.register(5, "x")


def test_async_folds_and_staleness() -> None:
    c = center(2, "dynsgd")
    r1 = c.commit(info(0, 0, 1), torch.tensor([2.0, 2.0, 2.0]))
    assert (r1.update_counter, r1.staleness) == (1, 0)
    r2 = c.commit(info(1, 0, 1), torch.tensor([2.0, 4.0, 6.0]))  # based on 0, counter is 1
    assert (r2.update_counter, r2.staleness) == (2, 1)
    assert torch.equal(c.state.vector, torch.tensor([3.0, 4.0, 5.0]))  # second one halved


def test_retried_commit_is_acknowledged_not_applied_twice() -> None:
    c = center(1)
    c.commit(info(0, 0, 1), torch.ones(3))
    again = c.commit(info(0, 0, 1), torch.ones(3))
    assert not again.applied and c.state.update_counter == 1
    assert torch.equal(c.state.vector, torch.ones(3))


def test_run_ends_only_when_every_rank_made_its_final_commit() -> None:
    c = center(2)
    c.commit(info(0, 0, 1, final=True), torch.ones(3))
    assert not c.done.is_set() and c.phase == "running"
    with pytest.raises(CenterError, match="final commit"):
        c.commit(info(0, 1, 2), torch.ones(3))
    res = c.commit(info(1, 1, 1, final=True), torch.ones(3))
    assert res.run_done and c.done.is_set() and c.phase == "evaluating"
    p = c.progress(epochs=1)
    assert p.finished == 2 and p.ratio == 1.0 and p.commits_total == 2


def test_wrong_size_commit_is_refused_and_counted() -> None:
    c = center(1)
    with pytest.raises(CenterError, match="values"):
        c.commit(info(0, 0, 1), torch.ones(4))
    assert c.state.commits_rejected == 1 and c.state.update_counter == 0


def _commit_in_thread(c: Center, ci: CommitInfo, v: torch.Tensor, out: dict) -> threading.Thread:
    th = threading.Thread(target=lambda: out.__setitem__(ci.rank, c.commit(ci, v)))
    th.start()
    return th


def test_easgd_barrier_folds_all_commits_at_once() -> None:
    c = center(3, "easgd", n=2)
    out: dict = {}
    a = _commit_in_thread(c, info(0, 0, 1), torch.tensor([1.0, 0.0]), out)
    b = _commit_in_thread(c, info(1, 0, 1), torch.tensor([0.0, 1.0]), out)
    a.join(0.3)
    assert a.is_alive() and b.is_alive()  # waiting for rank 2
    assert c.state.update_counter == 0 and torch.equal(c.state.vector, torch.zeros(2))
    res = c.commit(info(2, 0, 1), torch.tensor([1.0, 1.0]))
    a.join(2)
    b.join(2)
    assert torch.equal(c.state.vector, torch.tensor([2.0, 2.0]))
    assert c.state.update_counter == 1  # one round, one update
    assert res.update_counter == out[0].update_counter == out[1].update_counter == 1


def test_easgd_round_excludes_finished_ranks() -> None:
    c = center(2, "easgd", n=1)
    out: dict = {}
    a = _commit_in_thread(c, info(0, 0, 1, final=True), torch.tensor([1.0]), out)
    c.commit(info(1, 0, 1), torch.tensor([1.0]))
    a.join(2)
    # rank 0 is done: rank 1's next commit forms a round on its own and does not block
    res = c.commit(info(1, 1, 2, final=True), torch.tensor([5.0]))
    assert res.run_done and torch.equal(c.state.vector, torch.tensor([7.0]))


def test_easgd_barrier_timeout_folds_what_arrived() -> None:
    c = center(2, "easgd", n=1, sync_timeout=0.2)
    res = c.commit(info(0, 0, 1), torch.tensor([1.0]))
    assert res.update_counter == 1 and "missing worker" in c.message


def test_leaving_without_final_commit_counts_lost_and_releases_the_barrier() -> None:
    c = center(2, "easgd", n=1)
    out: dict = {}
    a = _commit_in_thread(c, info(0, 0, 1), torch.tensor([1.0]), out)
    a.join(0.2)
    assert a.is_alive()
    c.leave(1, "killed")
    a.join(2)
    assert out[0].update_counter == 1 and c.progress(1).lost == 1


def test_snapshot_restore_round_trip() -> None:
    c = center(2)
    c.commit(info(0, 0, 1), torch.ones(3))
    snap = c.state.snapshot()
    c.commit(info(1, 1, 1), torch.ones(3))  # after the snapshot: not in it
    restored = CenterState.restore(snap)
    assert restored.update_counter == 1 and torch.equal(restored.vector, torch.ones(3))
    assert restored.workers[0].last_sequence == 1 and not restored.workers[0].connected
    assert len(restored.history) == 1


def test_pull_chunks_are_cut_once_per_counter_and_never_torn() -> None:
    c = center(1, n=1000)
    cache = FrameCache()  # the servicer's: cut under the centre's lock

    def cut(counter: int, vector: torch.Tensor, dtype: str = "float32") -> Frames:
        return cache.frames(counter, vector, dtype=dtype, chunk_bytes=1024, model_version="v1")

    first = c.read(cut)
    assert c.read(cut) is first  # shared until the next fold
    chunks = [chunk_payload(m) for m in first.messages]
    assert [len(p) for p in chunks] == [1024, 1024, 1024, 928]
    assert first.info.num_bytes == 4000 and first.info.model_version == "v1"
    c.commit(info(0, 0, 1), torch.ones(1000))
    second = c.read(cut)
    assert second.version == 1 and second is not first
    assert set(b"".join(chunks)) == {0}  # the earlier pull kept the old centre
    half = c.read(lambda counter, vector: cut(counter, vector, "bfloat16"))
    assert half.info.num_bytes == 2000 and c.read(cut) is not second  # cut per wire dtype


def test_snapshot_carries_the_clock_forward() -> None:
    now = [10.0]
    c = Center(
        CenterState(vector=torch.zeros(1), world_size=1), get_rule("aeasgd"), clock=lambda: now[0]
    )
    c.register(0, "w", block=False)
    now[0] = 15.0
    snap = c.snapshot()
    assert snap["elapsed_before"] == 5.0
    resumed = Center(CenterState.restore(snap), get_rule("aeasgd"), clock=lambda: now[0])
    assert resumed.training_seconds() == 5.0 and resumed.phase == "waiting"
    resumed.register(0, "w", block=False)
    now[0] = 17.0
    assert resumed.training_seconds() == 7.0


def test_workers_clocks_give_the_blocked_fraction_of_run_json() -> None:
    c = center(2)
    v = torch.zeros(3)
    clocks = [(0, 1, 2.0, 0.5, 1), (1, 1, 4.0, 0.4, 0), (0, 2, 3.0, 0.6, 3),
              (0, 1, 1.0, 0.1, 0)]  # fmt: skip  # the last: rank 0's retried first commit
    for rank, seq, elapsed, blocked, lag in clocks:
        c.commit(CommitInfo(rank=rank, based_on_counter=0, sequence=seq, elapsed_seconds=elapsed,
                            blocked_seconds=blocked, lag_batches=lag), v)  # fmt: skip
    w0, w1 = c.state.workers[0], c.state.workers[1]
    # cumulative on the worker: the latest figures win, a late retry never lowers them
    assert (w0.elapsed_seconds, w0.blocked_seconds, w0.lag_batches) == (3.0, 0.6, 3)
    waits = exchange_waits(c.state.workers, overlap=True, commits=c.state.commits_total)
    assert waits["blocked_fraction"] == pytest.approx((0.6 + 0.4) / (3.0 + 4.0), abs=1e-4)
    assert waits["blocked_fraction_per_rank"] == [0.2, 0.1]
    assert waits["lag_batches_mean"] == pytest.approx(3 / 3, abs=1e-3)  # 3 commits folded
    assert waits["overlap"] is True and w1.lag_batches == 0
    restored = CenterState.restore(c.state.snapshot())  # checkpoints keep the clocks
    assert restored.workers[0].blocked_seconds == 0.6
