"""Exchanges that do not stop training: one window's pull + commit on a thread of its own.

With `DistConfig.overlap`, a worker hands the vector it has at a window to
this thread and trains on while the exchange crosses the network; the answer
is folded in when it lands. Both rule families fold in the same way. The
exchange of snapshot s returns v, the vector the worker would have continued
from had it waited (elastic: s − E; delta: the fresh centre). Meanwhile the
worker went on from s to x = s + δ. It continues from v + δ = x + (v − s):
the elastic pull on the work done meanwhile (EASGD's update applied one window
late), or the fresh centre plus the progress not yet committed (the next
delta, x' − centre, then carries δ, so nothing is lost or sent twice).

The cost is staleness: the update is based on a vector `lag` mini-batches
old. At most one exchange is in flight; the loop folds a landed one in after
every mini-batch. When the next window ends with the exchange still on its
way, the window grows by a batch instead of waiting (trainer.py: the window
is then the least spacing of commits, and each commit says how many batches
it covers, which ADAG divides by); only an exchange several windows behind
makes the loop wait. What the loop waits (the landing, the snapshot's copy) is
metered as blocked time, as is the whole exchange when overlap is off, so
run.json's blocked fraction compares both ways. Errors raised on the thread
(a Rewind after a master restart, a refused commit) are raised in the loop
when it collects the exchange.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from trafficdl_worker import metrics
from trafficdl_worker.exchange import CommitProgress, Exchanger

SWITCH_INTERVAL_S = 0.0005


class BackgroundExchange:
    """At most one exchange of `exchanger` in flight; `land` folds its answer in."""

    def __init__(self, exchanger: Exchanger) -> None:
        self.exchanger = exchanger
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange")
        # The exchange thread runs Python (protobuf, gRPC's wrappers) between its waits:
        # hand the GIL back to the training loop after 0.5 ms rather than CPython's 5 ms.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._future: Future[torch.Tensor] | None = None
        self._snapshot: torch.Tensor | None = None
        self._started_at_step = 0
        self.lag_batches = 0  # Σ over landed exchanges of the batches trained meanwhile

    @property
    def in_flight(self) -> bool:
        return self._future is not None

    def lag(self, step: int) -> int:
        """Mini-batches trained since the exchange in flight took its vector."""
        return max(step - self._started_at_step, 0) if self._future is not None else 0

    def ready(self) -> bool:
        return self._future is not None and self._future.done()

    def start(self, snapshot: torch.Tensor, progress: CommitProgress, step: int) -> None:
        """Send the window ending at `step`; `snapshot` (host memory) must not change."""
        if self._future is not None:
            raise RuntimeError("an exchange is already in flight")
        self._snapshot = snapshot
        self._started_at_step = step
        # The exchanger updates the vector it is given in place: it gets its own copy.
        self._future = self._pool.submit(
            self.exchanger.exchange, snapshot.clone(), progress, final=False
        )

    def land(self, current: torch.Tensor, step: int) -> torch.Tensor:
        """Wait for the exchange in flight and return `current` moved by its answer
        (x + (v − s), in place). Re-raises what the exchange raised."""
        future, snapshot, lagged = self._future, self._snapshot, self.lag(step)
        if future is None or snapshot is None:
            return current
        try:
            answer = future.result()
        finally:
            self._future = self._snapshot = None
        self.lag_batches += lagged
        metrics.OVERLAP_LAG.observe(lagged)
        answer.sub_(snapshot)
        return current.add_(answer.to(current.device))

    def close(self) -> None:
        """Let a thread still running finish (its error, if any, is dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class Stopwatch:
    """Seconds the training loop spent waiting, and the loop's own clock."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.blocked = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def timed(self, fn: Callable[[], None]) -> None:
        t = time.monotonic()
        try:
            fn()
        finally:
            waited = time.monotonic() - t
            self.blocked += waited
            metrics.BLOCKED_SECONDS.inc(waited)
