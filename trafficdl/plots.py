"""Figures as files: confusion matrices like the paper's Fig. 3, per-fold metrics, history.

matplotlib with the Agg backend (no display on servers and in CI; selected
before pyplot is imported). The confusion matrix is row-normalised to percent
of each true app, on a logarithmic colour scale so the few-percent confusions
between similar apps stay visible next to a ~99% diagonal; zero cells are
left blank (log scale), as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

METRICS = (("accuracy", "accuracy"), ("macro_recall", "macro recall"), ("macro_f1", "macro F"))


def confusion_percent(cm: Sequence[Sequence[int]]) -> np.ndarray:
    """Each row as percent of its true app's objects (rows without objects stay 0)."""
    arr = np.asarray(cm, dtype=np.float64)
    totals = arr.sum(axis=1, keepdims=True)
    return np.divide(100.0 * arr, totals, out=np.zeros_like(arr), where=totals > 0)


def plot_confusion(
    cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Confusion matrix in % (rows: true app) with a log colour scale; returns the path."""
    pct = confusion_percent(cm)
    n = len(labels)
    size = max(4.0, min(16.0, 0.35 * n + 3))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    shown = np.ma.masked_less_equal(pct, 0.0)
    im = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=0.1, vmax=100.0))
    fig.colorbar(im, ax=ax, label="% of true app (log scale)")
    ax.set_xticks(
        range(n),
        labels,
        rotation=45 if n > 2 else 0,
        ha="right" if n > 2 else "center",
        fontsize=8 if n > 12 else 10,
    )
    ax.set_yticks(range(n), labels, fontsize=8 if n > 12 else 10)
    ax.set_xlabel("predicted app")
    ax.set_ylabel("true app")
    if n <= 12:  # annotate cells while they are large enough to read
        for i in range(n):
            for j in range(n):
                if pct[i, j] > 0:
                    ax.text(
                        j,
                        i,
                        f"{pct[i, j]:.1f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if pct[i, j] < 30 else "black",
                    )
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_fold_metrics(folds: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Grouped bars per fold for accuracy, macro recall and macro F, with their means."""
    k = len(folds)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * k + 3), 4.0))
    width = 0.8 / len(METRICS)
    x = np.arange(k)
    for m, (key, name) in enumerate(METRICS):
        values = [f[key] for f in folds]
        bars = ax.bar(x + (m - 1) * width, values, width, label=f"{name} ({np.mean(values):.3f})")
        ax.axhline(np.mean(values), color=bars.patches[0].get_facecolor(), ls="--", lw=0.8)
    ax.set_xticks(x, [str(i + 1) for i in range(k)])
    ax.set_xlabel("fold")
    lowest = min(min(f[key] for f in folds) for key, _ in METRICS)
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
    ax.set_title(title or f"{k}-fold cross-validation")
    return _save(fig, path)


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (training, and validation when present)."""
    epochs = [r["epoch"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.plot(epochs, [r["loss"] for r in history], label="train")
    a2.plot(epochs, [r["accuracy"] for r in history], label="train")
    if any(r.get("val_loss") is not None for r in history):
        a1.plot(epochs, [r["val_loss"] for r in history], label="validation")
        a2.plot(epochs, [r["val_accuracy"] for r in history], label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a1.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
