"""Who is still there: marking stalled workers lost, and reporting losses and rejoins.

A worker that is SIGKILLed, frozen or cut off sends nothing more; the master
only notices through silence. Workers send a heartbeat every
`DistConfig.heartbeat_seconds` from a thread of their own (so a long local
window or a wait at the synchronous barrier still beats). `LivenessMonitor`
marks a connected rank lost once nothing was heard from it for
`DistConfig.lost_after` seconds: it then no longer holds the synchronous
barrier, Status counts it in `workers_lost`, and it may register again and
resume where its last acknowledged commit left it.

`report` turns the centre's events into the log line, metric and status
message an operator needs ("lost", "rejoin", "round_incomplete").
"""

from __future__ import annotations

import logging
import threading

from trafficdl_master import metrics
from trafficdl_master.center import Center

log = logging.getLogger("trafficdl.master")


def report(kind: str, rank: int, message: str) -> None:
    """Center.on_event hook: log and count a fault event (called under the centre's lock)."""
    if kind == "lost":
        metrics.WORKERS_LOST.inc()
    elif kind == "rejoin":
        metrics.WORKER_REJOINS.inc()
    elif kind == "round_incomplete":
        metrics.SYNC_ROUNDS_INCOMPLETE.inc()
    log.warning("%s", message)


class LivenessMonitor:
    """A daemon thread that marks silent ranks lost until the run is done or `stop()`."""

    def __init__(self, center: Center, lost_after: float, interval: float | None = None) -> None:
        self.center = center
        self.lost_after = lost_after
        self.interval = interval if interval is not None else min(1.0, lost_after / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)

    def start(self) -> LivenessMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and not self.center.done.is_set():
            if self.center.phase == "running":
                self.center.mark_lost(self.lost_after)
