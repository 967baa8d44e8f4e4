"""The live flow table: the extraction walk, plus early decisions and bounded memory.

Live classification must cut packets into biflows exactly as `extract` cut
the training captures (same decoding, client/server orientation, TCP
sequence tracking, tunnels), so this is the capture Walker itself with three
additions, none of them in its per-packet loop:

- readiness: after each batch of packets, the undecided objects are checked
  for "enough input" — the first N_p packets (LSTM) or N_b payload bytes
  (1D-CNN). A ready object is finished early into the sink (its record says
  the packets seen so far) and stops collecting; later packets only touch its
  counters. Objects that end first (idle or active timeout, TCP close, end of
  capture, eviction) are decided with what they have, as extraction does.
- a decided object is never finished twice: `_finish` only emits undecided
  ones, so the sink holds exactly the objects awaiting a model decision.
- bounded memory: beyond `max_flows` objects, the least recently active are
  ended (decided if they were not); the sink is drained after every batch.

Time is wall-clock time at reception, so the idle and active timeouts are real
seconds, and `sweep(now)` can run while no packet arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trafficdl.capture.config import ExtractConfig
from trafficdl.capture.objects import _FIRST, _LAST, _OPEN, _PAY, _ROWS
from trafficdl.capture.walk import Walker
from trafficdl.errors import TrafficdlError
from trafficdl.features import FeatureSink

READY_PACKETS, READY_BYTES, ENDED, EVICTED = "packets", "bytes", "end", "evicted"


class LiveTable(Walker):
    """Walker whose objects are emitted once: when ready, or at their end."""

    def __init__(self, cfg: ExtractConfig, need: str, max_flows: int = 100_000) -> None:
        if cfg.segmentation == "burst":
            raise TrafficdlError("live classification needs a biflow or flow model, not burst")
        if need not in ("payload", "packets"):
            raise ValueError(f"unknown input kind {need!r}")
        if max_flows < 1:
            raise TrafficdlError("--max-flows must be >= 1")
        super().__init__(cfg)
        self.need = need
        self.max_flows = max_flows
        self.pending: dict[int, list] = {}  # id(state) -> state, objects not yet decided
        self.reasons: list[str] = []  # why each record in the sink was emitted
        self.last_seen: list[float] = []  # its last packet's time (decision latency)
        self.evicted = 0
        self._why = ENDED

    def _new_state(self, ts: float, meta: tuple, keys: tuple, tun: Any) -> list:  # type: ignore[override]
        st = Walker._new_state(ts, meta, keys, tun)
        self.pending[id(st)] = st
        return st

    def _finish(self, st: list) -> None:
        if self.pending.pop(id(st), None) is None:
            return  # decided already
        before = len(self.sink)
        super()._finish(st)
        if len(self.sink) > before:  # min_packets/min_payload may drop it
            self.reasons.append(self._why)
            self.last_seen.append(st[_LAST])

    def harvest(self) -> None:
        """Emit every undecided object that now has its full model input."""
        if self.need == "packets":
            npk = self.cfg.packets
            ready = [st for st in self.pending.values() if len(st[_ROWS]) >= npk]
            self._why = READY_PACKETS
        else:
            nb = self.cfg.payload_bytes
            ready = [st for st in self.pending.values() if len(st[_PAY]) >= nb]
            self._why = READY_BYTES
        for st in ready:
            self._finish(st)
            st[_OPEN] = False  # decided: its later packets only count
        self._why = ENDED
        self._bound()

    def _bound(self) -> None:
        """End the least recently active objects while more than max_flows are open."""
        states = {id(e[0]): e[0] for e in self.table.values()} if (
            len(self.table) > 2 * self.max_flows) else {}  # fmt: skip
        excess = len(states) - self.max_flows
        if excess <= 0:
            return
        excess += self.max_flows // 10  # make room for a while: sorting is O(n log n)
        self._why = EVICTED
        for st in sorted(states.values(), key=lambda s: s[_LAST])[:excess]:
            self._end(st)
            self.evicted += 1
        self._why = ENDED

    def expire(self, now: float) -> None:
        """End objects idle for idle_timeout, or older than active_timeout, at `now`."""
        self.sweep(now)
        active = self.cfg.active_timeout
        if active:
            old = {id(e[0]): e[0] for e in self.table.values() if now - e[0][_FIRST] > active}
            for st in old.values():
                self._end(st)

    def drain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[float]]:
        """(payload, packets, objects, reasons, last packet times) of the emitted objects."""
        sink, reasons, seen = self.sink, self.reasons, self.last_seen
        self.sink = FeatureSink(self.cfg.payload_bytes, self.cfg.packets)
        self.reasons, self.last_seen = [], []
        return (*sink.arrays(), reasons, seen)

    @property
    def open_flows(self) -> int:
        return len({id(e[0]) for e in self.table.values()})

    @property
    def undecided(self) -> int:
        return len(self.pending)


__all__ = ["ENDED", "EVICTED", "READY_BYTES", "READY_PACKETS", "LiveTable"]
