"""Macro F of distributed runs against a centralized run on the same split, seed by seed.

For every seed the centralized reference and each distributed configuration
train on the same stratified hold-out split (TrainConfig.seed drives split,
partition, init and shuffling) with the same epoch budget and the default
stopping rule (the CLI's: a 10% validation share, stop after 20 epochs without
a better validation loss, keep the best of the weights' 2.5-epoch averages; the
epochs each run took are in the row's note), and every seed is
reported (value = distributed macro F, peer = centralized macro F of that
seed, ratio = the fraction kept), followed by the worst seed of each
configuration — a user who scales out gets one seed, not the mean.

Data: synthetic per-app captures (trafficdl synth: TLS/QUIC/DNS profiles with
a confusable facebook~messenger pair) extracted to biflows; the LSTM, whose
runs stay short enough to repeat over seeds on 2 cores. Modes: full = the
robust preset at N = 2, 4, 8 and 16 and the paper's setting at N = 16, 5 seeds,
the CLI's budget of at most 150 epochs, 6 apps x 200 biflows (the docs' figure;
~45 minutes here alone, ~60 beside bench_harder); quick = every configuration at
N = 4, 3 seeds, at most 80 epochs, 6 apps x 100; smoke = N 2, 1 seed, 3 epochs.
On this 2-core machine N = 16 is 17 processes: accuracy is meaningful,
timings are not (no timing figure is reported here).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from bench.table import Row, pick
from trafficdl.capture import ExtractConfig
from trafficdl.capture.extract import extract_dataset
from trafficdl.config import CONVERGING, DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local
from trafficdl.evaluation import macro_f1_stderr
from trafficdl.study import presets
from trafficdl.synth import synthesize
from trafficdl.training.run import run_centralized

MODEL = "lstm"
LR = 0.003
OTHER_INIT = 1000  # the floor's second centralized run initializes with seed + OTHER_INIT
# A configuration is a preset, optionally with "--overlap" (exchanges in the background:
# the check that their extra staleness leaves macro F where the blocking run has it).
PRESETS = ("paper", "robust", "robust --overlap")


def _dataset(root: Path, apps: int, flows: int) -> Path:
    synthesize(root / "captures", apps=apps, flows_per_app=flows, seed=11)
    extract_dataset([root / "captures"], root / "ds", ExtractConfig(), jobs=1, progress=False)
    return root / "ds"


def _macro_f(run: dict) -> float:
    return float(run["figures"]["macro_f1"])


Cell = tuple[int, str]  # (N workers, configuration)


def measure(
    root: Path,
    ds: Path,
    *,
    cells: list[Cell],
    seeds: list[int],
    epochs: int,
    floor: bool = False,
    model: str = MODEL,
    lr: float = LR,
    first_seeds: dict[Cell, int] | None = None,
) -> tuple[dict[Cell | str, dict[int, float]], dict[Cell | str, dict[int, float]],
           dict[int, float]]:  # fmt: skip
    """(macro F, epochs run) per cell (and "centralized") and seed, and per seed the
    centralized macro F's bootstrap standard error over its test rows. With `floor`,
    also "floor": a second centralized run of each seed from another initialization
    (bench_floor's), the resolution of the comparison. `first_seeds` runs a cell only
    on the first k seeds (a cell too slow to repeat on every seed here)."""
    extra = ("floor",) if floor else ()
    f: dict[Cell | str, dict[int, float]] = {c: {} for c in ("centralized", *extra, *cells)}
    ran: dict[Cell | str, dict[int, float]] = {c: {} for c in f}
    stderr: dict[int, float] = {}
    for seed in seeds:
        stop = {**CONVERGING, "epochs": epochs}  # the CLI's plateau rule, this mode's budget
        train = TrainConfig(model=model, lr=lr, seed=seed, threads=1, **stop)
        ref = run_centralized(ds, train, root / f"c{seed}")["run"]
        f["centralized"][seed], ran["centralized"][seed] = _macro_f(ref), ref["epochs_run"]
        stderr[seed] = macro_f1_stderr(ref["confusion"])
        if floor:
            other = run_centralized(ds, train, root / f"o{seed}", init_offset=OTHER_INIT)["run"]
            f["floor"][seed], ran["floor"][seed] = _macro_f(other), other["epochs_run"]
        for workers, name in cells:
            if seed not in seeds[: (first_seeds or {}).get((workers, name), len(seeds))]:
                continue
            preset, _, flag = name.partition(" ")
            t, d = presets.apply(preset, train, DistConfig(workers=workers), workers)
            d = replace(d, threads_per_worker=1, overlap=flag == "--overlap")
            out = root / f"n{workers}-{name.replace(' --', '-')}{seed}"
            run = run_local(ds, t, d, out, progress=False).run
            cell = (workers, name)
            f[cell][seed], ran[cell][seed] = _macro_f(run), float(run["epochs_run"])
    return f, ran, stderr


def rows_of(
    f: dict[Cell | str, dict[int, float]],
    epochs: int,
    ran: dict[Cell | str, dict[int, float]] | None = None,
    stderr: dict[int, float] | None = None,
    bench: str = "convergence",
    model: str = MODEL,
) -> list[Row]:
    rows: list[Row] = []
    ref = f["centralized"]
    for cell in (c for c in f if c != "centralized"):
        if cell == "floor":
            label = f"{model} macro F, centralized from another initialization (the floor)"
        else:
            assert isinstance(cell, tuple)
            workers, name = cell
            label = f"{model} macro F, N={workers}, --preset {name}"
        label += f", at most {epochs} epochs"
        for seed, value in sorted(f[cell].items()):
            note = "same split, epoch budget and stopping rule"
            if ran is not None:
                note += (f"; epochs run {ran[cell][seed]:.1f} "
                         f"(centralized {ran['centralized'][seed]:.0f})")  # fmt: skip
            if stderr is not None:
                note += f"; centralized F's test-set standard error {stderr[seed]:.3f}"
            rows.append(Row(bench, f"{label}, seed {seed}", value, "macro F",
                            f"centralized, seed {seed}", ref[seed], note))  # fmt: skip
        worst = min(f[cell], key=lambda s: f[cell][s] / max(ref[s], 1e-9))
        rows.append(Row(bench, f"{label}, worst of {len(f[cell])} seeds", f[cell][worst],
                        "macro F", f"centralized, seed {worst}", ref[worst],
                        f"seed {worst}; ratio = fraction of centralized F kept"))  # fmt: skip
    return rows


# full: the robust preset at every N the issue names, the paper's setting where the paper
# measured its loss (N = 16); quick: every configuration at N = 4.
FULL_CELLS: list[Cell] = [(n, "robust") for n in (2, 4, 8, 16)] + [(16, "paper")]
QUICK_CELLS: list[Cell] = [(4, c) for c in PRESETS]


def run(quick: bool) -> list[Row]:
    cells, n_seeds, epochs, flows = pick(
        full=(FULL_CELLS, 5, CONVERGING["epochs"], 200),
        quick=(QUICK_CELLS, 3, 80, 100),
        smoke=([(2, c) for c in PRESETS], 1, 3, 30),
    )
    with tempfile.TemporaryDirectory(prefix="bench-convergence-") as tmp:
        ds = _dataset(Path(tmp), 6, flows)
        f, ran, stderr = measure(Path(tmp), ds, cells=cells, seeds=list(range(n_seeds)),
                                 epochs=epochs)  # fmt: skip
    return rows_of(f, epochs, ran, stderr)


if __name__ == "__main__":
    from bench.table import render, set_mode

    set_mode("smoke")
    print(render(run(quick=True)))
