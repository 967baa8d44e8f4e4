"""synth -> extract -> summary through trafficdl.cli.main, including the bad paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trafficdl.cli import main
from trafficdl.dataset import Dataset


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert main(["synth", str(root), "--apps", "3", "--flows-per-app", "30", "--seed", "1"]) == 0
    return root


def test_extract_and_summary_json(captures, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["extract", str(captures), "--out", str(out), "--jobs", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_objects"] == 90 and report["label_names"] == [
        "facebook", "instagram", "messenger"]  # fmt: skip
    ds = Dataset.open(out)
    assert len(ds) == 90 and ds.payload.shape == (90, 784) and ds.packets.shape == (90, 20, 4)
    assert np.bincount(ds.labels).tolist() == [30, 30, 30]
    assert ds.meta["extract_config"]["segmentation"] == "biflow"
    assert len(ds.meta["captures"]) == 6
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.json", "labels.npy", "objects.npy", "packets.npy", "payload.npy"]  # fmt: skip
    assert main(["summary", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["apps"], s["captures"], s["objects"]) == (3, 6, 90)
    assert 0.5 < s["encrypted_share"] <= 1.0
    assert main(["summary", str(out)]) == 0
    assert "facebook" in capsys.readouterr().out


def test_garbage_file_is_skipped_with_a_message(captures, tmp_path, capsys):
    bad = tmp_path / "junk" / "x.pcap"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "ds"
    assert main(["extract", str(captures / "facebook"), str(bad), "--out", str(out),
                 "--no-progress", "--jobs", "1"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "skipped" in err and "x.pcap" in err
    ds = Dataset.open(out)
    assert ds.meta["captures"][-1]["error"]
    # The unreadable capture's folder label ("junk") is not a class: no dead output.
    assert ds.label_names == ["facebook"]
    assert main(["extract", str(bad), "--out", str(tmp_path / "ds2"), "--strict"]) == 2
    assert (
        main(["extract", str(captures), str(bad), "--out", str(tmp_path / "d3"), "--strict"]) == 2
    )
    assert not (tmp_path / "d3").exists()  # no half-made dataset left behind


def test_nothing_readable_exits_2_on_one_line(tmp_path, capsys):
    bad = tmp_path / "a.pcap"
    bad.write_text("hello")
    assert main(["extract", str(bad), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trafficdl: error: nothing could be read") and "\n" not in err


def test_bad_flag_and_bad_values_exit_2(captures, tmp_path, capsys):
    assert main(["extract", str(captures), "--out", str(tmp_path / "d"), "--no-such-flag"]) == 2
    assert main(["extract", str(captures), "--out", str(tmp_path / "d"), "--packets", "0"]) == 2
    assert main(["extract", str(tmp_path / "missing"), "--out", str(tmp_path / "d")]) == 2
    assert main(["summary", str(tmp_path)]) == 2
    for line in capsys.readouterr().err.strip().splitlines():
        assert line.startswith("trafficdl: error:"), line


def test_labels_csv_and_burst_segmentation(captures, tmp_path):
    files = sorted(captures.rglob("*.pcap"))
    csv = tmp_path / "labels.csv"
    social = ("facebook", "messenger")
    rows = [f"{f},{'social' if f.parent.name in social else 'photo'}\n" for f in files]
    csv.write_text("file,label\n" + "".join(rows))
    out = tmp_path / "ds"
    assert main(["extract", *map(str, files), "--out", str(out), "--labels", str(csv),
                 "--segmentation", "burst", "--no-progress"]) == 0  # fmt: skip
    ds = Dataset.open(out)
    assert ds.label_names == ["photo", "social"] and ds.meta["segmentation"] == "burst"
    # every synthetic packet is TCP/UDP: bursts regroup them, none is lost
    assert int(ds.objects["n_packets"].sum()) == sum(c["packets"] for c in ds.meta["captures"])
    csv.write_text(f"{files[0]},x\n")
    assert main(["extract", *map(str, files), "--out", str(out), "--labels", str(csv)]) == 2


def test_parallel_and_serial_extraction_agree(captures, tmp_path, monkeypatch):
    from trafficdl.capture import ExtractConfig, extract, extract_dataset

    monkeypatch.setattr(extract, "SERIAL_BELOW", 0)  # small inputs: use the pool anyway
    pools, real = [], extract._results
    monkeypatch.setattr(extract, "_results", lambda w, j, p: pools.append(j) or real(w, j, p))
    cfg = ExtractConfig(segmentation="flow", payload_bytes=64, packets=5)
    a = extract_dataset([captures], tmp_path / "a", cfg, jobs=1, progress=False)
    b = extract_dataset([captures], tmp_path / "b", cfg, jobs=2, progress=False)
    assert pools == [1, 2]
    assert a.n_objects == b.n_objects > 90  # flows: each direction its own object
    da, db = Dataset.open(tmp_path / "a"), Dataset.open(tmp_path / "b")
    for name in ("payload", "packets", "labels", "objects"):
        assert (np.asarray(getattr(da, name)) == np.asarray(getattr(db, name))).all(), name
    assert da.payload.shape[1] == 64 and da.meta["extract_config"]["packets"] == 5


def test_labels_by_file_name_and_unreadable_csv(captures, tmp_path, capsys):
    files = sorted(captures.rglob("*.pcap"))[:2]
    csv = tmp_path / "l.csv"
    csv.write_text("".join(f"{f.name},label{i}\n" for i, f in enumerate(files)))
    out = tmp_path / "ds"
    args = ["extract", *map(str, files), "--out", str(out), "--labels", str(csv)]
    assert main([*args, "--no-progress"]) == 0
    assert Dataset.open(out).label_names == ["label0", "label1"]
    csv.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["extract", *map(str, files), "--out", str(out), "--labels", str(csv)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_out_that_is_a_file_is_a_one_line_error(captures, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("precious")
    assert main(["extract", str(captures), "--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "precious"
