"""The README's figures table is the committed benchmark results, rendered — never typed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("readme_figures", REPO / "scripts/readme_figures.py")
assert spec and spec.loader
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def test_the_readme_matches_the_committed_results() -> None:
    assert figures.RESULTS.is_file(), "bench/results/latest.json is not committed"
    assert figures.main(["--check"]) == 0, "run: python scripts/readme_figures.py"


def _results(value: float) -> dict:
    rows = []
    for bench, fig, peer in figures.SELECTION:  # one row per selection, named to match it
        name = fig.strip("^$").replace(".*", " x ").replace("\\\\", "")
        rows.append({"bench": bench, "figure": name, "value": value, "unit": "u",
                     "peer": peer.strip("^$"), "peer_value": 2.0, "ratio": value / 2.0,
                     "note": "n", "status": "ok"})  # fmt: skip
    bench = {"mode": "quick", "date": "2026-12-01", "commit": "c" * 40, "definition": "d",
             "load_average": {"before": [1.0], "after": [1.0]}, "rows": rows}  # fmt: skip
    return {"machine": "m", "cpus": 2, "benches": {b: bench for b, _, _ in figures.SELECTION}}


def test_check_fails_when_a_figure_changes(tmp_path: Path) -> None:
    res, readme = tmp_path / "r.json", tmp_path / "README.md"
    res.write_text(json.dumps(_results(3.0)))
    readme.write_text(f"# x\n{figures.BEGIN}\n{figures.END}\ntail\n")
    assert figures.main(["--results", str(res), "--readme", str(readme), "--check"]) == 1
    assert figures.main(["--results", str(res), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| 3 u |" in text and text.endswith("tail\n")
    assert figures.main(["--results", str(res), "--readme", str(readme), "--check"]) == 0
    res.write_text(json.dumps(_results(4.0)))  # a new measurement, README not regenerated
    assert figures.main(["--results", str(res), "--readme", str(readme), "--check"]) == 1


def test_a_selection_matching_no_row_is_an_error() -> None:
    empty = {"machine": "m", "cpus": 2, "benches": {}}
    with pytest.raises(SystemExit, match="no row matches"):
        figures.render(empty)
