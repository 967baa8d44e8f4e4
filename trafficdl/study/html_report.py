"""`trafficdl report DIR`: one self-contained HTML file from a sweep directory.

Self-contained means one file that can be mailed or attached to a ticket: the
figures are embedded as base64 PNG, there is no script and no external style
sheet. The page puts the run environment (cores, threads, device) first and
a warning in red when any cell ran more busy threads than cores, because
those timings measure contention, not scaling; the accuracy figures stay
valid. Presets are compared side by side (macro F and its drop against the
centralized model at each N), which is how the paper's loss and the robust
preset's answer to it are shown.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from trafficdl.study import figures as figs
from trafficdl.study.records import Record, Summary, latest, read_records, summarize


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode()


def _f(v: float, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def _pm(s: Summary, key: str, digits: int = 3) -> str:
    m, d = s.mean[key], s.std[key]
    if not math.isfinite(m):
        return "–"
    return f"{m:.{digits}g} ± {d:.2g}" if s.folds > 1 else f"{m:.{digits}g}"


def f_drop(s: Summary, central: Summary | None) -> float:
    """Relative macro-F drop against the centralized model, in % (positive = worse)."""
    if central is None or not central.mean["macro_f"]:
        return math.nan
    return 100.0 * (central.mean["macro_f"] - s.mean["macro_f"]) / central.mean["macro_f"]


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def cells_table(summaries: Sequence[Summary]) -> str:
    central = {s.cell.model: s for s in summaries if s.cell.centralized}
    head = (
        "model",
        "N",
        "window",
        "1/F [epochs]",
        "algorithm",
        "preset",
        "folds",
        "WTPE [s]",
        "T [s]",
        "ideal T1/N [s]",
        "cost",
        "ideal cost",
        "node-hours",
        "accuracy",
        "macro recall",
        "macro F",
        "F drop vs centralized [%]",
        "worst-fold F drop [%]",
        "oversubscribed",
    )
    rows = [
        (
            s.cell.model,
            str(s.cell.workers),
            s.cell.window,
            _f(s.period_epochs),
            s.cell.algorithm,
            s.cell.preset,
            str(s.folds),
            _pm(s, "wtpe_s"),
            _pm(s, "t_s"),
            _f(s.mean["ideal_t_s"]),
            f"{_pm(s, 'cost')} {s.currency}",
            _f(s.mean["ideal_cost"]),
            _f(s.mean["node_hours"]),
            _pm(s, "accuracy"),
            _pm(s, "macro_recall"),
            _pm(s, "macro_f"),
            "–" if s.cell.centralized else _f(f_drop(s, central.get(s.cell.model))),
            "–" if s.worst_gap_pct is None else _f(s.worst_gap_pct),
            "yes" if s.oversubscribed else "no",
        )
        for s in summaries
    ]
    return _table(head, rows)


def preset_table(summaries: Sequence[Summary]) -> str:
    """Macro F (and drop vs centralized) per N, one column per preset: side by side."""
    central = {s.cell.model: s for s in summaries if s.cell.centralized}
    dist = [s for s in summaries if not s.cell.centralized]
    presets = sorted({s.cell.preset for s in dist})
    keys = sorted({(s.cell.model, s.cell.window, s.cell.algorithm, s.cell.workers) for s in dist})
    by = {
        (s.cell.model, s.cell.window, s.cell.algorithm, s.cell.workers, s.cell.preset): s
        for s in dist
    }
    rows = []
    for key in keys:
        row = [key[0], key[1], key[2], str(key[3])]
        for p in presets:
            s = by.get((*key, p))
            row.append(
                "–"
                if s is None
                else f"{_pm(s, 'macro_f')} ({_f(f_drop(s, central.get(key[0])), 2)} %"
                + ("" if s.worst_gap_pct is None else f"; worst fold {_f(s.worst_gap_pct, 2)} %")
                + ")"
            )
        rows.append(row)
    return _table(
        (
            "model",
            "window",
            "algorithm",
            "N",
            *[f"{p}: macro F (mean drop; worst fold)" for p in presets],
        ),
        rows,
    )


def _environment(recs: Sequence[Record], sweep: dict) -> str:
    done = [r for r in recs if r.done]
    cores = sorted({r.cpu_count for r in done})
    threads = sorted({r.threads for r in done})
    devices = sorted({r.device for r in done})
    runners = sorted({r.runner for r in done})
    items = [
        ("CPU cores (affinity)", ", ".join(map(str, cores))),
        ("torch threads per process", ", ".join(map(str, threads))),
        ("device", ", ".join(devices)),
        ("runner", ", ".join(runners)),
        ("dataset", str(sweep.get("dataset", "?"))),
        ("report host", f"{platform.node()} ({platform.machine()}, py{platform.python_version()})"),
    ]
    return _table(("", ""), items)


def _warning(recs: Sequence[Record]) -> str:
    over = sorted({(r.workers, r.cpu_count) for r in recs if r.done and r.oversubscribed})
    if not over:
        return ""
    worst = max(over)
    return (
        f'<p class="warn"><b>Oversubscribed:</b> cells with up to N = {worst[0]} workers '
        f"(+ master) ran on {worst[1]} cores. Their WTPE, T and cost measure CPU "
        "contention, not scaling: do not read them as speed-ups. Accuracy, recall and "
        "F-measure are unaffected.</p>"
    )


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}
td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}th{background:#eee}
.warn{color:#a00;border:2px solid #a00;padding:0.6em}img{max-width:100%}"""


def build_html(out_dir: str | Path) -> str:
    root = Path(out_dir)
    recs = latest(read_records(root))
    meta_file = root / "sweep.json"
    sweep = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    summaries = summarize(recs)
    parts = [
        f"<h1>trafficdl trade-off study</h1><p>{html.escape(str(root.resolve()))}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>",
        _warning(recs),
        "<h2>Run environment</h2>",
        _environment(recs, sweep),
    ]
    presets = sorted({s.cell.preset for s in summaries if not s.cell.centralized})
    shown = [
        ("Fig. 2: WTPE, cost and F-measure vs N", figs.fig2(summaries)),
        *[(f"Fig. 3: confusion matrices ({p})", figs.fig3(summaries, preset=p)) for p in presets],
        ("Fig. 4: update period", figs.fig4(summaries)),
    ]
    if not presets:
        shown.insert(1, ("Fig. 3: confusion matrices", figs.fig3(summaries)))
    for name, fig in shown:
        if fig is not None:
            parts.append(
                f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
                f'src="data:image/png;base64,{_png(fig)}">'
            )
    parts += [
        "<h2>Presets side by side</h2>",
        preset_table(summaries),
        "<h2>All cells (mean ± std over folds)</h2>",
        cells_table(summaries),
    ]
    failed = [r for r in recs if not r.done]
    if failed:
        parts += [
            "<h2>Failed folds (rerun with the same sweep command)</h2>",
            _table(("cell", "fold", "error"), [(r.cell, str(r.fold), r.error) for r in failed]),
        ]
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>trafficdl study'
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(out_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write DIR/report.html (or `output`) and return its path."""
    path = Path(output) if output else Path(out_dir) / "report.html"
    path.write_text(build_html(out_dir))
    return path
