"""What the train/evaluate/classify/model-info commands print and write.

Kept out of the command module so the commands stay a thin flag → config
layer, and so tests can call these directly. Tables are rich tables on
stdout; files are JSON and PNG in the run or evaluation directory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from trafficdl.config import TrainConfig, to_dict
from trafficdl.errors import TrafficdlError
from trafficdl.training.classify import Prediction


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


# ------------------------------------------------------------------ train


def print_train_summary(result: dict[str, Any], out: Path) -> None:
    """Test figures, epochs/WTPE and where the run went (centralized or distributed)."""
    console = _console()
    m, run = result.get("metrics") or {}, result.get("run") or {}
    if "macro_f1" in m:
        console.print(
            f"test: accuracy {m['accuracy']:.4f}  macro recall {m['macro_recall']:.4f}  "
            f"macro F {m['macro_f1']:.4f}  ({m.get('n', '?')} objects)"
        )
    seconds = run.get("training_seconds")
    if isinstance(seconds, int | float):  # the same keys for centralized and distributed runs
        workers = run.get("workers") or 0
        where = f"{workers} workers ({run.get('algorithm')})" if workers else "centralized"
        console.print(
            f"{where}: T {seconds:.1f} s, WTPE {run.get('wtpe_seconds', 0.0):.2f} s, "
            f"cost {run.get('cost', 0.0):.5f} {run.get('currency', '')}, "
            f"node-hours {run.get('node_hours', 0.0):.4f}"
        )
    ex = run.get("exchange") or {}
    if ex.get("blocked_fraction") is not None:
        how = "overlapped" if ex.get("overlap") else "waited for"
        console.print(
            f"exchanges {how}: workers blocked {ex['blocked_fraction']:.1%} of their loop"
            + (f", {ex['lag_batches_mean']:.1f} batches of lag per commit" if ex["overlap"] else "")
        )
    near, n = ex.get("data_plane_ranks"), run.get("workers") or 0
    if "data_plane_ranks" in ex and n:
        console.print(
            "tensors moved over gRPC (the master offered no same-node data plane)"
            if near is None
            else f"tensors moved through the same-node data plane for all {n} workers"
            if len(near) >= n
            else f"tensors moved through the same-node data plane for {len(near)} of {n} "
            "workers, over gRPC for the others"
        )  # fmt: skip
    if run.get("stop_reason"):
        best = run.get("best_epoch")
        console.print(
            f"epochs run {run.get('epochs_run', '?')} of at most {run.get('epochs', '?')}"
            + (f", best (kept) epoch {best}" if best is not None else "")
            + f": {run['stop_reason']}"
        )
    console.print(f"run directory: {out}  (checkpoint: {result.get('checkpoint')})")


# --------------------------------------------------------------- evaluate


def _figures_table(summary: dict[str, Any], title: str) -> Table:
    """Per-app precision/recall/F; cells are mean ± std over folds, or plain values."""
    table = Table(title=title)
    for col in ("app", "precision", "recall", "F"):
        table.add_column(col, justify="left" if col == "app" else "right")

    def cell(v: Any) -> str:
        return f"{v['mean']:.3f} ± {v['std']:.3f}" if isinstance(v, dict) else f"{v:.3f}"

    for app, pc in summary["per_class"].items():
        table.add_row(app, cell(pc["precision"]), cell(pc["recall"]), cell(pc["f1"]))
    return table


def _scalars_line(s: dict[str, Any]) -> str:
    parts = []
    for key, name in (
        ("accuracy", "accuracy"),
        ("macro_recall", "macro recall"),
        ("macro_precision", "macro precision"),
        ("macro_f1", "macro F"),
    ):
        v = s[key]
        parts.append(
            f"{name} {v['mean']:.4f} ± {v['std']:.4f}" if isinstance(v, dict) else f"{name} {v:.4f}"
        )
    return "  ".join(parts)


def run_evaluation(
    dataset_path: Path,
    cfg: TrainConfig,
    folds: int,
    out: Path,
    *,
    checkpoint: Path | None = None,
    progress: bool = True,
    figures: bool | None = None,
) -> dict[str, Any]:
    """`evaluate`: k-fold CV (or one checkpoint), JSON + plots under `out`; returns the JSON.
    `progress` shows the progress bar, `figures` prints the figures (default: as progress)."""
    figures = progress if figures is None else figures
    from trafficdl import plots
    from trafficdl.dataset import Dataset
    from trafficdl.evaluation import most_confused_pair
    from trafficdl.training.crossval import cross_validate

    dataset = Dataset.open(dataset_path)
    out.mkdir(parents=True, exist_ok=True)
    console = _console()
    if checkpoint is not None:
        result = _evaluate_checkpoint(dataset, checkpoint)
        plots.plot_confusion(result["confusion"], result["labels"], out / "confusion.png")
        _write(out / "metrics.json", result)
        if figures:
            console.print(_scalars_line(result) + f"  ({result['rows']} rows, {result['n']})")
            console.print(_figures_table(result, "per app"))
        return result

    def on_fold(fold: int, f: dict[str, Any]) -> None:
        if figures:
            console.print(f"fold {fold + 1}/{folds}: " + _scalars_line(f))

    from trafficdl.training.progress_bar import NullReporter, RichReporter

    factory = RichReporter if progress else NullReporter
    from trafficdl.training.runtime import select_device

    cv = cross_validate(
        dataset,
        cfg,
        folds,
        device=select_device(cfg.device),
        on_fold=on_fold,
        reporter_factory=factory,
    )
    summary = cv["summary"]
    a, b, rate = most_confused_pair(summary)
    result = {
        "dataset": str(dataset.path),
        "train_config": to_dict(cfg),
        "k": folds,
        "summary": summary,
        "most_confused": {"apps": [a, b], "rate": rate},
        "folds": cv["folds"],
    }
    plots.plot_confusion(
        summary["confusion"],
        summary["labels"],
        out / "confusion.png",
        title=f"{cfg.model}, {folds} folds pooled (% of true app)",
    )
    for f in cv["folds"]:
        plots.plot_confusion(
            f["confusion"], f["labels"], out / f"confusion_fold{f['fold'] + 1}.png"
        )
    plots.plot_fold_metrics(cv["folds"], out / "folds.png", title=f"{cfg.model}: {folds}-fold CV")
    _write(out / "cv.json", result)
    if figures:
        console.print(_scalars_line(summary))
        console.print(_figures_table(summary, f"per app, mean ± std over {folds} folds"))
        console.print(f"most confused: {a} ↔ {b} ({100 * rate:.2f}% of their objects)")
        console.print(f"written: {out}/cv.json, confusion.png, folds.png")
    return result


def _evaluate_checkpoint(dataset: Any, path: Path) -> dict[str, Any]:
    from trafficdl.dataset import train_test_split
    from trafficdl.training.checkpoint import load_checkpoint
    from trafficdl.training.evaluate import evaluate_model

    ckpt = load_checkpoint(path)
    if list(ckpt.label_names) != list(dataset.label_names):
        raise TrafficdlError(
            f"{path}: model apps {ckpt.label_names} differ from the dataset's {dataset.label_names}"
        )
    rows, which = np.arange(len(dataset)), "all"
    same = ckpt.dataset.get("n_objects") == len(dataset) and ckpt.train_config is not None
    if same:  # the model's own dataset: score only the rows it did not train on
        tc = ckpt.train_config
        rows, which = train_test_split(dataset.labels, tc.test_fraction, tc.seed)[1], "test"
    figures = evaluate_model(ckpt.build_model(), dataset, rows, adapter=ckpt.adapter)
    return {**figures, "rows": which, "checkpoint": str(path)}


# --------------------------------------------------------------- classify

PROTO_NAMES = {6: "TCP", 17: "UDP"}
COLUMNS = ("capture", "proto", "src", "sport", "dst", "dport", "packets", "app", "confidence")


def render_predictions(rows: list[Prediction], fmt: str, output: Path | None) -> None:
    """Rows as a table, CSV or JSON, to `output` or stdout; table adds per-app counts."""
    if fmt == "json":
        text = json.dumps([r.as_dict() for r in rows], indent=2) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow((*COLUMNS, "best"))
        for r in rows:
            d = r.as_dict()
            writer.writerow([*(d[c] for c in COLUMNS[:-1]), f"{r.confidence:.4f}", r.best])
        text = buf.getvalue()
    else:
        table = Table(title=f"{len(rows)} objects")
        for col in COLUMNS:
            table.add_column(
                col,
                justify="right" if col in ("sport", "dport", "packets", "confidence") else "left",
            )
        for r in rows:
            d = r.as_dict()
            d["proto"] = PROTO_NAMES.get(r.proto, r.proto)  # people read TCP/UDP, not 6/17
            table.add_row(*(str(d[c]) for c in COLUMNS[:-1]), f"{r.confidence:.3f}")
        counts = Counter(r.app for r in rows)
        console = Console(file=io.StringIO(), width=160, highlight=False)
        console.print(table)
        console.print("per app: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
        text = console.file.getvalue()  # type: ignore[attr-defined]
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


# ------------------------------------------------------------- model-info


def model_summary(name: str, classes: int) -> dict[str, Any]:
    from trafficdl.models import (
        build_model,
        config_dict,
        count_parameters,
        fingerprint,
        layer_table,
    )
    from trafficdl.models import input_adapter as make_adapter

    model = build_model(name, classes)
    adapter = make_adapter(name)
    shape = [adapter.length] if adapter.kind == "payload" else [adapter.length, adapter.fields]
    return {
        "model": name,
        "classes": classes,
        "input": {"kind": adapter.kind, "shape": shape},
        "config": config_dict(model),
        "layers": layer_table(model),
        "parameters": count_parameters(model),
        "fingerprint": fingerprint(model),
    }


def print_model_summary(s: dict[str, Any]) -> None:
    table = Table(title=f"{s['model']} for L={s['classes']} apps, input {s['input']['shape']}")
    for col in ("layer", "type", "settings", "output", "parameters"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for row in s["layers"]:
        out = "x".join(map(str, row["output"]))
        table.add_row(row["name"], row["type"], row["settings"], out, f"{row['params']:,}")
    table.add_row("total", "", "", "", f"{s['parameters']:,}")
    console = _console()
    console.print(table)
    console.print(f"parameters: {s['parameters']:,}  fingerprint: {s['fingerprint']}")


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=float))
