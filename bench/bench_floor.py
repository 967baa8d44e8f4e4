"""The noise floor of bench_convergence: a centralized run against a second centralized run.

bench_convergence asks whether a distributed run keeps macro F within 2% of the
centralized run of the same seed. That comparison has a resolution of its own,
before any distributed training: two centralized runs on the same split, with
the same batch order, the same epoch budget and stopping rule, differing only in
the model's initialization (seed + 1000), land apart by as much as the gaps the
convergence benchmark reports. This benchmark measures that distance on the very
data and seeds of bench_convergence (value = the second run's macro F, peer = the
first's, ratio = the fraction kept; the note has the first run's test-set
standard error), and the worst seed, as the convergence rows do.

Modes follow bench_convergence: full = 5 seeds, 6 apps x 200 biflows, budget 150;
quick = 3 seeds, 6 x 100, budget 80; smoke = 1 seed, 6 x 30, 3 epochs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.bench_convergence import LR, MODEL, OTHER_INIT, _dataset, _macro_f
from bench.table import Row, pick
from trafficdl.config import CONVERGING, TrainConfig
from trafficdl.evaluation import macro_f1_stderr
from trafficdl.training.run import run_centralized


def run(quick: bool) -> list[Row]:
    n_seeds, epochs, flows = pick(full=(5, CONVERGING["epochs"], 200), quick=(3, 80, 100),
                                  smoke=(1, 3, 30))  # fmt: skip
    rows: list[Row] = []
    ratios: dict[int, tuple[float, float]] = {}
    label = f"{MODEL} macro F, centralized with another initialization, at most {epochs} epochs"
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        ds = _dataset(Path(tmp), 6, flows)
        for seed in range(n_seeds):
            train = TrainConfig(model=MODEL, lr=LR, seed=seed, threads=1,
                                **{**CONVERGING, "epochs": epochs})  # fmt: skip
            ref = run_centralized(ds, train, Path(tmp) / f"c{seed}")["run"]
            other = run_centralized(ds, train, Path(tmp) / f"o{seed}", init_offset=OTHER_INIT)
            f_ref, f_other = _macro_f(ref), _macro_f(other["run"])
            ratios[seed] = (f_other, f_ref)
            note = (f"same split, batch order, budget and stopping rule; epochs run "
                    f"{other['run']['epochs_run']} (first {ref['epochs_run']}); first run's "
                    f"test-set standard error {macro_f1_stderr(ref['confusion']):.3f}")  # fmt: skip
            rows.append(Row("floor", f"{label}, seed {seed}", f_other, "macro F",
                            f"centralized, seed {seed}", f_ref, note))  # fmt: skip
    worst = min(ratios, key=lambda s: ratios[s][0] / max(ratios[s][1], 1e-9))
    rows.append(Row("floor", f"{label}, worst of {n_seeds} seeds", ratios[worst][0], "macro F",
                    f"centralized, seed {worst}", ratios[worst][1],
                    f"seed {worst}; ratio = fraction of the first run's F kept"))  # fmt: skip
    return rows


if __name__ == "__main__":
    from bench.table import render, set_mode

    set_mode("smoke")
    print(render(run(quick=True)))
