"""`trafficdl classify --live IFACE`: the capture loop, its output and its stop conditions.

Decisions go to stdout as they happen, one line each (a table row, or a JSON
object with `--json`), flushed, so a pipe sees them at once; a status line
"listening on IFACE" goes to stderr when the socket is ready. The loop ends on
Ctrl-C/SIGTERM or after `duration` seconds, and then decides the flows still
open (their end).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from trafficdl.live.engine import Decision, LiveClassifier, LiveSettings
from trafficdl.live.metrics import LiveMetrics
from trafficdl.live.source import PacketSource

PROTOS = {6: "tcp", 17: "udp"}
HEADER = f"{'time':<12} {'proto':<5} {'client':<40} {'server':<40} {'pkts':>5} " \
         f"{'app':<14} {'conf':>6} {'why':<7} {'ms':>7}"  # fmt: skip


def render(d: Decision, as_json: bool) -> str:
    """One decision as a JSON line or a table row."""
    if as_json:
        return json.dumps(d.as_dict())
    clock = time.strftime("%H:%M:%S", time.localtime(d.time)) + f".{int(d.time % 1 * 1000):03d}"
    return (
        f"{clock:<12} {PROTOS.get(d.proto, str(d.proto)):<5} {d.src + ':' + str(d.sport):<40} "
        f"{d.dst + ':' + str(d.dport):<40} {d.packets:>5} {d.app:<14} {d.confidence:>6.3f} "
        f"{d.reason:<7} {d.latency_ms:>7.1f}"
    )


def run_live(
    checkpoint: str | Path,
    iface: str,
    *,
    bpf: str | None = None,
    as_json: bool = False,
    duration: float = 0.0,
    settings: LiveSettings | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    device: str = "cpu",
    out: IO[str] | None = None,
) -> dict[str, Any]:
    """Classify the biflows on `iface` until stopped; returns totals (packets, flows, apps)."""
    from trafficdl.training.checkpoint import load_checkpoint

    out = out or sys.stdout
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    old = signal.signal(signal.SIGTERM, on_signal)
    apps: dict[str, int] = {}
    try:
        with PacketSource(iface, bpf) as source:  # first: a missing right fails at once
            metrics = LiveMetrics()
            clf = LiveClassifier(load_checkpoint(checkpoint), settings, device=device,
                                 metrics=metrics)  # fmt: skip
            port = metrics.serve(metrics_port, metrics_host) if metrics_port is not None else None
            where = f", metrics on http://{metrics_host}:{port}/metrics" if port else ""
            print(f"trafficdl: listening on {iface}{where}", file=sys.stderr, flush=True)
            if not as_json:
                print(HEADER, file=out, flush=True)
            end = time.monotonic() + duration if duration > 0 else float("inf")
            wait = clf.settings.decide_every
            while not stop["now"] and time.monotonic() < end:
                try:
                    frames = source.read(min(wait, max(end - time.monotonic(), 0.0)))
                    _emit(clf.process(frames), as_json, out, apps)
                except KeyboardInterrupt:
                    break
            _emit(clf.flush(), as_json, out, apps)
            _, dropped = source.kernel_stats()
    finally:
        signal.signal(signal.SIGTERM, old)
    totals = {"packets": clf.packets, "flows": clf.decided, "evicted": clf.table.evicted,
              "kernel_drops": dropped, "busy_seconds": clf.busy_seconds,
              "frames_seconds": clf.last_frame - clf.first_frame, "apps": apps}
    print(f"trafficdl: totals {json.dumps(totals)}", file=sys.stderr, flush=True)
    return totals


def _emit(decisions: list[Decision], as_json: bool, out: IO[str], apps: dict[str, int]) -> None:
    for d in decisions:
        apps[d.app] = apps.get(d.app, 0) + 1
        out.write(render(d, as_json) + "\n")
    if decisions:
        out.flush()
