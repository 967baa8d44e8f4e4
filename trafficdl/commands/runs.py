"""`trafficdl runs DIR...`: the paper's three dimensions for several runs, side by side.

Reads the run.json that centralized (`--workers 0`) and distributed runs both
write, and adds what only a set of runs can tell: the ideal curve T1/N and the
ideal cost, taken from the one-worker run (the paper's T1) when the set has one,
and each run's macro F as a fraction of the same model's centralized run, beside
that run's own test-set standard error (evaluation.macro_f1_stderr): a gap smaller
than it says nothing about the distributed training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trafficdl.cost import ideal_cost, ideal_seconds
from trafficdl.errors import TrafficdlError


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """run.json of each given run directory, or of each run directory under a given folder."""
    found: list[Path] = []
    for p in paths:
        if (p / "run.json").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(d for d in p.iterdir() if (d / "run.json").is_file())
        else:
            raise TrafficdlError(f"{p}: no such run directory")
    if not found:
        raise TrafficdlError("no run.json found under " + ", ".join(map(str, paths)))
    runs = []
    for d in found:
        try:
            run = json.loads((d / "run.json").read_text())
        except json.JSONDecodeError as exc:
            raise TrafficdlError(f"{d}/run.json: unreadable ({exc})") from exc
        runs.append({"dir": str(d), **run})
    return sorted(runs, key=lambda r: (r.get("model") or "", r.get("workers") or 0))


def with_ideal(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill ideal T1/N, overhead and ideal cost from the same model's N=1 run."""
    t1 = {r.get("model"): r["training_seconds"] for r in runs if r.get("workers") == 1}
    out = []
    for r in runs:
        r = dict(r)
        n, base = r.get("workers") or 0, t1.get(r.get("model"))
        if n >= 1 and base and r.get("ideal_seconds") is None:
            prices = r.get("prices") or {}
            r["ideal_seconds"] = ideal_seconds(base, n)
            r["overhead_over_ideal"] = r["training_seconds"] / r["ideal_seconds"]
            r["ideal_cost"] = ideal_cost(
                base, n, prices.get("worker") or 0.0, prices.get("master") or 0.0
            )
        out.append(r)
    return out


def with_reference(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill `f_vs_centralized` (macro F / the same model's centralized macro F) and, on the
    centralized run, `macro_f1_stderr` (from its confusion matrix) when the set has one."""
    from trafficdl.evaluation import macro_f1_stderr  # numpy: not on the operator's CLI path

    refs = {r.get("model"): r for r in runs if r.get("workers") == 0}
    out = []
    for r in runs:
        r = dict(r)
        ref = refs.get(r.get("model"))
        f = (r.get("figures") or {}).get("macro_f1")
        f_ref = ((ref or {}).get("figures") or {}).get("macro_f1")
        if ref is not None and f is not None and f_ref:
            r["f_vs_centralized"] = f / f_ref
        if r.get("workers") == 0 and r.get("confusion"):
            r["macro_f1_stderr"] = macro_f1_stderr(r["confusion"])
        out.append(r)
    return out


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def register(app: typer.Typer) -> None:
    """Add `runs` to the `trafficdl` app."""

    @app.command()
    def runs(
        paths: Annotated[list[Path], typer.Argument(help="Run directories, or folders of them.")],
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Compare runs: T, WTPE, ideal T1/N, cost, node-hours and macro F side by side."""
        rows = with_reference(with_ideal(load_runs(paths)))
        if json_out:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="runs (T: training completion time; ideal: T1/N from the N=1 run)")
        for col in (
            "run",
            "model",
            "N",
            "algorithm",
            "T [s]",
            "WTPE [s]",
            "ideal T1/N [s]",
            "overhead",
            "cost",
            "ideal cost",
            "node-h",
            "accuracy",
            "macro F",
            "F vs centr.",
        ):
            table.add_column(
                col, justify="left" if col in ("run", "model", "algorithm") else "right"
            )
        oversubscribed = False
        for r in rows:
            fig = r.get("figures") or {}
            over = (r.get("workers") or 0) > (r.get("cpus") or 10**6)
            oversubscribed |= over
            table.add_row(
                Path(r["dir"]).name,
                str(r.get("model")),
                f"{r.get('workers')}{'*' if over else ''}",
                str(r.get("algorithm") or "centralized"),
                _fmt(r.get("training_seconds"), ".1f"),
                _fmt(r.get("wtpe_seconds")),
                _fmt(r.get("ideal_seconds"), ".1f"),
                _fmt(r.get("overhead_over_ideal"), ".2f")
                + ("x" if r.get("overhead_over_ideal") else ""),
                f"{_fmt(r.get('cost'), '.5f')} {r.get('currency', '')}",
                _fmt(r.get("ideal_cost"), ".5f"),
                _fmt(r.get("node_hours"), ".4f"),
                _fmt(fig.get("accuracy"), ".3f"),
                _fmt(fig.get("macro_f1"), ".3f"),
                _fmt(r.get("f_vs_centralized"), ".3f"),
            )
        # Piped output (demo logs, CI) would otherwise wrap at 80 columns.
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=200)
        console.print(table)
        for r in rows:
            if r.get("macro_f1_stderr") is not None:
                n = sum(map(sum, r["confusion"]))
                console.print(
                    f"{Path(r['dir']).name} ({r.get('model')}): macro F's own test-set standard "
                    f"error {r['macro_f1_stderr']:.3f} ({n} test rows, bootstrap)"
                )
        if oversubscribed:
            console.print(
                "* more workers than CPU cores: these timings measure contention, not scaling."
            )
