"""export → import round trips byte for byte; foreign files; bad input is a one-line exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import trafficdl
from trafficdl.cli import main
from trafficdl.dataset import Dataset
from trafficdl.interchange import packet_columns

FILES = ("payload.npy", "packets.npy", "labels.npy", "objects.npy", "dataset.json")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_round_trip_is_byte_for_byte(tiny, tmp_path, suffix, capsys):
    src = tiny[1]
    table = tmp_path / f"objects.{suffix}"
    assert main(["export", str(src), "--out", str(table)]) == 0
    assert main(["import", str(table), "--out", str(tmp_path / "back"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["objects"] == 48
    for name in FILES:
        assert (tmp_path / "back" / name).read_bytes() == (src / name).read_bytes(), name
    a, b = Dataset.open(src), Dataset.open(tmp_path / "back")
    assert a.meta == b.meta and np.array_equal(a.packets, b.packets)


def test_export_columns_are_the_documented_ones(tiny, tmp_path):
    out = tmp_path / "o.parquet"
    assert main(["export", str(tiny[1]), "--out", str(out)]) == 0
    frame = pq.read_table(out).to_pandas()
    ds = trafficdl.open_dataset(tiny[1])
    assert len(frame) == len(ds)
    head = ["capture", "proto", "src", "sport", "dst", "dport", "n_packets", "n_bytes", "start",
            "duration", "encrypted"]  # fmt: skip
    assert list(frame.columns[: len(head)]) == head
    assert {"label", "capture_path", "encryption", "payload"} <= set(frame.columns)
    assert list(frame.columns[-80:]) == packet_columns(20)
    assert frame["payload"][3] == bytes(ds.payload[3])
    assert frame["iat_1"][3] == ds.packets[3, 1, 3] and frame["size_0"].dtype == np.float32


def test_import_of_a_foreign_csv(tmp_path):
    """An NFStream-like export: a few 5-tuple columns, label, payload hex, packet sizes only."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        row = {"src": f"10.0.0.{i}", "dst": "192.0.2.1", "sport": 40000 + i, "dport": 443,
               "proto": 6, "label": ["alpha", "beta"][i % 2],
               "payload": bytes(rng.integers(0, 256, 8, dtype=np.uint8)).hex()}  # fmt: skip
        for p in range(3):
            real = p < 2 + i % 2
            row.update({f"size_{p}": 100.0 * (p + 1) if real else 0.0,
                        f"direction_{p}": (1.0 if p % 2 == 0 else -1.0) if real else 0.0,
                        f"window_{p}": 0.0, f"iat_{p}": 0.01 * p if real else 0.0})  # fmt: skip
        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "nf.csv", index=False)
    assert main(["import", str(tmp_path / "nf.csv"), "--out", str(tmp_path / "ds")]) == 0
    ds = trafficdl.open_dataset(tmp_path / "ds")
    assert ds.label_names == ["alpha", "beta"] and ds.labels.tolist() == [0, 1] * 6
    assert ds.payload.shape == (12, 8) and ds.packets.shape == (12, 3, 4)
    assert ds.objects["n_packets"].tolist() == [2, 3] * 6  # counted from the direction field
    assert ds.objects["src"][5] == "10.0.0.5" and ds.meta["imported_from"].endswith("nf.csv")
    assert bytes(ds.payload[0]).hex() == rows[0]["payload"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "{tmp}/missing.csv", "--out", "{tmp}/x"], "no such file"),
        (["import", "{tmp}/nolabel.csv", "--out", "{tmp}/x"], "no 'label' column"),
        (["import", "{tmp}/noinput.csv", "--out", "{tmp}/x"], "neither a 'payload'"),
        (["import", "{tmp}/badhex.csv", "--out", "{tmp}/x"], "neither bytes nor hex"),
        (["export", "{tmp}", "--out", "{tmp}/o.csv"], "not a trafficdl dataset"),
        (["export", "{tmp}", "--out", "{tmp}/o.txt"], "say --format parquet or csv"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "nolabel.csv").write_text("src,payload\n1.2.3.4,00ff\n")
    (tmp_path / "noinput.csv").write_text("src,label\n1.2.3.4,a\n")
    (tmp_path / "badhex.csv").write_text("label,payload\na,zz\n")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
