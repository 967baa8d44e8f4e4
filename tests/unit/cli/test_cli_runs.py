"""`trafficdl runs`: run.json files side by side, ideal T1/N from the N=1 run."""

import json
from pathlib import Path

import pytest

from trafficdl.cli import main
from trafficdl.commands.runs import load_runs, with_ideal, with_reference


def _run(
    root: Path, name: str, workers: int, seconds: float, cpus: int = 16, f: float = 0.8,
    confusion: list[list[int]] | None = None,
) -> None:
    d = root / name
    d.mkdir()
    run = {
        "model": "lstm",
        "workers": workers,
        "cpus": cpus,
        "training_seconds": seconds,
        "wtpe_seconds": seconds / 2,
        "prices": {"worker": 0.5, "master": 1.0 if workers else None},
        "cost": 0.0,
        "figures": {"accuracy": 0.9, "macro_f1": f},
        "confusion": confusion,
    }
    (d / "run.json").write_text(json.dumps(run))


def test_ideal_curve_comes_from_the_one_worker_run(tmp_path: Path) -> None:
    _run(tmp_path, "c", 0, 50.0)
    _run(tmp_path, "n1", 1, 40.0)
    _run(tmp_path, "n4", 4, 20.0)
    rows = {Path(r["dir"]).name: r for r in with_ideal(load_runs([tmp_path]))}
    assert rows["n4"]["ideal_seconds"] == pytest.approx(10.0)
    assert rows["n4"]["overhead_over_ideal"] == pytest.approx(2.0)
    # (0.5 * 4 + 1.0) EUR/h for 10 s
    assert rows["n4"]["ideal_cost"] == pytest.approx(3.0 * 10 / 3600)
    assert rows["c"].get("ideal_seconds") is None


def test_runs_cli_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, "n1", 1, 40.0)
    assert main(["runs", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["workers"] == 1
    assert main(["runs", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trafficdl: error:") and "\n" not in err
    (tmp_path / "n1" / "run.json").write_text("{broken")
    assert main(["runs", str(tmp_path / "n1")]) == 2


def test_oversubscribed_runs_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, "n1", 1, 40.0, cpus=2)
    assert main(["runs", str(tmp_path)]) == 0
    assert "contention" not in capsys.readouterr().out
    _run(tmp_path, "n4", 4, 20.0, cpus=2)
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4*" in out and "contention, not scaling" in out


def test_macro_f_is_shown_against_the_centralized_run_and_its_own_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cm = [[50, 10], [5, 55]]  # macro F 0.874 on 120 rows
    _run(tmp_path, "c", 0, 50.0, f=0.8, confusion=cm)
    _run(tmp_path, "n4", 4, 20.0, f=0.78)
    rows = {Path(r["dir"]).name: r for r in with_reference(load_runs([tmp_path]))}
    assert rows["n4"]["f_vs_centralized"] == pytest.approx(0.975)
    assert rows["c"]["f_vs_centralized"] == pytest.approx(1.0)
    assert 0.02 < rows["c"]["macro_f1_stderr"] < 0.05 and "macro_f1_stderr" not in rows["n4"]
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.975" in out and "c (lstm): macro F's own test-set standard error 0.0" in out
    assert "(120 test rows, bootstrap)" in out
    # no centralized run in the set: no ratio, no error line
    rows = with_reference(load_runs([tmp_path / "n4"]))
    assert "f_vs_centralized" not in rows[0]
