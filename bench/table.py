"""The row every benchmark returns, and the one table `make bench` prints."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


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

    @property
    def ratio(self) -> float | None:
        if self.peer_value in (None, 0):
            return None
        return self.value / self.peer_value

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


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


def render(rows: list[Row]) -> str:
    """A plain-text table: bench, figure, value, unit, peer, peer value, ratio, note."""
    head = ("bench", "figure", "value", "unit", "peer", "peer value", "ratio", "note")
    body = [
        (
            r.bench,
            r.figure,
            f"{r.value:,.4g}",
            r.unit,
            r.peer,
            "" if r.peer_value is None else f"{r.peer_value:,.4g}",
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
