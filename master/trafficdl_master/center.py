"""The parameter server's state and rule: the centre variable and who has done what.

`CenterState` (state.py) is everything a restarted master needs (flat centre
vector, update counter, per-rank progress, training time so far, history), in
one object with `snapshot()`/`restore()` so an atomic checkpoint can
save and reload it. `Center` applies the run's update rule to it under one lock:
asynchronous commits are folded one at a time as they arrive; synchronous
(EASGD) commits wait at a barrier until every active rank has committed, then
the round is folded at once and all are released together.

The end rule: the run is over when every rank has made its final commit. A
plateau of the centre's validation loss (plateau.py) calls `request_stop`:
from then on every commit is answered `run_done`, so each worker stops early
and makes its final commit, and the same end rule closes the run. There
are no idle timeouts; the only timer is the synchronous barrier's, which folds
an incomplete round rather than waiting forever for a worker that died.
T runs from the moment the last rank registered (all replicas start from the
same centre) to the fold of the last final commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from trafficdl.errors import TrafficdlError
from trafficdl.optim import UpdateRule
from trafficdl.optim.averaging import EpochAverage
from trafficdl_master.state import (
    CenterState,
    CommitInfo,
    CommitResult,
    Progress,
    WorkerProgress,
    progress_of,
)

PHASES = ("waiting", "running", "evaluating", "succeeded", "failed")
HISTORY_LIMIT = 200_000  # commits recorded in history.json (a long LSTM run stays bounded)
T = TypeVar("T")


class CenterError(TrafficdlError):
    """A request the master refuses (unknown rank, full world, finished rank...)."""


class NotRegistered(CenterError):
    """A call from a rank this master does not count as connected (it restarted, or the
    rank was marked lost): the worker must register again, then resume."""


class Center:
    """The centre variable behind one lock, with the run's update rule and end rule."""

    def __init__(
        self,
        state: CenterState,
        rule: UpdateRule,
        *,
        sync_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.rule = rule
        self.sync_timeout = sync_timeout
        self.clock = clock
        self.phase = "waiting"
        self.message = ""
        self.done = threading.Event()
        self._cond = threading.Condition()
        self._started: float | None = None
        self._ended: float | None = None
        self._pending: dict[int, tuple[CommitInfo, torch.Tensor]] = {}
        self._round = 0
        self._round_results: dict[int, CommitResult] = {}
        # Faults (docs/faults.md): when each rank was last heard from, and a hook
        # on_event(kind, rank, message) for "lost", "rejoin", "round_incomplete".
        self.last_seen: dict[int, float] = {}
        self.rounds_incomplete = 0
        self.on_event: Callable[[str, int, str], None] | None = None
        self._awaited: set[int] = set()  # ranks a restored master expects back (resume)
        self.stop_reason = ""  # set by request_stop: workers are told to finish early
        # TrainConfig.average_epochs > 0 (set_averaging): the exponential average of the
        # centre over the workers' mean epochs, advanced after every fold; the model the
        # validation watch checks and the run keeps. A restarted master starts it afresh.
        self.average: EpochAverage | None = None
        if all(w.finished for w in state.workers.values()):
            with self._cond:  # _finish notifies: it must hold the lock
                self._finish()  # a restored run that had already ended

    # --------------------------------------------------------------- time
    def training_seconds(self) -> float:
        """T so far: earlier master lives plus this one's running time."""
        if self._started is None:
            return self.state.elapsed_before
        end = self._ended if self._ended is not None else self.clock()
        return self.state.elapsed_before + (end - self._started)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the state for a checkpoint, with the training time so far
        folded into `elapsed_before` (so a restored master continues the clock)."""
        with self._cond:
            snap = self.state.snapshot()
            snap["elapsed_before"] = self.training_seconds()
            return snap

    # ----------------------------------------------------------- register
    def register(
        self,
        rank: int,
        worker_id: str,
        wait: Callable[[], bool] | None = None,
        *,
        block: bool = True,
    ) -> int:
        """Admit a worker (rank -1: lowest free); blocks until the world is complete.

        `wait` is polled while blocked: returning False abandons the wait (the
        caller hung up). Returns the rank.
        """
        with self._cond:
            rank = self._admit(rank, worker_id)
            while block and not self._world_complete() and self.phase == "waiting":
                if wait is not None and not wait():
                    self.state.workers[rank].connected = False
                    raise CenterError("registration abandoned by the worker")
                self._cond.wait(0.25)
            return rank

    def _admit(self, rank: int, worker_id: str) -> int:
        workers = self.state.workers
        if rank < 0:
            free = [r for r, w in sorted(workers.items()) if not w.connected and not w.finished]
            if not free:
                raise CenterError(f"all {self.state.world_size} ranks are taken")
            rank = free[0]
        if rank not in workers:
            raise CenterError(f"rank {rank} outside world size {self.state.world_size}")
        w = workers[rank]
        if w.finished:
            raise CenterError(f"rank {rank} has already finished")
        if w.registrations:
            self._event("rejoin", rank, f"rank {rank} rejoined, resumes at batch {w.acked_batches}")
        w.connected, w.lost = True, False
        self._awaited.discard(rank)
        w.worker_id = worker_id
        w.registrations += 1
        self.last_seen[rank] = self.clock()
        if self._world_complete() and self.phase == "waiting":
            self.phase = "running"
            self._started = self.clock()
        self._cond.notify_all()
        return rank

    def _world_complete(self) -> bool:
        return all(w.connected or w.finished for w in self.state.workers.values())

    def request_stop(self, reason: str) -> None:
        """Finish early: every later commit is answered run_done (workers then make
        their final commit). The first reason is kept."""
        with self._cond:
            if not self.stop_reason:
                self.stop_reason = reason
                self.message = reason
            self._cond.notify_all()

    def mean_epoch(self) -> float:
        """The workers' mean epoch (fractional): the clock of the validation checks."""
        with self._cond:
            ws = list(self.state.workers.values())
            return sum(w.epoch for w in ws) / max(len(ws), 1)

    # ----------------------------------------------------------- averaging
    def set_averaging(self, horizon_epochs: float) -> None:
        """Average the centre over about `horizon_epochs` epochs from now on (0: off)."""
        with self._cond:
            self.average = None if horizon_epochs <= 0 else EpochAverage(
                [self.state.vector], horizon_epochs, epoch=self.mean_epoch())  # fmt: skip

    def model_copy(self) -> torch.Tensor:
        """A copy of the model the run keeps: the centre's average, or the centre."""
        with self._cond:
            avg = self.average
            return (self.state.vector if avg is None else avg.average[0]).clone()

    # --------------------------------------------------------------- pull
    def read(self, fn: Callable[[int, torch.Tensor], T]) -> T:
        """`fn(update_counter, centre)` under the lock: a pull never sees a torn fold.
        The wire side (framing.FrameCache) copies the centre there once per counter."""
        with self._cond:
            return fn(self.state.update_counter, self.state.vector)

    # ------------------------------------------------------------- commit
    def commit(self, info: CommitInfo, contribution: torch.Tensor) -> CommitResult:
        """Fold a commit (async) or join the round's barrier (sync)."""
        if contribution.numel() != self.state.vector.numel():
            self.reject()
            raise CenterError(
                f"commit has {contribution.numel()} values, the model {self.state.vector.numel()}"
            )
        with self._cond:
            w = self._worker(info.rank)
            if info.sequence and info.sequence <= w.last_sequence:
                # A retried commit already folded: acknowledge, do not apply twice.
                return CommitResult(self.state.update_counter, 0, self.done.is_set(), False)
            if w.finished:
                raise CenterError(f"rank {info.rank} has already made its final commit")
            stop = self.done.is_set() or bool(self.stop_reason)
            self._require_connected(w)
            if self.rule.synchronous:
                return self._commit_sync(info, contribution)
            staleness = max(self.state.update_counter - info.based_on_counter, 0)
            self.rule.fold(
                self.state.vector,
                contribution,
                staleness=staleness,
                window_batches=info.window_batches,
            )
            self.state.update_counter += 1
            self._record(info, staleness)
            if self.average is not None:  # after every fold: by the mean epoch's progress
                self.average.advance_to([self.state.vector], self.mean_epoch())
            return CommitResult(self.state.update_counter, staleness, stop or self.done.is_set())

    def _commit_sync(self, info: CommitInfo, contribution: torch.Tensor) -> CommitResult:
        self._pending[info.rank] = (info, contribution)
        my_round = self._round
        if self._round_complete():
            self._fold_round()
        deadline = self.clock() + self.sync_timeout
        while self._round == my_round:
            remaining = deadline - self.clock()
            if remaining <= 0:
                missing = sorted(
                    r
                    for r, w in self.state.workers.items()
                    if not w.finished and r not in self._pending
                )
                self.message = (
                    f"synchronous round {my_round} folded without a missing worker "
                    f"(ranks {missing}) after {self.sync_timeout:g} s"
                )
                self.rounds_incomplete += 1
                self._event("round_incomplete", missing[0] if missing else -1, self.message)
                self._fold_round()
                break
            self._cond.wait(min(remaining, 1.0))
        result = self._round_results.pop(info.rank)
        result.run_done = self.done.is_set() or bool(self.stop_reason)
        return result

    def _round_complete(self) -> bool:
        expected = {r for r, w in self.state.workers.items() if not w.finished and not w.lost}
        return expected <= set(self._pending)

    def _fold_round(self) -> None:
        pending, self._pending = self._pending, {}
        base = self.state.update_counter
        self.rule.fold_round(self.state.vector, [c for _, c in pending.values()])
        self.state.update_counter += 1
        for rank, (info, _) in pending.items():
            staleness = max(base - info.based_on_counter, 0)
            self._record(info, staleness)
            self._round_results[rank] = CommitResult(self.state.update_counter, staleness, False)
        if self.average is not None:
            self.average.advance_to([self.state.vector], self.mean_epoch())
        self._round += 1
        self._cond.notify_all()

    def _record(self, info: CommitInfo, staleness: int) -> None:
        """Bookkeeping common to every applied commit; ends the run on the last final."""
        w = self.state.workers[info.rank]
        w.commits += 1
        w.last_sequence = max(w.last_sequence, info.sequence)
        w.acked_batches = max(w.acked_batches, info.batches_done)
        self._progress(w, info.epoch, info.batches_done, info.samples_done)
        w.loss, w.accuracy = info.loss, info.accuracy
        # Cumulative on the worker's side: the latest commit says all (a retried or
        # reordered one never lowers them).
        w.elapsed_seconds = max(w.elapsed_seconds, info.elapsed_seconds)
        w.blocked_seconds = max(w.blocked_seconds, info.blocked_seconds)
        w.lag_batches = max(w.lag_batches, info.lag_batches)
        self.state.commits_total += 1
        if len(self.state.history) < HISTORY_LIMIT:
            self.state.history.append(
                {
                    "seconds": round(self.training_seconds(), 4),
                    "rank": info.rank,
                    "counter": self.state.update_counter,
                    "staleness": staleness,
                    "epoch": round(info.epoch, 4),
                    "loss": info.loss,
                    "accuracy": info.accuracy,
                    "final": info.final,
                }
            )
        if info.final:
            w.finished, w.connected = True, False
            if all(x.finished for x in self.state.workers.values()):
                self._finish()
            elif self.rule.synchronous and self._pending and self._round_complete():
                self._fold_round()

    def _finish(self) -> None:
        if self._ended is None and self._started is not None:
            self._ended = self.clock()
        self.phase = "evaluating"
        self.done.set()
        self._cond.notify_all()

    def reject(self) -> None:
        """Count a commit refused before it reached the rule (malformed, wrong model)."""
        with self._cond:
            self.state.commits_rejected += 1

    # ------------------------------------------------------ heartbeat/leave
    def heartbeat(self, rank: int, epoch: float, batches_done: int) -> int:
        with self._cond:
            w = self._worker(rank)
            if not w.finished:
                self._require_connected(w)
            self._progress(w, epoch, batches_done, w.samples_done)
            return self.state.update_counter

    def leave(self, rank: int, reason: str = "") -> None:
        """A worker leaves; one that has not made its final commit is counted lost."""
        with self._cond:
            w = self._worker(rank)
            w.connected = False
            if not w.finished:
                w.lost = True
                self.message = f"rank {rank} left before its final commit: {reason}"
                self._event("lost", rank, self.message)
                if self.rule.synchronous and self._pending and self._round_complete():
                    self._fold_round()
            self._cond.notify_all()

    def mark_lost(self, older_than: float) -> list[int]:
        """Mark connected ranks not heard from for `older_than` seconds lost; returns them.

        A lost rank no longer holds the synchronous barrier; it may register again
        and resume (its progress is kept).
        """
        now, lost = self.clock(), []
        with self._cond:
            for r, w in self.state.workers.items():
                expected = w.connected or r in self._awaited
                if expected and not w.finished and now - self.last_seen.get(r, now) > older_than:
                    self._awaited.discard(r)
                    w.connected, w.lost = False, True
                    lost.append(r)
                    self.message = f"rank {r} lost: no heartbeat for {older_than:g} s"
                    self._event("lost", r, self.message)
            if lost and self.rule.synchronous and self._pending and self._round_complete():
                self._fold_round()
            self._cond.notify_all()
        return lost

    def resume(self) -> None:
        """A master restored from a checkpoint runs at once (T keeps counting from here on
        top of `elapsed_before`); workers rejoin one by one without a start barrier."""
        with self._cond:
            if self.phase == "waiting" and not self.done.is_set():
                self.phase = "running"
                self._started = self.clock()
                self.last_seen = {r: self._started for r in self.state.workers}
                # A rank that does not come back within lost_after is marked lost, so a
                # synchronous barrier stops waiting for it.
                self._awaited = {r for r, w in self.state.workers.items() if not w.finished}

    def _require_connected(self, w: WorkerProgress) -> None:
        self.last_seen[w.rank] = self.clock()
        if not w.connected:
            raise NotRegistered(f"rank {w.rank} is not registered with this master: register again")

    def _event(self, kind: str, rank: int, message: str) -> None:
        if self.on_event is not None:
            self.on_event(kind, rank, message)

    def _worker(self, rank: int) -> WorkerProgress:
        w = self.state.workers.get(rank)
        if w is None:
            raise CenterError(f"rank {rank} outside world size {self.state.world_size}")
        return w

    @staticmethod
    def _progress(w: WorkerProgress, epoch: float, batches: int, samples: int) -> None:
        w.epoch = max(w.epoch, epoch)
        w.batches_done = max(w.batches_done, batches)
        w.samples_done = max(w.samples_done, samples)

    # ------------------------------------------------------------- status
    def set_phase(self, phase: str, message: str = "") -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        with self._cond:
            self.phase = phase
            if message:
                self.message = message
            self._cond.notify_all()

    def progress(self, epochs: int) -> Progress:
        """Counts and progress for Status and metrics (slowest rank's epoch, mean progress)."""
        with self._cond:
            return progress_of(self.state, self.phase, self.message, self.done.is_set(), epochs)
