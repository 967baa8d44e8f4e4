"""`python -m bench`: every module runs on its smallest input, and failures are loud.

The smoke run proves each benchmark still works (no timing is asserted: speed
targets live in the benchmarks' own figures). A benchmark that raises, or a
peer that cannot be measured, must make the exit status non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import __main__ as runner
from bench.table import Row, missing_peer

REPO = Path(__file__).resolve().parents[3]


def test_every_benchmark_runs_in_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["cpus"] == os.cpu_count()
    assert set(results["benches"]) == set(runner.names()), results["benches"].keys()
    for name, bench in results["benches"].items():
        assert bench["mode"] == "smoke" and len(bench["commit"]) == 40, name
        assert bench["definition"] and bench["load_average"]["before"], name
        assert bench["rows"] and all(r["status"] == "ok" for r in bench["rows"]), name


def _fake(rows_or_error: list[Row] | Exception) -> SimpleNamespace:
    def run(quick: bool) -> list[Row]:
        if isinstance(rows_or_error, Exception):
            raise rows_or_error
        return rows_or_error

    return SimpleNamespace(run=run, __doc__="A fake benchmark.")


@pytest.mark.parametrize(
    "fake, status",
    [
        (RuntimeError("boom"), "failed"),
        ([Row("x", "fig", 1.0, "s"), missing_peer("x", "tshark", "not installed")],
         "missing-peer"),
        ([], "failed"),  # a benchmark that measures nothing is broken too
    ],
)  # fmt: skip
def test_a_failing_benchmark_or_missing_peer_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake, status: str
) -> None:
    monkeypatch.setattr(runner, "names", lambda: ["x", "y"])
    good = _fake([Row("y", "fig", 2.0, "s", "peer", 1.0)])
    monkeypatch.setattr(runner, "load", lambda name: _fake(fake) if name == "x" else good)
    assert runner.main(["--quick"]) == 1
    out, err = capsys.readouterr()
    assert f"bench: {status}: x" in err
    assert "2.00x" in out  # the other benchmark's figures are still printed


def test_all_ok_exits_zero_and_unknown_names_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "names", lambda: ["y"])
    monkeypatch.setattr(runner, "load", lambda name: _fake([Row("y", "fig", 2.0, "s")]))
    assert runner.main(["--quick"]) == 0
    assert runner.main(["--only", "nope"]) == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().err
