"""The train / evaluate / classify / model-info commands end to end, through trafficdl.cli.main."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.cli import main
from trafficdl.dataset import Dataset
from trafficdl.training import load_checkpoint


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def trained(small_apps: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of an LSTM trained by the CLI on the small synthetic set."""
    _, data = small_apps
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", str(data), "--model", "lstm", "--epochs", "25", "--out", str(out),
               "--val-fraction", "0.2", "--quiet"])  # fmt: skip
    assert rc == 0
    return out


def test_model_info_json_counts(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "model-info", "--model", "lstm", "--classes", "45", "--json")
    assert rc == 0
    info = json.loads(out)
    assert info["parameters"] == 56_645 and info["input"]["shape"] == [20, 4]
    rc, out, _ = _run(capsys, "model-info", "--model", "cnn1d", "--classes", "2")
    assert rc == 0 and "5,822,338" in out and "64x88" in out


def test_train_writes_a_complete_run_directory(
    trained: Path, small_apps: tuple[Path, Path]
) -> None:
    for name in ("checkpoint.pt", "history.json", "metrics.json", "run.json", "history.png",
                 "confusion.png"):  # fmt: skip
        assert (trained / name).is_file(), name
    history = json.loads((trained / "history.json").read_text())
    assert len(history) == 25 or json.loads((trained / "run.json").read_text())["stopped_early"]
    assert all(r["seconds"] > 0 for r in history)
    run = json.loads((trained / "run.json").read_text())
    assert run["train_config"]["model"] == "lstm" and run["dist_config"] is None
    # The same time/cost keys as a distributed run: T is the training passes,
    # one node billed at the worker price (the paper's DS4v2 by default).
    assert run["mode"] == "centralized" and run["workers"] == 0
    assert run["training_seconds"] == pytest.approx(sum(r["seconds"] for r in history))
    assert run["training_seconds"] <= run["wall_seconds"]
    assert run["cost"] == pytest.approx(0.698 * run["training_seconds"] / 3600)
    assert run["figures"]["macro_f1"] == json.loads((trained / "metrics.json").read_text())[
        "macro_f1"]  # fmt: skip
    ckpt = load_checkpoint(trained / "checkpoint.pt")
    assert ckpt.label_names == Dataset.open(small_apps[1]).label_names
    assert (
        ckpt.extra["test"]["accuracy"]
        == json.loads((trained / "metrics.json").read_text())["accuracy"]
    )


def test_train_json_output(small_apps: tuple[Path, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rc, out, _ = _run(capsys, "train", small_apps[1], "--model", "lstm", "--epochs", "2",
                      "--out", tmp_path, "--json")  # fmt: skip
    assert rc == 0
    doc = json.loads(out)
    assert set(doc["metrics"]) >= {"accuracy", "macro_recall", "macro_f1", "per_class"}
    assert doc["run"]["epochs_run"] == 2


def test_classify_segments_like_the_dataset_and_mostly_agrees(
    trained: Path, small_apps: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    captures, _ = small_apps
    rc, out, err = _run(capsys, "classify", trained / "checkpoint.pt", captures, "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    pcaps = sorted(captures.rglob("*.pcap"))
    expected = sum(len(extract_file(p, ExtractConfig())) for p in pcaps)
    assert len(rows) == expected
    assert {"src", "sport", "dst", "dport", "proto", "app", "confidence"} <= set(rows[0])
    hits = sum(Path(r["capture"]).parent.name == r["app"] for r in rows)
    assert hits / len(rows) > 0.5  # 4 apps: chance is 0.25
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)


def test_classify_json_table_and_reject_below(
    trained: Path, small_apps: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pcap = sorted(small_apps[0].rglob("*.pcap"))[0]
    ck = trained / "checkpoint.pt"
    rc, out, _ = _run(capsys, "classify", ck, pcap, "--format", "json")
    assert rc == 0
    plain = json.loads(out)
    assert plain and all(r["app"] != "unknown" for r in plain)
    threshold = sorted(r["confidence"] for r in plain)[len(plain) // 2]
    rc, out, _ = _run(capsys, "classify", ck, pcap, "--format", "json",
                      "--reject-below", str(threshold))  # fmt: skip
    rejected = json.loads(out)
    for before, after in zip(plain, rejected, strict=True):
        assert after["app"] == ("unknown" if before["confidence"] < threshold else before["app"])
    assert any(r["app"] == "unknown" for r in rejected)
    rc, out, _ = _run(capsys, "classify", ck, pcap)
    assert rc == 0 and "per app:" in out and str(plain[0]["dport"]) in out
    names = {6: "TCP", 17: "UDP"}
    assert names[plain[0]["proto"]] in out  # protocol names, not numbers, for people


def test_evaluate_kfold_writes_json_and_plots(
    small_apps: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = _run(capsys, "evaluate", small_apps[1], "--model", "lstm", "--folds", "3",
                      "--epochs", "3", "--out", tmp_path, "--json")  # fmt: skip
    assert rc == 0
    doc = json.loads(out)
    summary = doc["summary"]
    assert summary["folds"] == 3 and len(doc["folds"]) == 3
    for key in ("accuracy", "macro_recall", "macro_f1"):
        assert set(summary[key]) == {"mean", "std"}
    assert set(summary["per_class"]) == set(Dataset.open(small_apps[1]).label_names)
    for name in ("cv.json", "confusion.png", "folds.png", "confusion_fold1.png"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_evaluate_a_checkpoint_on_its_test_rows(
    trained: Path, small_apps: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    rc, out, _ = _run(capsys, "evaluate", small_apps[1], "--checkpoint", trained / "checkpoint.pt",
                      "--out", tmp_path, "--json")  # fmt: skip
    assert rc == 0
    doc = json.loads(out)
    assert doc["rows"] == "test"
    assert doc["accuracy"] == pytest.approx(
        json.loads((trained / "metrics.json").read_text())["accuracy"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "/nonexistent/ck.pt", "x.pcap"], "no such checkpoint"),
        (["train", "/nonexistent/ds"], "not a trafficdl dataset"),
        (["train", "{data}", "--epochs", "0"], "epochs"),
        (["train", "{data}", "--optimizer", "nesterov", "--model", "lstm"], "unknown optimizer"),
        (["evaluate", "{data}", "--folds", "1", "--model", "lstm"], "folds"),
        (["model-info", "--model", "resnet"], "unknown model"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    args: list[str], message: str, small_apps: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    argv = [a.replace("{data}", str(small_apps[1])) for a in args] + ["--out", str(tmp_path)] * (
        args[0] in ("train", "evaluate")
    )
    rc, _, err = _run(capsys, *argv)
    assert rc == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_classify_bad_format_and_capture(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck = trained / "checkpoint.pt"
    rc, _, err = _run(capsys, "classify", ck, tmp_path, "--format", "xml")
    assert rc == 2 and "--format" in err
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 64)
    rc, out, err = _run(capsys, "classify", ck, junk, "--format", "json")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "nothing could be read" in err and "junk.pcap: not a pcap or pcapng" in err
