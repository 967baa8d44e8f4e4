"""Run every benchmark module (bench/bench_*.py) and print one table.

Usage: python -m bench [--quick] [--only NAME ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

from bench.table import Row, machine, render


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. capture")
    parser.add_argument("--json", type=Path, default=None, help="also write rows as JSON")
    args = parser.parse_args()
    names = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n in args.only]
    rows: list[Row] = []
    for name in names:
        print(f"# running bench_{name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            rows.extend(module.run(quick=args.quick))
        except Exception:  # a broken benchmark must not hide the others' figures
            traceback.print_exc()
            rows.append(Row(name, "FAILED (see stderr)", float("nan"), ""))
    print(f"machine: {machine()}")
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
