"""The paper's figures from sweep summaries, as matplotlib Figure objects.

Fig. 2: WTPE, cost and macro F-measure against N, one line per (model, preset)
with a ±3σ band over the folds, the ideal curves T1/N and (ρN + ρ_M)·T1/N
dashed, the centralized F-measure as a dotted horizontal line.
Fig. 3: row-normalised confusion matrices [%] in log colour scale, the
centralized model beside a few N.
Fig. 4: WTPE, cost and F against the update period 1/F in epochs (log axis),
from one mini-batch to the whole training, with the loosest coupling as the
time/cost lower bound and the centralized F as the upper bound.

Figures are built with `matplotlib.figure.Figure` (no pyplot global state, Agg
when saved), returned rather than drawn, so tests inspect the axes, labels and
series instead of pixels and the report embeds the same objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from trafficdl.study.records import Summary

SIGMAS = 3.0  # the paper's confidence bands
PANELS = (
    ("wtpe_s", "WTPE [s]", "ideal_wtpe_s"),
    ("cost", "cost [{cur}]", "ideal_cost"),
    ("macro_f", "macro F-measure", None),
)


def _distributed(summaries: Sequence[Summary]) -> list[Summary]:
    return [s for s in summaries if not s.cell.centralized]


def main_setting(summaries: Sequence[Summary]) -> tuple[str, str]:
    """The (window, algorithm) with the most N values: Fig. 2's fixed F."""
    counts: dict[tuple[str, str], set[int]] = {}
    for s in _distributed(summaries):
        counts.setdefault((s.cell.window, s.cell.algorithm), set()).add(s.cell.workers)
    if not counts:
        return ("1e", "aeasgd")
    return max(counts, key=lambda k: (len(counts[k]), k == ("1e", "aeasgd")))


def _band(ax, x: list[float], s: list[Summary], metric: str, label: str, **kw) -> None:  # type: ignore[no-untyped-def]
    mean = np.array([v.mean[metric] for v in s])
    std = np.array([v.std[metric] for v in s])
    (line,) = ax.plot(x, mean, marker="o", label=label, **kw)
    ax.fill_between(
        x, mean - SIGMAS * std, mean + SIGMAS * std, color=line.get_color(), alpha=0.15, linewidth=0
    )


def fig2(
    summaries: Sequence[Summary], window: str | None = None, algorithm: str | None = None
) -> Figure | None:
    """WTPE, cost and F vs N (paper Fig. 2) at one update period; None without data."""
    if not summaries:
        return None
    mw, ma = main_setting(summaries)
    window, algorithm = window or mw, algorithm or ma
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    currency = _currency(summaries)
    groups: dict[tuple[str, str], list[Summary]] = {}
    for s in _distributed(summaries):
        if (s.cell.window, s.cell.algorithm) == (window, algorithm):
            groups.setdefault((s.cell.model, s.cell.preset), []).append(s)
    central = {s.cell.model: s for s in summaries if s.cell.centralized}
    for ax, (metric, ylabel, ideal) in zip(axes, PANELS, strict=True):
        for (model, preset), ss in sorted(groups.items()):
            ss = sorted(ss, key=lambda v: v.cell.workers)
            x = [v.cell.workers for v in ss]
            _band(ax, x, ss, metric, f"{model} ({preset})")
            if ideal and preset == sorted(p for m, p in groups if m == model)[0]:
                vals = [v.mean[ideal] for v in ss]
                if any(math.isfinite(v) for v in vals):
                    ax.plot(x, vals, linestyle="--", color="grey", label=f"{model} ideal")
        if metric == "macro_f":
            for model, c in sorted(central.items()):
                ax.axhline(
                    c.mean["macro_f"], linestyle=":", color="black", label=f"{model} centralized"
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of workers N")
        ax.set_ylabel(ylabel.format(cur=currency))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax, title in zip(
        axes, ("(a) WTPE vs N", "(b) cost vs N", "(c) F-measure vs N"), strict=True
    ):
        ax.set_title(title)
    fig.suptitle(f"Fig. 2 — update period {window}, {algorithm}; mean over folds, ±3σ")
    return fig


def fig3(
    summaries: Sequence[Summary],
    model: str | None = None,
    preset: str | None = None,
    max_panels: int = 4,
) -> Figure | None:
    """Confusion matrices [%] in log scale: centralized and up to max_panels - 1 values of N."""
    window, algorithm = main_setting(summaries)
    dist = [
        s
        for s in _distributed(summaries)
        if (s.cell.window, s.cell.algorithm) == (window, algorithm) and s.confusion
    ]
    model = model or (
        dist[0].cell.model if dist else next((s.cell.model for s in summaries if s.confusion), None)
    )
    if model is None:
        return None
    preset = preset or next((s.cell.preset for s in dist if s.cell.model == model), None)
    chosen = [s for s in summaries if s.cell.centralized and s.cell.model == model and s.confusion]
    ns = sorted(
        (s for s in dist if s.cell.model == model and s.cell.preset == preset),
        key=lambda s: s.cell.workers,
    )
    several = [s for s in ns if s.cell.workers >= 2]  # the paper shows N in {2, 4, 16}
    k = max_panels - len(chosen)
    chosen += _spread(several if len(several) >= k else ns, k)
    if not chosen:
        return None
    fig = Figure(figsize=(4.2 * len(chosen), 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(chosen)))
    norm = LogNorm(vmin=0.01, vmax=100)
    image = None
    for ax, s in zip(axes, chosen, strict=True):
        m = np.asarray(s.confusion, dtype=float)
        pct = 100 * m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(np.ma.masked_less_equal(pct, 0), norm=norm, cmap="viridis")
        ax.set_title("centralized" if s.cell.centralized else f"N = {s.cell.workers}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(s.labels) <= 12:
            ax.set_xticks(range(len(s.labels)), s.labels, rotation=90, fontsize="small")
            ax.set_yticks(range(len(s.labels)), s.labels, fontsize="small")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="[%] of true class (log scale)")
    fig.suptitle(f"Fig. 3 — confusion matrices, {model}" + (f" ({preset})" if preset else ""))
    return fig


def _spread(items: list[Summary], k: int) -> list[Summary]:
    """k items spread over the list (first, last and between), the paper's N ∈ {2, 4, 16}."""
    if k <= 0 or not items:
        return []
    if len(items) <= k:
        return items
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [-1]
    return [items[i] for i in idx]


def fig4(
    summaries: Sequence[Summary],
    model: str | None = None,
    workers: int | None = None,
    preset: str | None = None,
) -> Figure | None:
    """WTPE, cost and F vs the update period in epochs (paper Fig. 4); None if < 2 periods."""
    groups: dict[tuple[str, int, str, str], list[Summary]] = {}
    for s in _distributed(summaries):
        groups.setdefault(
            (s.cell.model, s.cell.workers, s.cell.preset, s.cell.algorithm), []
        ).append(s)
    groups = {
        k: v
        for k, v in groups.items()
        if len({s.period_epochs for s in v}) >= 2
        and (model is None or k[0] == model)
        and (workers is None or k[1] == workers)
        and (preset is None or k[2] == preset)
    }
    if not groups:
        return None
    key = max(groups, key=lambda k: len(groups[k]))
    ss = sorted(groups[key], key=lambda s: s.period_epochs)
    x = [s.period_epochs for s in ss]
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    central = next((s for s in summaries if s.cell.centralized and s.cell.model == key[0]), None)
    for ax, (metric, ylabel, _ideal) in zip(axes, PANELS, strict=True):
        _band(ax, x, ss, metric, f"{key[0]}, N = {key[1]} ({key[2]})")
        if metric == "macro_f":
            if central is not None:
                ax.axhline(
                    central.mean["macro_f"],
                    linestyle=":",
                    color="black",
                    label="centralized (upper bound)",
                )
        else:
            ax.axhline(
                ss[-1].mean[metric],
                linestyle="--",
                color="grey",
                label="loosest coupling (lower bound)",
            )
        ax.set_xscale("log")
        ax.set_xlabel("update period 1/F [epochs]")
        ax.set_ylabel(ylabel.format(cur=_currency(summaries)))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax, title in zip(
        axes, ("(a) WTPE vs 1/F", "(b) cost vs 1/F", "(c) F-measure vs 1/F"), strict=True
    ):
        ax.set_title(title)
    fig.suptitle(f"Fig. 4 — {key[0]}, N = {key[1]}, {key[3]}, {key[2]}; mean over folds, ±3σ")
    return fig


def _currency(summaries: Sequence[Summary]) -> str:
    return next((s.currency for s in summaries if s.currency), "EUR")


def save_all(
    summaries: Sequence[Summary], out_dir: str | Path, fmt: str = "png"
) -> dict[str, Path]:
    """Write fig2/fig3/fig4 (those the data supports) and return name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, fig in (
        ("fig2", fig2(summaries)),
        ("fig3", fig3(summaries)),
        ("fig4", fig4(summaries)),
    ):
        if fig is not None:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, dpi=110)
            written[name] = path
    return written
