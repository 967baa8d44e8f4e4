"""Classification figures the paper reports, and its stratified k-fold protocol.

Accuracy, macro recall (mean of per-app recalls), macro precision, macro F
(mean of per-app F), per-app precision/recall/F/support and the confusion
matrix (rows = true app, columns = predicted). Macro means run over the apps
present in the evaluated rows; an app never predicted has precision 0.
`summarize_folds` reports each figure's mean ± standard deviation over folds
(sample std, ddof=1), as the paper does. All figures are plain JSON-ready
Python values. Pure numpy: the master, the study and the reports use these
without a model; running a model over rows (`evaluate_model`) and the k-fold
protocol (`cross_validate`) live in trafficdl.training.evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SCALARS = ("accuracy", "macro_recall", "macro_precision", "macro_f1")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted]."""
    idx = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, ...]:
    """(hits, support, precision, recall, F) per app of one matrix [..., true, predicted] or
    a stack of them (the bootstrap's); an app never predicted has precision 0."""
    hits = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, hits / support, 0.0)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return hits, support, precision, recall, f1


def figures_from_confusion(cm: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """All figures from a confusion matrix (so pooled folds use the same formulas)."""
    cm = np.asarray(cm, dtype=np.int64)
    hits, support, precision, recall, f1 = _per_class(cm)
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


def macro_f1_stderr(cm: np.ndarray, resamples: int = 2000, seed: int = 0) -> float:
    """Standard error of macro F from the evaluated rows alone (bootstrap over the rows).

    Two runs compared on one test set differ by this much from which rows happened to be
    drawn, before any difference in training: 240 test rows of 6 apps near macro F 0.88
    give about 0.02, so a 2% gap between two runs is inside one run's own error. Rows are
    resampled with replacement (a multinomial draw over the confusion matrix's cells).
    """
    cm = np.asarray(cm, dtype=np.int64)
    k, n = cm.shape[0], int(cm.sum())
    if n == 0:
        return float("nan")
    draws = np.random.default_rng(seed).multinomial(n, cm.ravel() / n, size=resamples)
    _, support, _, _, f1 = _per_class(draws.reshape(resamples, k, k))
    present = support > 0
    macro = (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return float(macro.std(ddof=1))


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
