"""The row every benchmark returns, the run's mode, and the one table `make bench` prints.

A benchmark measures our figure and a peer's (tshark, NFStream, a bare PyTorch
loop, a raw socket) side by side in one run. A row whose peer could not run
(the tool is missing, it crashed) is kept with status "missing-peer" so the
table says so and `python -m bench` exits non-zero, instead of the peer being
dropped silently.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

T = TypeVar("T")

MODES = ("smoke", "quick", "full")
_mode = "full"


def set_mode(mode: str) -> None:
    """smoke: smallest inputs, only proves a module runs; quick: CI-sized; full: the docs'."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    _mode = mode


def mode() -> str:
    return _mode


def pick(*, full: T, quick: T, smoke: T | None = None) -> T:
    """The size for the current mode (smoke falls back to quick)."""
    if _mode == "full":
        return full
    if _mode == "smoke" and smoke is not None:
        return smoke
    return quick


@dataclass
class Row:
    """One measured figure next to its peer (ratio = value / peer_value when both exist)."""

    bench: str
    figure: str
    value: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    note: str = ""
    status: str = "ok"  # "ok", "failed" (the benchmark raised) or "missing-peer"

    @property
    def ratio(self) -> float | None:
        if self.peer_value in (None, 0) or not math.isfinite(self.peer_value or 0.0):
            return None
        return self.value / self.peer_value

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict:
        """JSON-ready: a figure that could not be measured is null, never NaN."""
        d = {**asdict(self), "ratio": self.ratio}
        for key in ("value", "peer_value"):
            if d[key] is not None and not math.isfinite(d[key]):
                d[key] = None
        return d


def missing_peer(bench: str, peer: str, why: str) -> Row:
    """The row that says a peer could not be measured (and fails the run)."""
    return Row(bench, f"peer {peer}", float("nan"), "", peer, None, why, status="missing-peer")


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wallclock seconds of `repeats` calls (these machines are noisy)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    py = platform.python_version()
    return f"{platform.node()} {os.cpu_count()} cpus {platform.machine()} py{py}"


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return "n/a" if not math.isfinite(x) else f"{x:,.4g}"


def render(rows: list[Row]) -> str:
    """A plain-text table: bench, figure, value, unit, peer, peer value, ratio, note."""
    head = ("bench", "figure", "value", "unit", "peer", "peer value", "ratio", "note")
    body = [
        (
            r.bench,
            r.figure if r.ok else f"{r.figure} [{r.status.upper()}]",
            _fmt(r.value),
            r.unit,
            r.peer,
            _fmt(r.peer_value),
            "" if r.ratio is None else f"{r.ratio:.2f}x",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in body]
    return "\n".join(lines)
