"""The paper's stratified k-fold protocol: one fresh model per fold, figures per fold.

trafficdl.dataset's stratified_kfold tests every object exactly once; the
folds are summarized by trafficdl.evaluation.summarize_folds (mean ± sample
std), as the paper reports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trafficdl.dataset import Dataset, stratified_kfold
from trafficdl.errors import TrafficdlError
from trafficdl.evaluation import summarize_folds
from trafficdl.training.evaluate import evaluate_model
from trafficdl.training.run import train_model


def cross_validate(
    dataset: Dataset,
    cfg: Any,
    k: int,
    *,
    device: torch.device | None = None,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    reporter_factory: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """The paper's protocol: k stratified folds, a fresh model trained on k-1 of them
    (cfg.val_fraction of those held out for early stopping) and tested on the last."""
    if k < 2:
        raise TrafficdlError("--folds must be >= 2")
    counts = np.bincount(np.asarray(dataset.labels))
    smallest = int(counts[counts > 0].min()) if counts.any() else 0
    if smallest < k:
        raise TrafficdlError(f"an app has only {smallest} objects: cannot make {k} folds")
    results = []
    for fold, (train_idx, test_idx) in enumerate(stratified_kfold(dataset.labels, k, cfg.seed)):
        t0 = time.perf_counter()
        reporter = reporter_factory() if reporter_factory else None
        trainer = train_model(dataset, cfg, train_idx, device=device, reporter=reporter, fold=fold)
        figures = evaluate_model(trainer.model, dataset, test_idx, adapter=trainer.adapter)
        figures["fold"] = fold
        figures["history"] = trainer.history
        figures["seconds"] = time.perf_counter() - t0
        results.append(figures)
        if on_fold is not None:
            on_fold(fold, figures)
    return {"k": k, "folds": results, "summary": summarize_folds(results)}
