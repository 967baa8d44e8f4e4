"""Whole centralized runs: dataset rows + TrainConfig → a trained Trainer / a run directory.

`train_model` is the one recipe (seed, split off validation, build model,
fit the input adapter on training rows, train) used by `trafficdl train`, by
each fold of `trafficdl evaluate`, and by benchmarks. `run_centralized` adds
the hold-out test split and writes the run directory:

    RUN_DIR/checkpoint.pt   the model (see checkpoint.py)
    RUN_DIR/history.json    per-epoch records (loss, accuracy, val, WTPE seconds)
    RUN_DIR/metrics.json    figures on the held-out test rows
    RUN_DIR/run.json        configs, dataset, device, split sizes, timings
    RUN_DIR/history.png     loss/accuracy per epoch; confusion.png: test confusion in %
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trafficdl.config import DistConfig, TrainConfig, to_dict
from trafficdl.cost import cost
from trafficdl.dataset import Dataset
from trafficdl.models import build_model, input_adapter
from trafficdl.training.data import fit_adapter, load_split, run_split, split_validation
from trafficdl.training.evaluate import evaluate_model
from trafficdl.training.progress_bar import Reporter
from trafficdl.training.runtime import seed_everything, select_device, set_threads
from trafficdl.training.trainer import CheckpointInfo, Trainer


def model_overrides(cfg: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """Model settings that follow the run config and the dataset's input sizes."""
    if cfg.model == "cnn1d":
        out: dict[str, Any] = {"dropout": cfg.dropout}
        if int(dataset.meta.get("payload_bytes", 0)) > 0:
            out["input_length"] = int(dataset.meta["payload_bytes"])
        return out
    if int(dataset.meta.get("packets", 0)) > 0:
        return {"packets": int(dataset.meta["packets"])}
    return {}


def checkpoint_info(dataset: Dataset) -> CheckpointInfo:
    return CheckpointInfo(
        extract_config=dataset.meta.get("extract_config"),
        dataset={"path": str(dataset.path), "n_objects": len(dataset)},
    )


def train_model(
    dataset: Dataset,
    cfg: TrainConfig,
    train_idx: np.ndarray,
    *,
    device: torch.device | None = None,
    reporter: Reporter | None = None,
    checkpoint_path: str | Path | None = None,
    fold: int = 0,
    resume: bool = False,
) -> Trainer:
    """Train a fresh model on these rows (minus a validation share); returns the Trainer."""
    set_threads(cfg.threads)
    seed_everything(cfg.seed + fold)
    fit_idx, val_idx = split_validation(
        dataset.labels, np.asarray(train_idx), cfg.val_fraction, cfg.seed
    )
    overrides = model_overrides(cfg, dataset)
    model = build_model(cfg.model, dataset.num_classes, **overrides)
    adapter = fit_adapter(dataset, fit_idx, input_adapter(cfg.model, **overrides))
    trainer = Trainer(
        model,
        cfg,
        load_split(dataset, fit_idx, adapter),
        model_name=cfg.model,
        adapter=adapter,
        label_names=dataset.label_names,
        val=load_split(dataset, val_idx, adapter) if len(val_idx) else None,
        device=device or select_device(cfg.device),
        reporter=reporter,
        checkpoint_path=checkpoint_path,
        checkpoint_info=checkpoint_info(dataset),
    )
    if resume and checkpoint_path is not None and Path(checkpoint_path).is_file():
        trainer.load_checkpoint(checkpoint_path)
    trainer.train()
    return trainer


def run_centralized(
    dataset_path: str | Path,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    reporter: Reporter | None = None,
    resume: bool = False,
    dist: DistConfig | None = None,
    init_offset: int = 0,
) -> dict[str, Any]:
    """Train on the hold-out training rows, test on the rest, write RUN_DIR; returns metrics.

    `init_offset` seeds the model's initialization with cfg.seed + init_offset while the
    split and the batch order stay cfg.seed's: a second reference on the same rows, whose
    distance from the first is the noise floor of comparing two runs (bench_floor).

    run.json carries the same time/cost/accuracy keys as a distributed run's
    (trafficdl.distributed.rundir.summary) so runs compare side by side; the
    centralized baseline is one node billed at the worker price (`dist`
    supplies prices; defaults are the paper's DS4v2)."""
    dataset = Dataset.open(dataset_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_idx, test_idx = run_split(dataset.labels, cfg)
    device = select_device(cfg.device)
    t0 = time.perf_counter()
    ckpt = out / "checkpoint.pt"
    trainer = train_model(
        dataset,
        cfg,
        train_idx,
        device=device,
        reporter=reporter,
        checkpoint_path=ckpt,
        resume=resume,
        fold=init_offset,  # train_model seeds with cfg.seed + fold
    )
    train_seconds = time.perf_counter() - t0
    figures = evaluate_model(trainer.model, dataset, test_idx, adapter=trainer.adapter)
    extra = {"test": _scalars(figures), "best_epoch": trainer.best_epoch,
             "stop_reason": trainer.stop_reason}  # fmt: skip
    trainer.save_checkpoint(ckpt, extra=extra)
    wtpe = [r["seconds"] for r in trainer.history]
    prices = dist or DistConfig()
    epochs_run = max(len(trainer.history), 1)
    # T counts the training passes, as a distributed run's T counts from the moment
    # its workers are all in until the last final commit: process start-up, dataset
    # opening and the final evaluation are outside both (wall_seconds has them here).
    seconds = float(sum(wtpe)) if wtpe else train_seconds
    run = {
        "mode": "centralized",
        "workers": 0,
        "cpus": os.cpu_count(),
        "model": cfg.model,
        "epochs": cfg.epochs,
        "algorithm": None,
        "training_seconds": seconds,
        "wall_seconds": train_seconds,
        "wtpe_seconds": seconds / epochs_run,
        "cost": cost(1, seconds, prices.worker_price, 0.0),
        "node_hours": seconds / 3600.0,
        "currency": prices.currency,
        "prices": {"worker": prices.worker_price, "master": None, "node_type": prices.node_type},
        "figures": _scalars(figures),
        "confusion": figures["confusion"],
        "labels": figures["labels"],
        "train_config": to_dict(cfg),
        "dist_config": None,
        "dataset": str(dataset.path),
        "device": str(device),
        "split": {"train": len(train_idx), "test": len(test_idx)},
        "epochs_run": len(trainer.history),
        "stopped_early": trainer.stopped_early,
        "stop_reason": trainer.stop_reason,
        "best_epoch": trainer.best_epoch,
        "wtpe_median_s": float(np.median(wtpe)) if wtpe else None,
    }
    _write_json(out / "history.json", trainer.history)
    _write_json(out / "metrics.json", figures)
    _write_json(out / "run.json", run)
    from trafficdl import plots

    plots.plot_history(trainer.history, out / "history.png", title=f"{cfg.model} training")
    plots.plot_confusion(figures["confusion"], figures["labels"], out / "confusion.png",
                         title=f"{cfg.model}, held-out test rows (% of true app)")  # fmt: skip
    return {"metrics": figures, "run": run, "checkpoint": str(ckpt)}


def _scalars(figures: dict[str, Any]) -> dict[str, float]:
    return {k: figures[k] for k in ("accuracy", "macro_recall", "macro_precision", "macro_f1")}


def _write_json(path: Path, data: Any) -> None:
    """Atomic and durable (a temp name of its own, fsync, rename): never half a file."""
    from trafficdl.atomic import atomic_file

    with atomic_file(path) as f:
        f.write(json.dumps(data, indent=2).encode())
