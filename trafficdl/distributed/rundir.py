"""The run directory of a distributed run: what run.json holds and how history is summarised.

Shared by the master (which writes it) and the launcher/sweeps (which read it),
so the schema lives in one place:

    RUN_DIR/checkpoint.pt   final centre model (trafficdl.training.checkpoint: `classify` loads it)
    RUN_DIR/history.json    {"epochs": per-epoch records, "commits": every folded commit}
    RUN_DIR/metrics.json    classification figures on the held-out test rows
    RUN_DIR/run.json        configs, split, T, WTPE, ideal T1/N, cost, ideal cost,
                            node-hours, exchange counts, figures (see `summary`)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from trafficdl.atomic import atomic_file
from trafficdl.cost import ideal_cost, ideal_seconds, wtpe
from trafficdl.distributed.spec import RunSpec

SCALARS = ("accuracy", "macro_recall", "macro_precision", "macro_f1")


def epoch_history(commits: list[dict[str, Any]], epochs: int) -> list[dict[str, Any]]:
    """Per-epoch records from the commit log: mean loss/accuracy of the commits that
    fall in each epoch, the time the epoch's last commit was folded, and that
    epoch's duration (its WTPE). Epochs without a commit (windows > 1 epoch) are absent."""
    out: list[dict[str, Any]] = []
    prev = 0.0
    for e in range(1, epochs + 1):
        rows = [c for c in commits if e - 1 < c["epoch"] <= e + 1e-9]
        if not rows:
            continue
        end = max(c["seconds"] for c in rows)
        out.append(
            {
                "epoch": e,
                "loss": _mean(c["loss"] for c in rows),
                "accuracy": _mean(c["accuracy"] for c in rows),
                "commits": len(rows),
                "time": end,
                "seconds": end - prev,
            }
        )
        prev = end
    return out


def summary(
    spec: RunSpec,
    *,
    training_seconds: float,
    figures: dict[str, Any],
    commits: list[dict[str, Any]],
    counters: dict[str, Any],
    split: dict[str, Any],
    t1_seconds: float | None = None,
) -> dict[str, Any]:
    """run.json's content: the paper's three dimensions for this run."""
    n, d = spec.dist.workers, spec.dist
    stale = [c["staleness"] for c in commits]
    run: dict[str, Any] = {
        "mode": "distributed",
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "train_config": _plain(spec.train),
        "dist_config": _plain(spec.dist),
        "workers": n,
        "cpus": os.cpu_count(),  # N > cpus: an oversubscribed run, timings are contention
        "algorithm": d.algorithm,
        "synchronous": d.synchronous,
        "model": spec.train.model,
        "model_version": spec.model_version,
        "epochs": spec.train.epochs,
        "split": split,
        "training_seconds": training_seconds,
        "wtpe_seconds": wtpe(training_seconds, spec.train.epochs),
        "t1_seconds": t1_seconds,
        "ideal_seconds": None,
        "overhead_over_ideal": None,
        "cost": spec.cost_of(training_seconds),
        "ideal_cost": None,
        "currency": d.currency,
        "prices": {"worker": d.worker_price, "master": d.master_price, "node_type": d.node_type},
        "node_hours": spec.node_hours_of(training_seconds),
        "rescales": [dict(r) for r in spec.rescales],  # elastic world-size changes
        "staleness": {
            "mean": sum(stale) / len(stale) if stale else 0.0,
            "max": max(stale, default=0),
        },
        **counters,
        "figures": {k: figures[k] for k in SCALARS},
        "confusion": figures["confusion"],
        "labels": figures["labels"],
    }
    if t1_seconds:
        ideal = ideal_seconds(t1_seconds, n)
        run["ideal_seconds"] = ideal
        run["overhead_over_ideal"] = training_seconds / ideal if ideal > 0 else None
        run["ideal_cost"] = ideal_cost(t1_seconds, n, d.worker_price, d.master_price)
    return run


def write_json(path: Path, data: Any) -> None:
    """Atomic, durable JSON write (trafficdl.atomic): a reader never sees half a file."""
    text = json.dumps(_clean(data), indent=2, allow_nan=False)
    with atomic_file(path) as f:
        f.write(text.encode())


def read_run(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "run.json").read_text())


def _plain(cfg: Any) -> dict[str, Any]:
    from trafficdl.config import to_dict

    return to_dict(cfg)


def _mean(values: Any) -> float | None:
    real = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return sum(real) / len(real) if real else None


def _clean(obj: Any) -> Any:
    """NaN/inf (no loss yet) become null: strict JSON for every reader."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
