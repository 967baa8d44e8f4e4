"""A tiny real study end to end: sweep (centralized + real master/worker processes), report,
advise, and a resumed sweep that has nothing left to run.

LSTM, N in {1, 2}, one epoch, a 2-app synthetic dataset: about half a minute on 2 cores.
Two folds when the distributed run can be told its fold (TrainConfig.folds/fold), else the
single stratified hold-out (see docs/study.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from trafficdl.cli import main
from trafficdl.config import TrainConfig
from trafficdl.study.records import read_records

FOLDS = 2 if {"folds", "fold"} <= {f.name for f in dataclasses.fields(TrainConfig)} else 1


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trafficdl.capture.extract import extract_dataset
    from trafficdl.synth import synthesize

    root = tmp_path_factory.mktemp("study")
    synthesize(root / "pcaps", apps=2, flows_per_app=60, seed=5)
    extract_dataset([root / "pcaps"], root / "ds", progress=False, jobs=1)
    return root / "ds"


def test_tiny_sweep_report_and_advise(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    args = [
        "sweep",
        str(dataset),
        "--model",
        "lstm",
        "--workers",
        "1,2",
        "--folds",
        str(FOLDS),
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    recs = read_records(out)
    assert len(recs) == 3 * FOLDS and all(r.done for r in recs), [r.error for r in recs]
    assert {r.cell for r in recs} == {
        "lstm-central",
        "lstm-n1-w1e-aeasgd-paper",
        "lstm-n2-w1e-aeasgd-paper",
    }
    for r in recs:
        assert 0.0 <= r.macro_f <= 1.0 and r.t_s > 0 and r.wtpe_s > 0 and r.cost > 0
        assert sum(map(sum, r.confusion)) == r.test_size  # tested on the fold's rows
        assert r.cpu_count >= 1 and r.threads >= 1
    n2 = [r for r in recs if r.workers == 2]
    assert all(r.ideal_t_s is not None and r.t1_source == "lstm-n1-w1e-aeasgd-paper" for r in n2)
    if FOLDS == 2:
        assert sorted(r.test_size for r in recs if r.workers == 0) == sorted(
            r.test_size for r in recs if r.workers == 2
        )

    html = (out / "report.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", html)) == 2  # Fig. 2 and Fig. 3
    assert "CPU cores" in html

    assert main(["report", str(out)]) == 0
    assert (out / "figures" / "fig2.png").is_file()

    capsys.readouterr()
    assert main(["advise", str(out), "--json", "--price", "mine=0.1:0.5"]) == 0
    advice = json.loads(capsys.readouterr().out)
    nodes = {a["node"] for a in advice}
    assert {"DS4v2", "D32sv3", "mine"} <= nodes
    assert all(a["cost_optimal"]["workers"] >= 1 for a in advice)

    assert main(args) == 0  # resumed: every fold is done, nothing reruns
    assert len(read_records(out)) == 3 * FOLDS


def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(tmp_path), "--workers", "1,x"]) == 2
    assert main(["sweep", str(tmp_path), "--window", "7"]) == 2
    assert main(["advise"]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert main(["sweep", str(tmp_path), "--folds", "1"]) == 2  # not a dataset
    assert main(["sweep", str(tmp_path), "--on", "mars"]) == 2
    assert main(["sweep", str(tmp_path), "--on", "kubernetes"]) == 2  # no --claim
    assert main(["advise", "--t1", "10", "--throughput", "5", "--price", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("trafficdl: error:") == 8
    assert "--claim" in err and "bad price" in err
