"""Macro F of the robust preset against centralized on imbalanced, confusable, mislabeled data.

bench_convergence measures on balanced synthetic apps; captures a user labels
are not balanced and not clean. Here the same per-seed comparison (the CLI's
convergence rule for every run, same split, value = distributed macro F, peer =
centralized macro F of that seed) runs on data built to be harder, beside its
floor (the centralized run of each seed trained again from another
initialization: how far two runs of the same training land apart):

- imbalance like the paper's datasets: 6 synthetic apps with 8 captures each,
  of which facebook keeps 8, instagram 6, youtube 4, whatsapp 3, messenger 2
  and spotify 1 (8:1 between the largest and the smallest app);
- a confusable pair, imbalanced too: messenger shares facebook's TLS stack and
  servers (trafficdl synth) and has a quarter of its biflows;
- label noise: one more youtube capture is filed under whatsapp, so a quarter of
  whatsapp's rows are youtube traffic carrying whatsapp's label (as background
  traffic captured during a session does), beside the DNS flows every capture
  labels with its app.

Modes: full = 800 biflows per capture set (2,500 biflows, 500 test rows), the
robust preset at N = 4 and 16, 5 seeds, at most 150 epochs; quick = 200 per set,
N = 4, 2 seeds, at most 80 epochs; smoke = 40 per set, N = 2, 1 seed, 3 epochs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.bench_convergence import Cell, measure, rows_of
from bench.table import Row, pick
from trafficdl.capture import ExtractConfig
from trafficdl.capture.extract import extract_dataset
from trafficdl.config import CONVERGING
from trafficdl.synth import synthesize

CAPTURES = 8  # per app, before some are dropped
KEEP = {"facebook": 8, "instagram": 6, "youtube": 4, "whatsapp": 3, "messenger": 2, "spotify": 1}
MISLABELED = ("youtube", "whatsapp")  # one more capture of the first, filed under the second


def harder_dataset(root: Path, flows_per_app: int) -> Path:
    """Synthesize, drop captures to the imbalance of KEEP, misfile one capture; extract."""
    captures = root / "captures"
    synthesize(captures, apps=len(KEEP), flows_per_app=flows_per_app,
               captures_per_app=CAPTURES, seed=5)  # fmt: skip
    source, target = MISLABELED
    files = {app: sorted((captures / app).glob("*.pcap")) for app in KEEP}  # before moving
    for app, keep in KEEP.items():
        for i, path in enumerate(files[app][keep:]):
            if app == source and i == 0:
                shutil.move(path, captures / target / f"misfiled-{path.name}")
            else:
                path.unlink()
    extract_dataset([captures], root / "ds", ExtractConfig(), jobs=1, progress=False)
    return root / "ds"


def run(quick: bool) -> list[Row]:
    cells, n_seeds, epochs, flows = pick(
        full=([(4, "robust"), (16, "robust")], 5, CONVERGING["epochs"], 800),
        quick=([(4, "robust")], 2, 80, 200),
        smoke=([(2, "robust")], 1, 3, 40),
    )
    chosen: list[Cell] = cells
    with tempfile.TemporaryDirectory(prefix="bench-harder-") as tmp:
        ds = harder_dataset(Path(tmp), flows)
        f, ran, stderr = measure(Path(tmp), ds, cells=chosen, seeds=list(range(n_seeds)),
                                 epochs=epochs, floor=True)  # fmt: skip
    return rows_of(f, epochs, ran, stderr, bench="harder")


if __name__ == "__main__":
    from bench.table import render, set_mode

    set_mode("smoke")
    print(render(run(quick=True)))
