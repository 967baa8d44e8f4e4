"""The cost advisor: a time model fitted to a sweep, turned into "how many workers".

Model. The training time with N workers is

    T(N) = T1/N + a + b·X(N)

T1/N is perfect parallelization (the paper's ideal curve); a is fixed overhead
(start-up, the final evaluation, barrier latency); X(N) is the number of bytes
that go through the master over the whole training — N workers x commits per
worker x 2 x model bytes (a commit up, a pull down) — and b is the master's
seconds per byte, i.e. 1/exchange throughput. The master serialises commits,
so X grows with N at a fixed update period and eventually eats the gain of
T1/N: that is the overhead the paper saw, and what makes a cost-optimal N
exist under C(N) = (ρN + ρ_M)·T(N).

Fit. Least squares on the fold records (N >= 1) of one (model, window,
algorithm, preset) group, with every coefficient kept >= 0 (negative times are
meaningless): with three coefficients the exact non-negative solution is the
best of the 2^3 unconstrained fits over subsets of the features that comes
out non-negative. Alternatively `from_throughput` builds the model from a
measured T1 and exchange throughput, without a sweep.

Price tables change only ρ and ρ_M: the advisor assumes the nodes priced are as
fast as those measured, and says so.

Accuracy. Where the advisor names an N it also says what macro F that N gave,
and it quotes the *worst* fold (the sweep's folds are its repetitions), never
the mean: a user who scales out gets one run, and single runs were measured
losing 9% macro F where the mean over folds lost 4%. The gap is taken
fold by fold against the centralized run of the same fold (same rows).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trafficdl import cost as costmod
from trafficdl.errors import TrafficdlError
from trafficdl.study.records import Record, latest

WIRE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


class AdvisorError(TrafficdlError):
    """Too few or unusable timings to fit, or an impossible request."""


@lru_cache(maxsize=16)
def model_bytes(model: str, num_classes: int, wire_dtype: str = "float32") -> int:
    """Bytes of one copy of the model's parameters on the wire."""
    from trafficdl.models import build_model, count_parameters  # torch: only when needed

    return count_parameters(build_model(model, num_classes)) * WIRE_BYTES[wire_dtype]


@dataclass(frozen=True)
class Exchange:
    """What decides X(N): the model size and how often each worker commits.

    The update period of a worker is 1/F(N) = period_epochs · N^period_exponent
    epochs: exponent 0 for a window in epochs (or the robust preset, whose
    mini-batch shrinks with N), 1 for a fixed window in mini-batches (a worker
    holding 1/N of the rows has N times fewer mini-batches per epoch).
    """

    model_bytes: int
    epochs: int
    period_epochs: float = 1.0  # 1/F at N = 1
    period_exponent: float = 0.0

    def commits_per_worker(self, n: int) -> float:
        return self.epochs / (self.period_epochs * n**self.period_exponent)

    def bytes(self, n: int) -> float:
        """X(N): bytes through the master over the training (commit + pull per commit)."""
        return n * self.commits_per_worker(n) * 2 * self.model_bytes


@dataclass(frozen=True)
class TimeModel:
    """T(N) = T1/N + a + b·X(N), seconds for the whole training."""

    t1: float
    a: float
    b: float
    exchange: Exchange
    r2: float = math.nan  # goodness of fit (NaN when not fitted)
    points: int = 0
    distinct_n: int = 0  # values of N fitted: below 3 the 3-parameter fit is not identified
    oversubscribed: bool = False  # fitted on contended timings

    def seconds(self, n: int) -> float:
        return self.t1 / n + self.a + self.b * self.exchange.bytes(n)

    @classmethod
    def from_throughput(
        cls, t1: float, throughput: float, exchange: Exchange, latency: float = 0.0
    ) -> TimeModel:
        """The model from a measured T1 (s) and master exchange throughput (bytes/s)."""
        if t1 <= 0 or throughput <= 0 or latency < 0:
            raise AdvisorError("T1 and throughput must be > 0 and latency >= 0")
        return cls(t1=t1, a=latency, b=1.0 / throughput, exchange=exchange)


def exchange_of(records: Sequence[Record], wire_dtype: str = "float32") -> Exchange:
    """The Exchange a group of records ran with: model size, epochs, and the period law
    1/F(N) fitted (log-log) on the periods the records report."""
    recs = [r for r in records if r.done and r.workers >= 1 and r.period_epochs > 0]
    if not recs:
        raise AdvisorError("no finished distributed (N >= 1) records to advise on")
    r = recs[0]
    size = model_bytes(r.model, max(len(r.labels), 2), wire_dtype)
    logn = np.log([float(x.workers) for x in recs])
    logp = np.log([x.period_epochs for x in recs])
    if len(set(logn.tolist())) >= 2:
        k, c = np.polyfit(logn, logp, 1)
    else:
        k = 1.0 if r.window_in_batches else 0.0
        c = float(np.mean(logp - k * logn))
    return Exchange(size, r.epochs, period_epochs=float(np.exp(c)), period_exponent=float(k))


def fit(records: Sequence[Record], exchange: Exchange) -> TimeModel:
    """Least-squares, non-negative fit of T(N) on the done records with N >= 1."""
    pts = [r for r in latest(records) if r.done and r.workers >= 1 and math.isfinite(r.t_s)]
    ns = sorted({r.workers for r in pts})
    if len(ns) < 2:
        raise AdvisorError(f"need timings at two or more N >= 1 to fit T(N); have N in {ns}")
    n = np.array([r.workers for r in pts], dtype=float)
    y = np.array([r.t_s for r in pts], dtype=float)
    feats = np.stack([1.0 / n, np.ones_like(n), [exchange.bytes(int(k)) for k in n]], axis=1)
    scale = feats.max(axis=0)  # conditioning: X is in the millions
    scale[scale == 0] = 1.0
    coef = _nnls3(feats / scale, y) / scale
    pred = feats @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return TimeModel(
        t1=float(coef[0]),
        a=float(coef[1]),
        b=float(coef[2]),
        exchange=exchange,
        r2=r2,
        points=len(pts),
        distinct_n=len(ns),
        oversubscribed=any(r.oversubscribed for r in pts),
    )


def _nnls3(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares for a few columns, by trying every support."""
    best, best_err = np.zeros(a.shape[1]), float(((y) ** 2).sum())
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            sol, *_ = np.linalg.lstsq(a[:, cols], y, rcond=None)
            if (sol < 0).any():
                continue
            full = np.zeros(a.shape[1])
            full[list(cols)] = sol
            err = float(((a @ full - y) ** 2).sum())
            if err < best_err - 1e-12:
                best, best_err = full, err
    return best


# ---------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class AccuracyPromise:
    """What one N delivered in a sweep: the worst fold, and the largest fold-by-fold gap
    to the centralized run of the same fold (in %, positive = worse; None without one)."""

    workers: int
    worst_macro_f: float
    worst_fold: int
    folds: int
    worst_gap_pct: float | None


def accuracy_promises(
    records: Sequence[Record], central: Sequence[Record] = ()
) -> dict[int, AccuracyPromise]:
    """Per N of `records` (one group), the worst-fold macro F and worst gap to `central`."""
    ref = {r.fold: r.macro_f for r in central if r.done and r.workers == 0}
    by_n: dict[int, list[Record]] = {}
    for r in records:
        if r.done and r.workers >= 1 and math.isfinite(r.macro_f):
            by_n.setdefault(r.workers, []).append(r)
    out = {}
    for n, rs in sorted(by_n.items()):
        worst = min(rs, key=lambda r: r.macro_f)
        gaps = [100.0 * (ref[r.fold] - r.macro_f) / ref[r.fold] for r in rs if ref.get(r.fold)]
        out[n] = AccuracyPromise(n, worst.macro_f, worst.fold, len(rs), max(gaps, default=None))
    return out


def group_promises(records: Sequence[Record]) -> dict[str, dict[int, AccuracyPromise]]:
    """`accuracy_promises` for every (model, window, algorithm, preset) group, keyed as
    `trafficdl advise` names its fits ("lstm 1e aeasgd robust")."""
    recs = latest(records)
    groups: dict[str, list[Record]] = {}
    for r in recs:
        if r.workers >= 1:
            groups.setdefault(f"{r.model} {r.window} {r.algorithm} {r.preset}", []).append(r)
    return {
        name: accuracy_promises(rs, [c for c in recs if c.workers == 0 and c.model == rs[0].model])
        for name, rs in groups.items()
    }


def promise_line(p: AccuracyPromise) -> str:
    """'N = 4: macro F 0.812 worst of 5 folds (fold 2), ≤ 3.1% below centralized'."""
    gap = "" if p.worst_gap_pct is None else f", at most {p.worst_gap_pct:.1f}% below centralized"
    return (
        f"N = {p.workers}: macro F {p.worst_macro_f:.3f} on the worst of {p.folds} "
        f"fold(s) (fold {p.worst_fold}){gap}"
    )


# ------------------------------------------------------------------ advice


@dataclass(frozen=True)
class Option:
    workers: int
    seconds: float
    cost: float


@dataclass(frozen=True)
class Advice:
    """The answers for one price: None where no N meets the constraint."""

    node: str
    worker_price: float
    master_price: float
    cost_optimal: Option
    fastest: Option  # unconstrained
    fastest_within_budget: Option | None
    cheapest_within_deadline: Option | None


def options(
    model: TimeModel, worker_price: float, master_price: float, max_workers: int
) -> list[Option]:
    if max_workers < 1:
        raise AdvisorError("max workers must be >= 1")
    out = []
    for n in range(1, max_workers + 1):
        t = model.seconds(n)
        out.append(Option(n, t, costmod.cost(n, t, worker_price, master_price)))
    return out


def advise(
    model: TimeModel,
    node: str,
    worker_price: float,
    master_price: float,
    *,
    max_workers: int = 64,
    budget: float | None = None,
    deadline: float | None = None,
) -> Advice:
    """Cost-optimal N; fastest N costing <= budget; cheapest N finishing <= deadline (s).

    Ties go to fewer workers (fewer machines to fail, the same price)."""
    opts = options(model, worker_price, master_price, max_workers)
    cheapest = min(opts, key=lambda o: (round(o.cost, 12), o.workers))
    fastest = min(opts, key=lambda o: (round(o.seconds, 9), o.workers))
    in_budget = [o for o in opts if budget is not None and o.cost <= budget]
    in_time = [o for o in opts if deadline is not None and o.seconds <= deadline]
    return Advice(
        node=node,
        worker_price=worker_price,
        master_price=master_price,
        cost_optimal=cheapest,
        fastest=fastest,
        fastest_within_budget=min(in_budget, key=lambda o: (round(o.seconds, 9), o.workers))
        if in_budget
        else None,
        cheapest_within_deadline=min(in_time, key=lambda o: (round(o.cost, 12), o.workers))
        if in_time
        else None,
    )


def price_table(custom: Sequence[str] = ()) -> dict[str, tuple[float, float]]:
    """trafficdl.cost.NODE_TYPES plus NAME=RHO or NAME=RHO:RHO_M entries (hourly prices)."""
    table = {name: (n.hourly_price, n.hourly_price) for name, n in costmod.NODE_TYPES.items()}
    for item in custom:
        name, sep, prices = item.partition("=")
        try:
            parts = [float(p) for p in prices.split(":")]
            if not sep or not name or len(parts) not in (1, 2) or min(parts) < 0:
                raise ValueError
        except ValueError:
            raise AdvisorError(
                f"bad price {item!r}: use NAME=WORKER_PRICE[:MASTER_PRICE] "
                "per hour, e.g. m5.2xlarge=0.384"
            ) from None
        table[name] = (parts[0], parts[-1])
    return table
