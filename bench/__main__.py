"""Run every benchmark module (bench/bench_*.py), print one table, exit non-zero on any failure.

Usage: python -m bench [--quick | --smoke] [--only NAME ...] [--out FILE]

A benchmark that raises, and a peer that could not be measured, are rows
marked FAILED / MISSING-PEER, named again at the end, and make the exit
status 1: a broken benchmark must not look like a slow one. `--out` writes
the results file (commit, date, machine, load, every row) that the README's
figures table is generated from (scripts/readme_figures.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import table
from bench.table import Row, machine, render

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Benchmark names: bench_capture.py -> "capture"."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def load(name: str) -> ModuleType:
    return importlib.import_module(f"bench.bench_{name}")


def run_all(selected: list[str], quick_flag: bool) -> list[Row]:
    rows: list[Row] = []
    for name in selected:
        print(f"# running bench_{name} ({table.mode()}) ...", file=sys.stderr, flush=True)
        try:
            got = load(name).run(quick=quick_flag)
            if not got:
                raise RuntimeError(f"bench_{name} returned no rows")
            rows.extend(got)
        except Exception as exc:  # a broken benchmark must not hide the others' figures
            traceback.print_exc()
            rows.append(Row(name, f"bench_{name}", float("nan"), "", note=repr(exc)[:200],
                            status="failed"))  # fmt: skip
    return rows


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def results(rows: list[Row], load_before: tuple[float, ...], previous: dict | None) -> dict:
    """The results file: per benchmark, where, when and in which mode it ran, and its rows.

    Benchmarks not run this time keep their previous section (each says its own
    date, commit and mode), so one slow benchmark can be refreshed alone:
    `python -m bench --only convergence --out bench/results/latest.json`.
    """
    benches: dict[str, Any] = dict((previous or {}).get("benches", {}))
    run = {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": table.mode(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
    }
    for name in dict.fromkeys(r.bench for r in rows):
        try:
            doc = (load(name).__doc__ or "").strip().splitlines()[0]
        except Exception:
            doc = ""
        mine = [r.as_dict() for r in rows if r.bench == name]
        benches[name] = {**run, "definition": doc, "rows": mine}
    return {"machine": machine(), "cpus": os.cpu_count(), "benches": benches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="CI-sized inputs, fewer repeats")
    size.add_argument("--smoke", action="store_true", help="smallest inputs: proves each runs")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. capture")
    parser.add_argument("--out", "--json", dest="out", type=Path, default=None,
                        help="write the results file (JSON) here")  # fmt: skip
    args = parser.parse_args(argv)
    table.set_mode("smoke" if args.smoke else "quick" if args.quick else "full")
    available = names()
    selected = available if not args.only else args.only
    unknown = sorted(set(selected) - set(available))
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; have {', '.join(available)}",
              file=sys.stderr)  # fmt: skip
        return 2
    load_before = os.getloadavg()
    rows = run_all(selected, quick_flag=table.mode() != "full")
    print(f"machine: {machine()}; mode {table.mode()}; load average {load_before[0]:.1f}")
    print(render(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(args.out.read_text()) if args.out.is_file() else None
        if previous and previous.get("machine") != machine():
            previous = None  # figures from another machine are not kept beside these
        doc = results(rows, load_before, previous)
        args.out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    bad = [r for r in rows if not r.ok]
    for r in bad:
        print(f"bench: {r.status}: {r.bench}: {r.figure}: {r.note}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
