"""The sweep record: one JSON line per (cell, fold), and everything derived from them.

A sweep directory's `records.jsonl` is the study's only source of truth: the
figures, the report and the advisor all read it, so a study can be re-plotted,
extended or advised on without rerunning anything. A line is appended (and
flushed) when a fold finishes, which is what makes sweeps resumable: a fold
with a `done` line is never rerun, a fold without one (interrupted, failed) is.

Ideal figures follow the paper: T1 is the time of one worker training on the
whole training set through the master (the N = 1 cell of the same model,
window, algorithm, preset and fold); ideal T = T1/N and ideal cost
= (ρN + ρ_M)·T1/N. Where the grid has no N = 1 cell the centralized cell of the
same fold stands in, and `t1_source` says so.

`oversubscribed` is true when the run had more busy threads (N workers x
threads each, plus the master) than CPU cores: its timings measure contention,
not scaling, and the report says so.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from trafficdl import cost as costmod
from trafficdl.errors import TrafficdlError

SCHEMA = "trafficdl-sweep-record"
VERSION = 1
CENTRAL = "-"  # window/algorithm/preset of the centralized cell
METRICS = (
    "wtpe_s",
    "t_s",
    "cost",
    "ideal_t_s",
    "ideal_wtpe_s",
    "ideal_cost",
    "node_hours",
    "accuracy",
    "macro_recall",
    "macro_f",
)


class RecordError(TrafficdlError):
    """A records file is unreadable or from another format."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid; N = 0 is the centralized baseline (no master)."""

    model: str
    workers: int
    window: str = CENTRAL  # window label ("7b", "1e", "all"), "-" when centralized
    algorithm: str = CENTRAL
    preset: str = CENTRAL

    @property
    def id(self) -> str:
        if self.workers == 0:
            return f"{self.model}-central"
        return f"{self.model}-n{self.workers}-w{self.window}-{self.algorithm}-{self.preset}"

    @property
    def centralized(self) -> bool:
        return self.workers == 0


@dataclass
class Record:
    """What one fold of one cell measured (seconds, the config's currency, fractions)."""

    cell: str
    model: str
    workers: int
    window: str
    algorithm: str
    preset: str
    fold: int
    folds: int
    status: str = "done"  # "done" or "failed"; only done records count
    error: str = ""
    epochs: int = 0
    window_batches: int = 0  # the commit window in the worker's mini-batches
    window_in_batches: bool = False  # the window was set in mini-batches (else in epochs)
    period_epochs: float = 0.0  # 1/F: the commit period in epochs of the worker's partition
    t_s: float = math.nan  # wallclock of the training phase
    wtpe_s: float = math.nan  # wallclock time per epoch
    cost: float = math.nan  # (ρN + ρ_M)·T
    currency: str = "EUR"
    worker_price: float = 0.0
    master_price: float = 0.0
    ideal_t_s: float | None = None  # T1/N
    ideal_wtpe_s: float | None = None
    ideal_cost: float | None = None
    t1_source: str = ""  # the cell that gave T1
    node_hours: float = math.nan
    accuracy: float = math.nan
    macro_recall: float = math.nan
    macro_f: float = math.nan
    # relative macro-F gap to the centralized record of the same model and fold, in %
    # (positive = worse; None for the centralized cell or before it has run)
    macro_f_gap_pct: float | None = None
    confusion: list[list[int]] = field(default_factory=list)  # rows: true, columns: predicted
    labels: list[str] = field(default_factory=list)
    train_size: int = 0
    test_size: int = 0
    cpu_count: int = 0
    threads: int = 0  # torch threads per process (worker or centralized trainer)
    device: str = "cpu"
    oversubscribed: bool = False
    runner: str = ""  # "local", "kubernetes", or a test double's name
    started: float = 0.0  # unix seconds
    finished: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA
    version: int = VERSION

    @property
    def key(self) -> tuple[str, int]:
        return (self.cell, self.fold)

    @property
    def done(self) -> bool:
        return self.status == "done"

    def to_json(self) -> str:
        return json.dumps(_finite(asdict(self)), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        if data.get("schema") != SCHEMA:
            raise RecordError(f"not a sweep record (schema {data.get('schema')!r})")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in METRICS:
            if values.get(name) is None and name not in ("ideal_t_s", "ideal_wtpe_s", "ideal_cost"):
                values[name] = math.nan
        return cls(**values)


def _finite(obj: Any) -> Any:
    """NaN/inf become null: JSON has no NaN, and other tools choke on Python's extension."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_oversubscribed(workers: int, threads: int, cores: int) -> bool:
    """More busy threads than cores: N workers x threads, plus the master when N >= 1."""
    busy = max(threads, 1) * max(workers, 1) + (1 if workers >= 1 else 0)
    return busy > cores


def finish_record(rec: Record, prices: tuple[float, float], currency: str) -> Record:
    """Fill the derived columns (cost, node-hours, oversubscription) from T and N."""
    worker_price, master_price = prices
    billed = rec.workers  # the centralized trainer is one node: N = 0 workers + the "master"
    rec.worker_price, rec.master_price, rec.currency = worker_price, master_price, currency
    rec.cost = costmod.cost(billed, rec.t_s, worker_price, master_price)
    rec.node_hours = costmod.node_hours(billed, rec.t_s)
    rec.oversubscribed = is_oversubscribed(rec.workers, rec.threads, rec.cpu_count)
    return rec


def t1_record(records: Iterable[Record], rec: Record) -> Record | None:
    """The record giving T1 for `rec`: N = 1 of the same cell and fold, else centralized."""
    same = [r for r in records if r.done and r.fold == rec.fold and r.model == rec.model]
    for r in same:
        if (r.workers, r.window, r.algorithm, r.preset) == (
            1,
            rec.window,
            rec.algorithm,
            rec.preset,
        ):
            return r
    return next((r for r in same if r.workers == 0), None)


def fill_ideal(rec: Record, records: Iterable[Record]) -> Record:
    """Set ideal T1/N, WTPE and cost on a distributed record when a T1 record exists."""
    if rec.workers < 1:
        return rec
    base = t1_record(records, rec)
    if base is None or not math.isfinite(base.t_s):
        return rec
    rec.ideal_t_s = costmod.ideal_seconds(base.t_s, rec.workers)
    rec.ideal_wtpe_s = costmod.ideal_seconds(base.wtpe_s, rec.workers)
    rec.ideal_cost = costmod.ideal_cost(base.t_s, rec.workers, rec.worker_price, rec.master_price)
    rec.t1_source = base.cell
    return rec


def fill_gap(rec: Record, records: Iterable[Record]) -> Record:
    """Set a distributed record's macro-F gap to the centralized run of its fold."""
    if rec.workers < 1 or not math.isfinite(rec.macro_f):
        return rec
    ref = next((r for r in records if r.done and r.workers == 0 and r.model == rec.model
                and r.fold == rec.fold), None)  # fmt: skip
    if ref is not None and math.isfinite(ref.macro_f) and ref.macro_f > 0:
        rec.macro_f_gap_pct = 100.0 * (ref.macro_f - rec.macro_f) / ref.macro_f
    return rec


# ------------------------------------------------------------------ reading


def read_records(path: str | Path) -> list[Record]:
    """Every record of a records.jsonl (a torn last line, from a kill mid-write, is skipped)."""
    src = Path(path)
    if src.is_dir():
        src = src / "records.jsonl"
    if not src.is_file():
        raise RecordError(f"{src}: no sweep records here (run `trafficdl sweep` first)")
    out: list[Record] = []
    lines = src.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                continue
            raise RecordError(f"{src}:{i + 1}: unreadable record ({exc.msg})") from exc
        try:
            out.append(Record.from_dict(data))
        except (TypeError, RecordError) as exc:
            raise RecordError(f"{src}:{i + 1}: {exc}") from exc
    return out


def latest(records: Iterable[Record]) -> list[Record]:
    """The last record per (cell, fold): a rerun after a failure supersedes it."""
    last: dict[tuple[str, int], Record] = {}
    for r in records:
        if r.done or r.key not in last or not last[r.key].done:
            last[r.key] = r
    return list(last.values())


# ------------------------------------------------------------------ aggregating


@dataclass
class Summary:
    """Mean and standard deviation over the folds of one cell."""

    cell: Cell
    folds: int
    mean: dict[str, float]
    std: dict[str, float]
    confusion: list[list[int]]  # summed over folds
    labels: list[str]
    period_epochs: float
    oversubscribed: bool
    cpu_count: int
    threads: int
    device: str
    currency: str = "EUR"
    worst_gap_pct: float | None = None  # the largest fold-by-fold macro-F gap to centralized


def summarize(records: Sequence[Record]) -> list[Summary]:
    """One Summary per cell with at least one done fold, ordered by model, preset, N."""
    groups: dict[Cell, list[Record]] = {}
    for r in latest(records):
        if r.done:
            cell = Cell(r.model, r.workers, r.window, r.algorithm, r.preset)
            groups.setdefault(cell, []).append(r)
    out = []
    for cell, recs in groups.items():
        mean, std = {}, {}
        for name in METRICS:
            vals = [float(getattr(r, name)) for r in recs if _num(getattr(r, name))]
            mean[name] = sum(vals) / len(vals) if vals else math.nan
            std[name] = _std(vals, mean[name])
        out.append(
            Summary(
                cell=cell,
                folds=len(recs),
                mean=mean,
                std=std,
                confusion=_sum_confusion([r.confusion for r in recs]),
                labels=recs[0].labels,
                period_epochs=sum(r.period_epochs for r in recs) / len(recs),
                oversubscribed=any(r.oversubscribed for r in recs),
                cpu_count=max(r.cpu_count for r in recs),
                threads=max(r.threads for r in recs),
                device=recs[0].device,
                currency=recs[0].currency,
                worst_gap_pct=max(
                    (r.macro_f_gap_pct for r in recs if r.macro_f_gap_pct is not None),
                    default=None,
                ),
            )
        )
    out.sort(key=lambda s: (s.cell.model, s.cell.preset, s.cell.window, s.cell.workers))
    return out


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _std(vals: list[float], mean: float) -> float:
    """Sample standard deviation (0 for a single fold: no spread measured)."""
    if len(vals) < 2:
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def _sum_confusion(mats: list[list[list[int]]]) -> list[list[int]]:
    mats = [m for m in mats if m]
    if not mats:
        return []
    n = len(mats[0])
    return [[sum(m[i][j] for m in mats if len(m) == n) for j in range(n)] for i in range(n)]
