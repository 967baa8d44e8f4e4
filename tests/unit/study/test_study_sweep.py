"""The grid runner with a fake cell runner: order, records, resumption, failures, folds."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.dataset import OBJECT_DTYPE, write_dataset
from trafficdl.study.records import read_records, summarize
from trafficdl.study.sweep import CellResult, CellTask, Grid, SweepError, Window, run_sweep


def tiny_dataset(root: Path, n: int = 60, classes: int = 3) -> Path:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    return write_dataset(
        root / "ds",
        payload=rng.integers(0, 255, (n, 16), dtype=np.uint8),
        packets=rng.random((n, 4, 4), dtype=np.float32),
        labels=labels,
        objects=np.zeros(n, dtype=OBJECT_DTYPE),
        label_names=[f"app{i}" for i in range(classes)],
        meta={},
    )


class FakeRunner:
    """Seconds shrink with N, F-measure drops with N; remembers every task it got."""

    def __init__(self, fail: set[tuple[str, int]] | None = None) -> None:
        self.tasks: list[CellTask] = []
        self.fail = fail or set()

    def __call__(self, task: CellTask) -> CellResult:
        self.tasks.append(task)
        if (task.cell.id, task.fold) in self.fail:
            raise RuntimeError("boom")
        n = max(task.cell.workers, 1)
        labels = ["app0", "app1", "app2"]
        return CellResult(
            t_s=100.0 / n + 2.0 * n,
            wtpe_s=10.0 / n + 0.2 * n,
            epochs=10,
            accuracy=0.9 - 0.01 * n,
            macro_recall=0.9 - 0.01 * n,
            macro_f=0.9 - 0.01 * n - 0.001 * task.fold,
            confusion=[[5, 1, 0], [0, 6, 0], [1, 0, 5]],
            labels=labels,
            threads=1,
        )


CFG = TrainConfig(model="lstm", epochs=10, batch_size=5)


def grid(**kw: object) -> Grid:
    base = dict(models=("lstm",), workers=(0, 1, 2, 4), windows=("1e",), folds=3)
    base.update(kw)
    return Grid(**base)  # type: ignore[arg-type]


def test_runs_every_cell_and_fold_in_order_with_explicit_fold_rows(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    fake = FakeRunner()
    recs = run_sweep(ds, grid(), CFG, DistConfig(), tmp_path / "out", fake, quiet=True)
    assert len(recs) == 4 * 3 and all(r.done for r in recs)
    order = [t.cell.workers for t in fake.tasks]
    assert order == sorted(order)  # centralized, then N ascending: T1 known first
    # each fold's train and test rows are disjoint and together cover the dataset once
    tests = [t.test_idx for t in fake.tasks if t.cell.workers == 0]
    assert sorted(np.concatenate(tests).tolist()) == list(range(60))
    for t in fake.tasks:
        assert not set(t.train_idx.tolist()) & set(t.test_idx.tolist())
        assert t.dist_cfg.workers == t.cell.workers
    on_disk = read_records(tmp_path / "out")
    assert [r.key for r in on_disk] == [r.key for r in recs]


def test_records_derive_cost_ideal_and_oversubscription(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    dist = DistConfig(worker_price=1.0, master_price=2.0)
    recs = run_sweep(ds, grid(), CFG, dist, tmp_path / "out", FakeRunner(), quiet=True)
    by = {(r.workers, r.fold): r for r in recs}
    n4, n1 = by[(4, 0)], by[(1, 0)]
    assert n4.cost == pytest.approx((1.0 * 4 + 2.0) * n4.t_s / 3600)
    assert n4.node_hours == pytest.approx(5 * n4.t_s / 3600)
    assert n4.ideal_t_s == pytest.approx(n1.t_s / 4)
    assert n4.ideal_wtpe_s == pytest.approx(n1.wtpe_s / 4)
    assert n4.ideal_cost == pytest.approx((4 + 2.0) * (n1.t_s / 4) / 3600)
    assert n4.t1_source == n1.cell
    central = by[(0, 0)]
    assert central.cost == pytest.approx(2.0 * central.t_s / 3600)  # one node, no master
    assert central.ideal_t_s is None
    # 4 workers + master on this machine's cores; the flag follows the CPU count recorded
    assert n4.oversubscribed == (n4.cpu_count < 5)
    assert n4.cpu_count >= 1


def test_records_carry_the_gap_to_the_centralized_fold_and_fixed_epochs(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    fake = FakeRunner()
    cfg = replace(CFG, val_fraction=0.2, patience=3)  # sweeps train a fixed epoch count
    recs = run_sweep(ds, grid(), cfg, DistConfig(), tmp_path / "out", fake, quiet=True)
    by = {(r.workers, r.fold): r for r in recs}
    # fake F: 0.9 - 0.01 n - 0.001 fold; centralized counts as n = 1 (max(N, 1))
    assert by[(4, 2)].macro_f_gap_pct == pytest.approx(100 * 0.03 / (0.89 - 0.002))
    assert by[(1, 0)].macro_f_gap_pct == pytest.approx(0.0)
    assert by[(0, 1)].macro_f_gap_pct is None
    assert read_records(tmp_path / "out")[-1].macro_f_gap_pct == recs[-1].macro_f_gap_pct
    assert {(t.train_cfg.val_fraction, t.train_cfg.patience) for t in fake.tasks} == {(0.0, 0)}


def test_window_and_period_recorded(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    g = grid(workers=(2,), windows=("2b", "1e", "all"), folds=2, presets=("none",))
    recs = run_sweep(ds, g, CFG, DistConfig(), tmp_path / "out", FakeRunner(), quiet=True)
    by = {r.window: r for r in recs if r.fold == 0}
    # 30 training rows per fold / 2 workers = 15 rows = 3 mini-batches of 5 per epoch
    assert by["2b"].window_batches == 2 and by["2b"].period_epochs == pytest.approx(2 / 3)
    assert by["1e"].window_batches == 3 and by["1e"].period_epochs == pytest.approx(1.0)
    assert by["all"].period_epochs == pytest.approx(10.0)


def test_resume_skips_finished_and_reruns_failed(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    out = tmp_path / "out"
    first = FakeRunner(fail={("lstm-n2-w1e-aeasgd-paper", 1)})
    recs = run_sweep(ds, grid(), CFG, DistConfig(), out, first, quiet=True)
    failed = [r for r in recs if not r.done]
    assert [(r.cell, r.fold) for r in failed] == [("lstm-n2-w1e-aeasgd-paper", 1)]
    assert "boom" in failed[0].error
    second = FakeRunner()
    recs = run_sweep(ds, grid(), CFG, DistConfig(), out, second, quiet=True)
    assert [(t.cell.id, t.fold) for t in second.tasks] == [("lstm-n2-w1e-aeasgd-paper", 1)]
    third = FakeRunner()
    run_sweep(ds, grid(workers=(0, 1, 2, 4, 8)), CFG, DistConfig(), out, third, quiet=True)
    assert {t.cell.workers for t in third.tasks} == {8}  # a grown grid runs only new cells
    summaries = summarize(read_records(out))
    assert {s.cell.workers: s.folds for s in summaries} == {0: 3, 1: 3, 2: 3, 4: 3, 8: 3}


def test_interrupted_fold_reruns_in_a_clean_directory(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    out = tmp_path / "out"

    class Interrupt(FakeRunner):
        def __call__(self, task: CellTask) -> CellResult:
            (task.work_dir / "partial").write_text("x")
            if task.cell.workers == 2:
                raise KeyboardInterrupt
            return super().__call__(task)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(ds, grid(), CFG, DistConfig(), out, Interrupt(), quiet=True)
    assert len(read_records(out)) == 3 + 3  # centralized and N=1 finished
    seen: list[bool] = []

    class Check(FakeRunner):
        def __call__(self, task: CellTask) -> CellResult:
            seen.append((task.work_dir / "partial").exists())
            return super().__call__(task)

    run_sweep(ds, grid(), CFG, DistConfig(), out, Check(), quiet=True)
    assert seen and not any(seen)
    assert len(read_records(out)) == 12


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    out = tmp_path / "out"
    run_sweep(ds, grid(workers=(0,)), CFG, DistConfig(), out, FakeRunner(), quiet=True)
    with (out / "records.jsonl").open("a") as fh:
        fh.write('{"schema": "trafficdl-sweep-rec')
    assert len(read_records(out)) == 3


def test_refuses_to_mix_settings(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    out = tmp_path / "out"
    run_sweep(ds, grid(workers=(0,)), CFG, DistConfig(), out, FakeRunner(), quiet=True)
    other = TrainConfig(model="lstm", epochs=3, batch_size=5)
    with pytest.raises(SweepError, match="train config"):
        run_sweep(ds, grid(workers=(0,)), other, DistConfig(), out, FakeRunner(), quiet=True)


def test_summary_mean_and_std_over_folds(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    run_sweep(ds, grid(workers=(2,)), CFG, DistConfig(), tmp_path / "o", FakeRunner(), quiet=True)
    (s,) = summarize(read_records(tmp_path / "o"))
    f = [0.88, 0.879, 0.878]
    assert s.mean["macro_f"] == pytest.approx(sum(f) / 3)
    assert s.std["macro_f"] == pytest.approx(float(np.std(f, ddof=1)))
    assert s.confusion == [[15, 3, 0], [0, 18, 0], [3, 0, 15]]
    assert math.isnan(s.mean["ideal_cost"])  # no N = 1 and no centralized cell: no T1


@pytest.mark.parametrize("text", ["7", "0b", "-1e", "xe", "soon"])
def test_bad_windows_and_grids_are_clear_errors(text: str) -> None:
    with pytest.raises(SweepError, match="bad window"):
        Window.parse(text)


def test_bad_grid_and_folds(tmp_path: Path) -> None:
    with pytest.raises(SweepError):
        Grid(workers=(-1,))
    with pytest.raises(Exception, match="unknown preset"):
        Grid(presets=("fast",))
    ds = tiny_dataset(tmp_path, n=12)
    with pytest.raises(SweepError, match="too few"):
        run_sweep(ds, grid(folds=5), CFG, DistConfig(), tmp_path / "o", FakeRunner(), quiet=True)


def test_record_json_has_no_nan(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    run_sweep(ds, grid(workers=(0,)), CFG, DistConfig(), tmp_path / "o", FakeRunner(), quiet=True)
    line = (tmp_path / "o" / "records.jsonl").read_text().splitlines()[0]
    assert "NaN" not in line
    data = json.loads(line)
    for key in (
        "model",
        "workers",
        "window",
        "fold",
        "wtpe_s",
        "t_s",
        "cost",
        "ideal_t_s",
        "node_hours",
        "accuracy",
        "macro_recall",
        "macro_f",
        "confusion",
        "cpu_count",
        "threads",
        "device",
        "oversubscribed",
        "preset",
        "algorithm",
    ):
        assert key in data
