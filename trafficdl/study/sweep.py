"""The resumable grid runner: every (model, N, window, algorithm, preset) cell, every fold.

The runner knows nothing about how a cell trains: it hands a CellTask (the
cell, the fold's explicit train/test rows, the final configs, a scratch
directory) to a cell runner — a plain function — and turns what comes back
into a Record. The real runners (runners.py: centralized trainer, local master
+ workers; cluster_jobs.py: one TrafficTrainingJob per cell) and the tests' fakes are
interchangeable, which is what lets resumption, ordering and bookkeeping be
tested in milliseconds.

Resumption: records.jsonl holds one line per finished fold; a (cell, fold)
with a `done` line is skipped, anything else (never started, interrupted,
failed) runs again in a fresh scratch directory. sweep.json pins what makes
records comparable (dataset, configs, folds); resuming a directory with other
settings is refused rather than silently mixing two studies. The grid axes
may grow between runs: new cells run, old ones are kept.

Order: per model, the centralized baseline, then N ascending, so T1 (N = 1) is
known before the cells whose ideal curve needs it.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trafficdl.config import DistConfig, TrainConfig, to_dict
from trafficdl.dataset import Dataset, stratified_kfold, train_test_split
from trafficdl.errors import TrafficdlError
from trafficdl.study import presets
from trafficdl.study.records import (
    Cell,
    Record,
    cpu_count,
    fill_gap,
    fill_ideal,
    finish_record,
    is_oversubscribed,
    latest,
    read_records,
)

SWEEP_SCHEMA = "trafficdl-sweep"


class SweepError(TrafficdlError):
    """An invalid grid or a sweep directory that cannot be resumed."""


@dataclass(frozen=True)
class Window:
    """A commit window: every `batches` mini-batches, every `epochs` epochs, or once ("all")."""

    label: str
    batches: int = 0
    epochs: float = 0.0
    whole: bool = False

    @classmethod
    def parse(cls, text: str) -> Window:
        t = text.strip().lower()
        try:
            if t == "all":
                return cls("all", whole=True)
            if t.endswith("b") and int(t[:-1]) >= 1:
                return cls(f"{int(t[:-1])}b", batches=int(t[:-1]))
            if t.endswith("e") and float(t[:-1]) > 0:
                return cls(f"{float(t[:-1]):g}e", epochs=float(t[:-1]))
        except ValueError:
            pass
        raise SweepError(
            f"bad window {text!r}: use <n>b (mini-batches), <x>e (epochs) or all, e.g. 7b,1e,all"
        )

    def apply(self, train: TrainConfig, dist: DistConfig) -> DistConfig:
        if self.batches:
            return replace(dist, window=self.batches)
        return replace(dist, window=0, window_epochs=train.epochs if self.whole else self.epochs)


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep; N = 0 in `workers` is the centralized baseline."""

    models: tuple[str, ...] = ("cnn1d",)
    workers: tuple[int, ...] = (0, 1, 2, 4, 8, 16)
    windows: tuple[str, ...] = ("1e",)
    algorithms: tuple[str, ...] = ("aeasgd",)
    presets: tuple[str, ...] = ("paper",)
    folds: int = 10

    def __post_init__(self) -> None:
        if not self.models or not self.workers:
            raise SweepError("the grid needs at least one model and one N")
        if any(n < 0 for n in self.workers):
            raise SweepError("N must be >= 0 (0 is the centralized baseline)")
        if self.folds < 1:
            raise SweepError("folds must be >= 1 (1: a single stratified hold-out)")
        for w in self.windows:
            Window.parse(w)
        for p in self.presets:
            presets.get(p)

    def cells(self) -> list[Cell]:
        out: list[Cell] = []
        for model in self.models:
            if 0 in self.workers:
                out.append(Cell(model, 0))
            for preset in self.presets:
                for algorithm in self.algorithms:
                    for window in self.windows:
                        label = Window.parse(window).label
                        out += [
                            Cell(model, n, label, algorithm, preset)
                            for n in sorted(set(self.workers))
                            if n > 0
                        ]
        return out


@dataclass
class CellTask:
    """Everything a cell runner needs for one fold; rows are dataset indices."""

    cell: Cell
    fold: int
    folds: int
    dataset: Path
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_cfg: TrainConfig
    dist_cfg: DistConfig
    work_dir: Path


@dataclass
class CellResult:
    """What a cell runner measured; cost and ideal figures are derived by the sweep."""

    t_s: float
    wtpe_s: float
    epochs: int
    accuracy: float
    macro_recall: float
    macro_f: float
    confusion: list[list[int]]
    labels: list[str]
    threads: int = 1
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)
    runner: str = ""  # overrides the sweep's runner name (e.g. a local cell in a cluster sweep)


CellRunner = Callable[[CellTask], CellResult]


def fold_indices(
    labels: np.ndarray, folds: int, seed: int, test_fraction: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The paper's stratified k-fold, or one stratified hold-out when folds == 1."""
    if folds == 1:
        return [train_test_split(labels, test_fraction, seed)]
    counts = np.bincount(np.asarray(labels))
    if counts[counts > 0].min() < folds:
        raise SweepError(
            f"a class has {counts[counts > 0].min()} objects: too few for "
            f"{folds} folds (lower --folds)"
        )
    return stratified_kfold(labels, folds, seed)


def _pin(dataset: Dataset, train: TrainConfig, dist: DistConfig, folds: int) -> dict[str, Any]:
    return {
        "dataset": {"n_objects": len(dataset), "labels": dataset.label_names},
        "train_config": to_dict(train),
        "dist_config": to_dict(dist),
        "folds": folds,
    }


def _check_resumable(out: Path, pin: dict[str, Any]) -> None:
    meta = out / "sweep.json"
    if not meta.is_file():
        return
    old = json.loads(meta.read_text())
    for key, value in pin.items():
        if json.loads(json.dumps(value)) != old.get("pin", {}).get(key):
            raise SweepError(
                f"{out} holds a sweep with another {key.replace('_', ' ')}; "
                "use a new --out directory (records are only comparable "
                "within one setting)"
            )


def _period(train_rows: int, n: int, train: TrainConfig, dist: DistConfig) -> tuple[int, float]:
    """(window in mini-batches, period in epochs) for a worker holding train_rows / N rows."""
    if n == 0:
        return 0, 0.0
    per_worker = math.ceil(train_rows / n)
    bpe = max(1, math.ceil(per_worker / train.batch_size))
    window = dist.window_batches(bpe)
    return window, window / bpe


def run_sweep(
    dataset_path: str | Path,
    grid: Grid,
    train_cfg: TrainConfig,
    dist_cfg: DistConfig,
    out_dir: str | Path,
    runner: CellRunner,
    *,
    runner_name: str = "local",
    console: Console | None = None,
    quiet: bool = False,
) -> list[Record]:
    """Run every missing (cell, fold) of `grid`; returns all records of the directory.

    Cells train exactly `train_cfg.epochs` epochs on all of the fold's training rows
    (no validation split, no early stop): the paper's figures compare N and F at a
    fixed epoch count, which a per-cell plateau would blur."""
    train_cfg = replace(train_cfg, val_fraction=0.0, patience=0)
    dataset = Dataset.open(dataset_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pin = _pin(dataset, train_cfg, dist_cfg, grid.folds)
    _check_resumable(out, pin)
    (out / "sweep.json").write_text(
        json.dumps(
            {
                "schema": SWEEP_SCHEMA,
                "dataset": str(Path(dataset_path).resolve()),
                "pin": pin,
                "grid": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in grid.__dict__.items()
                },
            },
            indent=2,
            sort_keys=True,
        )
    )
    rec_file = out / "records.jsonl"
    records = read_records(rec_file) if rec_file.is_file() else []
    done = {r.key for r in latest(records) if r.done}
    splits = fold_indices(
        np.asarray(dataset.labels), grid.folds, train_cfg.seed, train_cfg.test_fraction
    )
    todo = [(c, f) for c in grid.cells() for f in range(grid.folds) if (c.id, f) not in done]
    console = console or Console(stderr=True, quiet=quiet)
    cores = cpu_count()
    worst = max(grid.workers)
    if is_oversubscribed(worst, 1, cores):
        console.print(
            f"[yellow]warning:[/] N = {worst} workers (+ master) on {cores} cores: "
            "oversubscribed — timings will not show scaling, accuracy still holds"
        )
    console.print(
        f"sweep: {len(grid.cells())} cells x {grid.folds} folds, "
        f"{len(done)} done, {len(todo)} to run → {out}"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("sweep", total=len(todo))
        for cell, fold in todo:
            bar.update(task, description=f"{cell.id} fold {fold + 1}/{grid.folds}")
            rec = _run_one(
                cell,
                fold,
                grid,
                splits[fold],
                dataset,
                train_cfg,
                dist_cfg,
                out,
                runner,
                runner_name,
                records,
            )
            records.append(rec)
            with rec_file.open("a") as fh:
                fh.write(rec.to_json() + "\n")
            console.print(_line(rec))
            bar.advance(task)
    return records


def _run_one(
    cell: Cell,
    fold: int,
    grid: Grid,
    split: tuple[np.ndarray, np.ndarray],
    dataset: Dataset,
    train_cfg: TrainConfig,
    dist_cfg: DistConfig,
    out: Path,
    runner: CellRunner,
    runner_name: str,
    records: Sequence[Record],
) -> Record:
    train_idx, test_idx = split
    train, dist = replace(train_cfg, model=cell.model), replace(dist_cfg, workers=cell.workers)
    if not cell.centralized:
        dist = Window.parse(cell.window).apply(train, replace(dist, algorithm=cell.algorithm))
        train, dist = presets.apply(cell.preset, train, dist, cell.workers)
    window, period = _period(len(train_idx), cell.workers, train, dist)
    work = out / "cells" / cell.id / f"fold-{fold}"
    if work.exists():  # an interrupted or failed attempt: start clean
        shutil.rmtree(work)
    work.mkdir(parents=True)
    rec = Record(
        cell=cell.id,
        model=cell.model,
        workers=cell.workers,
        window=cell.window,
        algorithm=cell.algorithm,
        preset=cell.preset,
        fold=fold,
        folds=grid.folds,
        window_batches=window,
        period_epochs=period,
        window_in_batches=bool(dist.window) and not cell.centralized,
        train_size=len(train_idx),
        test_size=len(test_idx),
        cpu_count=cpu_count(),
        runner=runner_name,
        started=time.time(),
    )
    task = CellTask(cell, fold, grid.folds, dataset.path, train_idx, test_idx, train, dist, work)
    try:
        res = runner(task)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one broken cell must not lose the rest of a long sweep
        rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
        rec.finished = time.time()
        return rec
    for name in (
        "t_s",
        "wtpe_s",
        "epochs",
        "accuracy",
        "macro_recall",
        "macro_f",
        "confusion",
        "labels",
        "threads",
        "device",
        "extra",
    ):
        setattr(rec, name, getattr(res, name))
    rec.runner = res.runner or runner_name
    rec.finished = time.time()
    finish_record(rec, (dist.worker_price, dist.master_price), dist.currency)
    return fill_gap(fill_ideal(rec, records), records)


def _line(rec: Record) -> str:
    head = escape(f"{rec.cell} fold {rec.fold + 1}/{rec.folds}")
    if not rec.done:
        return f"[red]✗[/] {head}: {escape(rec.error)}"
    flag = " [yellow](oversubscribed)[/]" if rec.oversubscribed else ""
    return (
        f"[green]✓[/] {head}: F={rec.macro_f:.3f} acc={rec.accuracy:.3f} "
        f"WTPE={rec.wtpe_s:.2f}s T={rec.t_s:.1f}s cost={rec.cost:.4f} {rec.currency}{flag}"
    )
