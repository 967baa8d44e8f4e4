"""bench_convergence for the 1D-CNN: macro F of distributed runs against centralized, seed by seed.

The same comparison as bench_convergence (per seed: the centralized run, its
floor from another initialization, and the robust preset at each N, on the same
stratified split with the CLI's convergence rule: at most 150 epochs, a 10%
validation share, patience 20, the best of the weights' 2.5-epoch averages),
for the paper's 1D-CNN (5.86M parameters at 6 apps) at the learning rate a user
gets by default (TrainConfig's 1e-3).

Why a separate benchmark with its own sizes: every worker of the robust preset
takes as many optimizer steps per epoch as the centralized trainer (mini-batch
B/N), so a CNN epoch costs N Adam steps over 5.86M parameters per centralized
step, plus one exchange and one fold of the centre each. On the 2-core
machine that is ~6 s per epoch centralized, ~10 s at N = 4 and ~50 s at
N = 16 on 6 x 200 biflows (measured 2026-12-02): the LSTM's full grid would
take a day here. Modes: full = the issue's grid (robust at N = 2, 4, 8 and 16,
the paper's setting at N = 16, 5 seeds, 6 apps x 200 biflows): for a machine
with 16 cores, hours here; quick = robust at N = 2, 4 and 8 on 5 seeds and at
N = 16 on seeds 0 and 1, 6 x 100 biflows (120 test rows; 100 minutes here, the
committed figure); smoke = N 2, 1 seed, 3 epochs, 6 x 30.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.bench_convergence import Cell, _dataset, measure, rows_of
from bench.table import Row, pick
from trafficdl.config import CONVERGING, TrainConfig

MODEL = "cnn1d"
LR = TrainConfig().lr  # what a user gets without --lr
FULL_CELLS: list[Cell] = [(n, "robust") for n in (2, 4, 8, 16)] + [(16, "paper")]
QUICK_CELLS: list[Cell] = [(n, "robust") for n in (2, 4, 8, 16)]
QUICK_FIRST_SEEDS: dict[Cell, int] = {(16, "robust"): 2}  # 13-35 min a run here


def run(quick: bool) -> list[Row]:
    cells, n_seeds, epochs, flows, first = pick(
        full=(FULL_CELLS, 5, CONVERGING["epochs"], 200, {}),
        quick=(QUICK_CELLS, 5, CONVERGING["epochs"], 100, QUICK_FIRST_SEEDS),
        smoke=([(2, "robust")], 1, 3, 30, {}),
    )
    with tempfile.TemporaryDirectory(prefix="bench-convergence-cnn-") as tmp:
        ds = _dataset(Path(tmp), 6, flows)
        f, ran, stderr = measure(Path(tmp), ds, cells=cells, seeds=list(range(n_seeds)),
                                 epochs=epochs, floor=True, model=MODEL, lr=LR,
                                 first_seeds=first)  # fmt: skip
    return rows_of(f, epochs, ran, stderr, bench="convergence_cnn", model=MODEL)


if __name__ == "__main__":
    from bench.table import render, set_mode

    set_mode("smoke")
    print(render(run(quick=True)))
