"""The advisor's fit on synthetic timings with a known optimum, and its recommendations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trafficdl.study.advisor import (
    AdvisorError,
    Exchange,
    TimeModel,
    advise,
    exchange_of,
    fit,
    options,
    price_table,
)
from trafficdl.study.records import Record

EX = Exchange(model_bytes=200_000, epochs=10, period_epochs=1.0)
TRUE = TimeModel(t1=3600.0, a=20.0, b=2e-6, exchange=EX)  # X(N) = N·10·2·200 kB = 4 MB·N


def record(n: int, **fields: Any) -> Record:
    """A record of an LSTM/AEASGD cell with `n` workers; `fields` give the rest."""
    return Record(cell=f"c{n}", model="lstm", workers=n, algorithm="aeasgd", **fields)


def records(model: TimeModel, ns: list[int], folds: int = 3, noise: float = 0.0) -> list[Record]:
    rng = np.random.default_rng(1)
    out = []
    for n in ns:
        for f in range(folds):
            t = model.seconds(n) * (1 + noise * rng.standard_normal())
            out.append(record(n, window="1e", preset="paper", fold=f, folds=folds, t_s=t,
                              wtpe_s=t / 10, epochs=10))
    return out


def true_optimum(model: TimeModel, rho: float, rho_m: float, nmax: int) -> int:
    costs = [(rho * n + rho_m) * model.seconds(n) for n in range(1, nmax + 1)]
    return int(np.argmin(costs)) + 1


def test_exact_timings_recover_the_model() -> None:
    got = fit(records(TRUE, [1, 2, 4, 8, 16]), EX)
    assert got.t1 == pytest.approx(3600, rel=1e-6)
    assert got.a == pytest.approx(20, rel=1e-6)
    assert got.b == pytest.approx(2e-6, rel=1e-6)
    assert got.r2 == pytest.approx(1.0)
    assert got.points == 15


def test_noisy_timings_find_the_known_cost_optimum() -> None:
    opt = true_optimum(TRUE, 0.698, 0.698, 64)
    assert 5 < opt < 30  # the synthetic study has an interior optimum, like the paper
    got = fit(records(TRUE, [1, 2, 4, 8, 16, 32], folds=10, noise=0.03), EX)
    adv = advise(got, "DS4v2", 0.698, 0.698, max_workers=64)
    true_cost = {o.workers: o.cost for o in options(TRUE, 0.698, 0.698, 64)}
    # within 1% of the true minimal cost, and close in N (the cost curve is flat there)
    assert true_cost[adv.cost_optimal.workers] <= 1.01 * true_cost[opt]
    assert abs(adv.cost_optimal.workers - opt) <= 3


def test_fit_keeps_coefficients_non_negative() -> None:
    # Contended timings that grow with N (an oversubscribed machine): no negative T1 or a.
    recs = records(TimeModel(t1=0.0, a=5.0, b=1e-5, exchange=EX), [1, 2, 4, 8])
    got = fit(recs, EX)
    assert min(got.t1, got.a, got.b) >= 0
    assert advise(got, "x", 1.0, 1.0, max_workers=16).cost_optimal.workers == 1


def test_budget_and_deadline_constraints() -> None:
    adv = advise(TRUE, "DS4v2", 1.0, 1.0, max_workers=64, budget=3.0, deadline=400.0)
    opts = {o.workers: o for o in options(TRUE, 1.0, 1.0, 64)}
    fb, cd = adv.fastest_within_budget, adv.cheapest_within_deadline
    assert fb is not None and cd is not None
    assert fb.cost <= 3.0 and all(o.seconds >= fb.seconds for o in opts.values() if o.cost <= 3.0)
    assert cd.seconds <= 400.0
    assert all(o.cost >= cd.cost for o in opts.values() if o.seconds <= 400.0)
    assert adv.fastest.seconds == min(o.seconds for o in opts.values())
    none = advise(TRUE, "DS4v2", 1.0, 1.0, max_workers=64, budget=0.01, deadline=1.0)
    assert none.fastest_within_budget is None and none.cheapest_within_deadline is None


def test_pricier_master_moves_the_optimum_up() -> None:
    cheap = advise(TRUE, "a", 1.0, 0.1, max_workers=64).cost_optimal.workers
    dear = advise(TRUE, "b", 1.0, 10.0, max_workers=64).cost_optimal.workers
    assert dear > cheap


def test_from_throughput_and_batch_windows() -> None:
    # a fixed window in mini-batches: the period in epochs grows with N (exponent 1)
    ex = Exchange(model_bytes=1_000_000, epochs=2, period_epochs=0.25, period_exponent=1.0)
    assert ex.commits_per_worker(4) == pytest.approx(2.0)
    assert ex.bytes(4) == pytest.approx(4 * 2 * 2 * 1_000_000)
    m = TimeModel.from_throughput(100.0, 1e8, ex, latency=1.0)
    assert m.seconds(4) == pytest.approx(25 + 1 + 16e6 / 1e8)
    with pytest.raises(AdvisorError):
        TimeModel.from_throughput(0.0, 1e8, ex)


def test_exchange_period_law_from_records() -> None:
    def rec(n: int, period: float, in_batches: bool) -> Record:
        return record(n, window="8b", preset="p", fold=0, folds=1, epochs=10,
                      period_epochs=period, window_in_batches=in_batches, labels=["a", "b"])

    fixed = exchange_of([rec(n, 0.1 * n, True) for n in (1, 2, 4, 8)])
    assert fixed.period_exponent == pytest.approx(1.0) and fixed.period_epochs == pytest.approx(0.1)
    scaled = exchange_of([rec(n, 0.27, True) for n in (1, 4, 16)])  # robust: B/N batches
    assert scaled.period_exponent == pytest.approx(0.0, abs=1e-9)
    assert scaled.commits_per_worker(16) == pytest.approx(10 / 0.27)
    single = exchange_of([rec(4, 0.4, True)])
    assert single.period_exponent == 1.0 and single.period_epochs == pytest.approx(0.1)
    assert single.model_bytes == 52_302 * 4  # the paper's LSTM for L = 2, float32
    with pytest.raises(AdvisorError, match="no finished"):
        exchange_of([])


def test_too_few_points_and_bad_prices_are_clear_errors() -> None:
    with pytest.raises(AdvisorError, match="two or more"):
        fit(records(TRUE, [4]), EX)
    table = price_table(["mine=0.5", "split=0.5:2"])
    assert table["mine"] == (0.5, 0.5) and table["split"] == (0.5, 2.0)
    assert "DS4v2" in table
    for bad in ["noeq", "x=abc", "x=-1", "=1", "x=1:2:3"]:
        with pytest.raises(AdvisorError, match="bad price"):
            price_table([bad])


def _f_record(n: int, fold: int, f: float, preset: str = "robust") -> Record:
    central = n == 0
    return Record(
        cell="lstm-central" if central else f"lstm-n{n}-{preset}",
        model="lstm",
        workers=n,
        window="-" if central else "1e",
        algorithm="-" if central else "aeasgd",
        preset="-" if central else preset,
        fold=fold,
        folds=3,
        macro_f=f,
    )


def test_accuracy_promise_quotes_the_worst_fold_and_worst_gap() -> None:
    from trafficdl.study.advisor import group_promises, promise_line

    recs = [_f_record(0, k, f) for k, f in enumerate((0.80, 0.90, 0.70))]
    # N = 4: fold 1 is the lowest F (0.85) but fold 2 the largest gap (0.70 -> 0.63: 10%)
    recs += [_f_record(4, k, f) for k, f in enumerate((0.79, 0.85, 0.63))]
    recs += [_f_record(2, k, 0.8) for k in range(3)]
    promises = group_promises(recs)
    p4 = promises["lstm 1e aeasgd robust"][4]
    assert (p4.worst_macro_f, p4.worst_fold, p4.folds) == (0.63, 2, 3)
    assert p4.worst_gap_pct == pytest.approx(10.0)
    p2 = promises["lstm 1e aeasgd robust"][2]
    assert p2.worst_gap_pct == pytest.approx(100 * (0.9 - 0.8) / 0.9)  # fold 1, not the mean
    line = promise_line(p4)
    assert "0.630 on the worst of 3 fold(s) (fold 2)" in line and "10.0% below" in line


def test_accuracy_promise_without_a_centralized_reference_has_no_gap() -> None:
    from trafficdl.study.advisor import accuracy_promises

    p = accuracy_promises([_f_record(4, 0, 0.7), _f_record(4, 1, 0.6)])[4]
    assert p.worst_macro_f == 0.6 and p.worst_gap_pct is None
