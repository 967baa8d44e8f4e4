"""Classification figures the paper reports, and its stratified k-fold protocol.

Accuracy, macro recall (mean of per-app recalls), macro precision, macro F
(mean of per-app F), per-app precision/recall/F/support and the confusion
matrix (rows = true app, columns = predicted). Macro means run over the apps
present in the evaluated rows; an app never predicted has precision 0.
`cross_validate` trains one fresh model per fold (trafficdl.dataset's
stratified_kfold: every object tested exactly once) and reports each figure's
mean ± standard deviation over folds (sample std, ddof=1), as the paper does.
All figures are plain JSON-ready Python values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from trafficdl.dataset import Dataset, stratified_kfold
from trafficdl.errors import TrafficdlError
from trafficdl.models.adapters import InputAdapter

SCALARS = ("accuracy", "macro_recall", "macro_precision", "macro_f1")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    idx = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def figures_from_confusion(cm: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """All figures from a confusion matrix (so pooled folds use the same formulas)."""
    cm = np.asarray(cm, dtype=np.int64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    hits = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, hits / support, 0.0)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    total = int(support.sum())
    return {
        "accuracy": float(hits.sum() / total) if total else float("nan"),
        "macro_recall": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_precision": float(precision[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion": cm.tolist(),
        "labels": list(label_names),
        "n": total,
    }


def classification_figures(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    return figures_from_confusion(confusion_matrix(y_true, y_pred, len(label_names)), label_names)


def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    indices: np.ndarray,
    *,
    adapter: InputAdapter,
    label_names: Sequence[str] | None = None,
    batch_size: int = 512,
) -> dict[str, Any]:
    """Figures of `model` (on its device) over these dataset rows."""
    from trafficdl.training.data import load_split
    from trafficdl.training.loop import predict_logits

    split = load_split(dataset, indices, adapter)
    logits = predict_logits(model, split.x, adapter=adapter, batch_size=batch_size)
    pred = logits.argmax(1).cpu().numpy()
    return classification_figures(split.y.numpy(), pred, label_names or dataset.label_names)


def most_confused_pair(figures: dict[str, Any]) -> tuple[str, str, float]:
    """The pair of apps with the highest symmetric confusion rate (errors / their objects)."""
    cm = np.asarray(figures["confusion"], dtype=np.float64)
    support = cm.sum(axis=1)
    best = ("", "", -1.0)
    for i in range(len(cm)):
        for j in range(i + 1, len(cm)):
            n = support[i] + support[j]
            rate = (cm[i, j] + cm[j, i]) / n if n else 0.0
            if rate > best[2]:
                best = (figures["labels"][i], figures["labels"][j], float(rate))
    return best


def summarize_folds(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over folds of each scalar and per-app figure; pooled confusion."""

    def stat(values: list[float]) -> dict[str, float]:
        arr = np.asarray(values, dtype=np.float64)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        return {"mean": float(arr.mean()), "std": std}

    labels = folds[0]["labels"]
    pooled = np.sum([np.asarray(f["confusion"]) for f in folds], axis=0)
    return {
        **{name: stat([f[name] for f in folds]) for name in SCALARS},
        "per_class": {
            app: {
                m: stat([f["per_class"][app][m] for f in folds])
                for m in ("precision", "recall", "f1")
            }
            for app in labels
        },
        "confusion": pooled.tolist(),
        "labels": labels,
        "folds": len(folds),
    }


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
    from trafficdl.training.run import train_model

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
