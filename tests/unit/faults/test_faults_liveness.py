"""Lost and returning workers on the master's centre (Center + liveness), with a fake clock."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from trafficdl_master import metrics
from trafficdl_master.center import Center, NotRegistered
from trafficdl_master.liveness import LivenessMonitor, report
from trafficdl_master.state import CenterState, CommitInfo

from trafficdl.optim import get_rule


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def center(world: int = 2, algorithm: str = "aeasgd", **kw: float) -> tuple[Center, Clock, list]:
    clock = Clock()
    c = Center(CenterState(vector=torch.zeros(2), world_size=world), get_rule(algorithm),
               clock=clock, **kw)  # fmt: skip
    events: list[tuple[str, int, str]] = []
    c.on_event = lambda *e: events.append(e)
    for r in range(world):
        c.register(r, f"w{r}", block=False)
    return c, clock, events


def info(rank: int, batches: int, based: int = 0) -> CommitInfo:
    return CommitInfo(rank=rank, based_on_counter=based, sequence=batches, batches_done=batches,
                      epoch=batches / 10)  # fmt: skip


def test_silent_rank_is_marked_lost_refused_then_rejoins_where_it_left() -> None:
    c, clock, events = center()
    c.commit(info(1, 8), torch.ones(2))
    c.heartbeat(1, 1.2, 12)  # progress beyond the last acknowledged commit
    clock.now += 3.0
    c.heartbeat(0, 0.5, 5)  # rank 0 is alive, rank 1 silent for 3 s
    assert c.mark_lost(2.0) == [1]
    assert c.mark_lost(2.0) == []  # once
    p = c.progress(1)
    assert p.lost == 1 and p.connected == 1 and "rank 1 lost" in p.message
    assert events == [("lost", 1, "rank 1 lost: no heartbeat for 2 s")]
    with pytest.raises(NotRegistered, match="register again"):
        c.commit(info(1, 10), torch.ones(2))
    with pytest.raises(NotRegistered):
        c.heartbeat(1, 1.0, 10)
    c.register(1, "w1-new", block=False)
    assert events[-1] == ("rejoin", 1, "rank 1 rejoined, resumes at batch 8")
    w = c.state.workers[1]
    assert w.acked_batches == 8 and w.batches_done == 12  # resume from the ack, not the beat
    assert not w.lost and c.progress(1).lost == 0
    assert c.commit(info(1, 10), torch.ones(2)).applied


def test_lost_rank_releases_the_synchronous_barrier() -> None:
    c, clock, _ = center(algorithm="easgd", sync_timeout=60.0)
    out: list = []
    t = threading.Thread(target=lambda: out.append(c.commit(info(0, 2), torch.ones(2))))
    t.start()
    t.join(0.2)
    assert t.is_alive()  # waiting for rank 1
    clock.now += 5.0
    c.last_seen[0] = clock.now  # rank 0 is in the barrier, alive
    assert c.mark_lost(2.0) == [1]
    t.join(5)
    assert not t.is_alive() and out[0].update_counter == 1


def test_barrier_timeout_says_which_ranks_it_went_on_without() -> None:
    c = Center(CenterState(vector=torch.zeros(1), world_size=3), get_rule("easgd"),
               sync_timeout=0.2)  # fmt: skip
    events: list = []
    c.on_event = lambda *e: events.append(e)
    for r in range(3):
        c.register(r, "w", block=False)
    res = c.commit(info(0, 1), torch.ones(1))
    assert res.update_counter == 1 and c.rounds_incomplete == 1
    assert "without a missing worker (ranks [1, 2]) after 0.2 s" in c.message
    assert events and events[0][0] == "round_incomplete"


def test_restored_centre_runs_at_once_and_keeps_counting_time() -> None:
    c, _, _ = center()
    c.commit(info(0, 4), torch.ones(2))
    snap = c.snapshot()
    restored = Center(CenterState.restore(snap), get_rule("aeasgd"))
    assert restored.phase == "waiting"
    restored.resume()
    assert restored.phase == "running"
    assert restored.register(0, "w0") == 0  # no start barrier: rank 1 is not back yet
    assert restored.training_seconds() >= snap["elapsed_before"]


def test_report_counts_events_in_metrics() -> None:
    before = metrics.WORKERS_LOST._value.get(), metrics.WORKER_REJOINS._value.get()
    report("lost", 1, "rank 1 lost")
    report("rejoin", 1, "rank 1 rejoined")
    after = metrics.WORKERS_LOST._value.get(), metrics.WORKER_REJOINS._value.get()
    assert after == (before[0] + 1, before[1] + 1)


def test_monitor_thread_marks_a_silent_rank_lost_in_real_time() -> None:
    c = Center(CenterState(vector=torch.zeros(1), world_size=2), get_rule("aeasgd"))
    for r in range(2):
        c.register(r, "w", block=False)
    monitor = LivenessMonitor(c, lost_after=0.3, interval=0.05).start()
    try:
        t0 = time.monotonic()
        while c.progress(1).lost < 2 and time.monotonic() - t0 < 5:
            time.sleep(0.02)
        assert c.progress(1).lost == 2
        assert 0.3 <= time.monotonic() - t0 < 3.0
    finally:
        monitor.stop()


def test_rank_that_never_comes_back_to_a_restored_master_is_marked_lost() -> None:
    c, _, _ = center(algorithm="easgd", sync_timeout=60.0)
    clock = Clock()
    restored = Center(CenterState.restore(c.snapshot()), get_rule("easgd"), clock=clock,
                      sync_timeout=60.0)  # fmt: skip
    restored.resume()
    restored.register(0, "w0")
    clock.now += 1.0
    assert restored.mark_lost(2.0) == []  # not yet: rank 1 may still be on its way
    clock.now += 2.0
    restored.last_seen[0] = clock.now
    assert restored.mark_lost(2.0) == [1]  # the barrier no longer waits for it
    assert restored.progress(1).lost == 1
    assert restored.commit(info(0, 2), torch.ones(2)).update_counter == 1  # alone, at once
