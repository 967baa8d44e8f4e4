"""bench_convergence's bookkeeping: which runs a cell gets, and what its rows claim.

The benchmark's figures are only as honest as its rows: a cell limited to its
first seeds (bench_convergence_cnn's N = 16 here) must run on those seeds only,
share each seed's centralized reference, and name the number of seeds its worst
row is the worst of; bench_convergence_n8 must run each model on its own data
and on seeds the other benchmarks do not use. The training calls are replaced
by recorders; the real ones run in the smoke benchmark (tests/integration/bench).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import bench_convergence as conv


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record every run; macro F = a function of (what ran, seed) so rows can be checked."""
    seen: list[tuple[str, Any]] = []

    def centralized(ds: Path, train: Any, out: Path, init_offset: int = 0) -> dict:
        seen.append(("floor" if init_offset else "centralized", (train.model, train.seed)))
        f = 0.80 + 0.01 * train.seed + (0.005 if init_offset else 0.0)
        return {"run": {"figures": {"macro_f1": f}, "epochs_run": 40 + train.seed,
                        "confusion": [[9, 1], [2, 8]]}}  # fmt: skip

    def local(ds: Path, train: Any, dist: Any, out: Path, progress: bool) -> SimpleNamespace:
        seen.append((f"n{dist.workers}", (train.model, train.seed)))
        f = 0.80 + 0.01 * train.seed - 0.001 * dist.workers
        return SimpleNamespace(run={"figures": {"macro_f1": f}, "epochs_run": 30.5})

    monkeypatch.setattr(conv, "run_centralized", centralized)
    monkeypatch.setattr(conv, "run_local", local)
    return seen


def test_a_cell_limited_to_its_first_seeds_runs_only_on_them(
    tmp_path: Path, calls: list[tuple[str, Any]]
) -> None:
    cells = [(2, "robust"), (16, "robust")]
    f, ran, stderr = conv.measure(tmp_path, tmp_path, cells=cells, seeds=[0, 1, 2], epochs=9,
                                  floor=True, model="cnn1d", lr=1e-3,
                                  first_seeds={(16, "robust"): 2})  # fmt: skip
    assert sorted(f[(2, "robust")]) == [0, 1, 2]
    assert sorted(f[(16, "robust")]) == [0, 1]
    assert [c for c in calls if c[0] == "n16"] == [("n16", ("cnn1d", 0)), ("n16", ("cnn1d", 1))]
    assert all(model == "cnn1d" for _, (model, _) in calls)
    assert sorted(f["floor"]) == sorted(f["centralized"]) == sorted(stderr) == [0, 1, 2]
    assert ran["centralized"] == {0: 40, 1: 41, 2: 42}


def test_rows_compare_each_seed_to_its_own_centralized_run(
    tmp_path: Path, calls: list[tuple[str, Any]]
) -> None:
    cells = [(2, "robust"), (16, "robust")]
    f, ran, stderr = conv.measure(tmp_path, tmp_path, cells=cells, seeds=[0, 1, 2], epochs=9,
                                  model="cnn1d", first_seeds={(16, "robust"): 2})  # fmt: skip
    rows = conv.rows_of(f, 9, ran, stderr, bench="convergence_cnn", model="cnn1d")
    by_figure = {r.figure: r for r in rows}
    n16 = [r for r in rows if "N=16" in r.figure]
    assert len(n16) == 3  # two seeds and their worst
    worst = by_figure["cnn1d macro F, N=16, --preset robust, at most 9 epochs, worst of 2 seeds"]
    assert worst.ratio == pytest.approx(min((0.784 + 0.01 * s) / (0.80 + 0.01 * s) for s in (0, 1)))
    assert "worst of 3 seeds" in next(r.figure for r in rows if "N=2," in r.figure
                                      and "worst" in r.figure)  # fmt: skip
    seed1 = by_figure["cnn1d macro F, N=2, --preset robust, at most 9 epochs, seed 1"]
    assert (seed1.value, seed1.peer_value) == pytest.approx((0.808, 0.81))
    assert seed1.bench == "convergence_cnn" and "centralized 41" in seed1.note


def test_the_n8_benchmark_runs_both_models_on_unused_seeds_with_their_own_data(
    tmp_path: Path, calls: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import bench_convergence_n8 as n8
    from bench import table

    made: list[tuple[str, int]] = []

    def dataset(root: Path, apps: int, flows: int) -> Path:
        made.append((root.name, flows))
        return root

    monkeypatch.setattr(n8, "_dataset", dataset)
    before = table.mode()
    table.set_mode("quick")
    try:
        rows = n8.run(quick=True)
    finally:
        table.set_mode(before)
    assert made == [("lstm", 200), ("cnn1d", 100)]  # each model on its own benchmark's data
    for model in ("lstm", "cnn1d"):
        for kind in ("centralized", "floor", "n8"):  # seeds 5-9: the others use 0-4
            seeds = sorted(s for what, (m, s) in calls if m == model and what == kind)
            assert seeds == [5, 6, 7, 8, 9], (model, kind)
        worst = [r for r in rows if r.figure.startswith(f"{model} macro F, N=8")
                 and "worst of 5 seeds" in r.figure]  # fmt: skip
        assert len(worst) == 1 and worst[0].bench == "convergence_n8"
    assert not [c for c in calls if c[0] not in ("centralized", "floor", "n8")]
