"""Live classification: frames in, one decision per biflow out, as early as its input allows.

`LiveClassifier.process(frames)` feeds the flow table (trafficdl.live.flows),
collects the objects that became ready or ended, and classifies them in one
batch through the checkpoint's model and input adapter — the same
`prepare` → `predict_logits` → softmax path as `trafficdl classify` on a
file, so a flow gets the same answer live as offline when its input is the
same. Readiness is checked every `decide_every` seconds rather than after
every frame: the check walks the undecided flows, and batching it bounds its
cost at high packet rates while adding at most that much latency. Timeouts
are swept once a second (a sweep walks the whole table).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from trafficdl.live.flows import READY_BYTES, READY_PACKETS, LiveTable
from trafficdl.live.metrics import LiveMetrics

UNKNOWN = "unknown"
EXPIRE_EVERY = 1.0  # seconds between idle/active timeout sweeps of the whole table


@dataclass
class Decision:
    """One biflow and the app the model gave it."""

    time: float  # epoch seconds of the decision
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    packets: int  # packets of the flow seen when it was decided
    app: str  # "unknown" below --reject-below
    confidence: float
    best: str
    reason: str  # packets | bytes (enough input), end (flow ended first), evicted
    latency_ms: float  # from the flow's last packet before the decision to the decision

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LiveSettings:
    """Flow-table bounds and decision pacing (defaults: NFStream's timeouts)."""

    idle_timeout: float = 120.0  # seconds of silence that end a biflow
    active_timeout: float = 1800.0  # seconds after its start that end a biflow (0: off)
    max_flows: int = 100_000  # flows kept; beyond, the least recently active are ended
    decide_every: float = 0.01  # seconds between readiness checks
    reject_below: float = 0.0  # confidence under which the app is "unknown"
    # torch threads for inference; one keeps latency steady and a core for the capture
    # (0: torch's default)
    threads: int = 1


class LiveClassifier:
    """A checkpoint's model over a live flow table."""

    def __init__(self, ckpt: Any, settings: LiveSettings | None = None,
                 device: str = "cpu", metrics: LiveMetrics | None = None) -> None:  # fmt: skip
        from trafficdl.training.classify import extract_config_of
        from trafficdl.training.runtime import select_device

        self.settings = s = settings or LiveSettings()
        if s.threads > 0:
            import torch

            torch.set_num_threads(s.threads)
        self.ckpt = ckpt
        self.model = ckpt.build_model(select_device(device))
        cfg = replace(extract_config_of(ckpt), idle_timeout=s.idle_timeout,
                      active_timeout=s.active_timeout)  # fmt: skip
        self.table = LiveTable(cfg, ckpt.adapter.kind, s.max_flows)
        self.metrics = metrics or LiveMetrics()
        self.labels = list(ckpt.label_names)
        self._next_check = self._next_expire = 0.0
        self._evicted = 0
        self.packets = 0
        self.decided = 0
        self.busy_seconds = 0.0  # time spent in process(), reading excluded
        self.first_frame = self.last_frame = 0.0  # timestamps of the first and last frame

    def process(self, frames: Iterable[tuple[float, int, bytes, int]],
                now: float | None = None) -> list[Decision]:  # fmt: skip
        """Feed frames (possibly none); return the decisions this made due."""
        t0 = time.perf_counter()
        try:
            return self._process(list(frames), now)
        finally:
            self.busy_seconds += time.perf_counter() - t0

    def _process(self, frames: list[tuple[float, int, bytes, int]],
                 now: float | None) -> list[Decision]:  # fmt: skip
        if frames:
            self.first_frame = self.first_frame or frames[0][0]
            self.last_frame = frames[-1][0]
            self.table.feed(frames)
            self.packets += len(frames)
            self.metrics.packets.inc(len(frames))
        now = time.time() if now is None else now
        if now >= self._next_expire:  # O(table): timeouts are seconds, so once a second
            self._next_expire = now + EXPIRE_EVERY
            self.table.expire(now)
            self.metrics.open.set(self.table.open_flows)
            self.metrics.undecided.set(self.table.undecided)
        if now >= self._next_check:  # O(undecided flows)
            self._next_check = now + self.settings.decide_every
            self.table.harvest()
        return self._decide()

    def flush(self) -> list[Decision]:
        """Decide every flow still open (end of capture: they end now)."""
        self.table.close()
        return self._decide()

    def _decide(self) -> list[Decision]:
        import torch

        from trafficdl.training.loop import predict_logits

        m = self.metrics
        if self.table.evicted > self._evicted:
            m.evicted.inc(self.table.evicted - self._evicted)
            self._evicted = self.table.evicted
        if not len(self.table.sink):
            return []
        payload, packets, objects, reasons, seen = self.table.drain()
        adapter = self.ckpt.adapter
        x = adapter.prepare(payload, packets, objects["n_packets"])
        logits = predict_logits(self.model, x, adapter=adapter)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        top = probs.argmax(axis=1)
        conf = probs[np.arange(len(probs)), top]
        now = time.time()
        out = []
        for i, obj in enumerate(objects):
            best = self.labels[int(top[i])]
            app = UNKNOWN if conf[i] < self.settings.reject_below else best
            latency = max(now - seen[i], 0.0)
            out.append(Decision(
                time=now, proto=int(obj["proto"]), src=str(obj["src"]), sport=int(obj["sport"]),
                dst=str(obj["dst"]), dport=int(obj["dport"]), packets=int(obj["n_packets"]),
                app=app, confidence=float(conf[i]), best=best, reason=reasons[i],
                latency_ms=1000.0 * latency,
            ))  # fmt: skip
            m.flows.labels(app=app, reason=reasons[i]).inc()
            if reasons[i] in (READY_PACKETS, READY_BYTES):  # an ended flow waited on purpose
                m.latency.observe(latency)
        self.decided += len(out)
        return out
