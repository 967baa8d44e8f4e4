"""Tunnelled captures and clear answers through trafficdl.cli.main: --decap/--no-decap,
the dataset's record of the choice, summary per encapsulation, one-line errors."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from trafficdl.capture.pktbuild import gtp_u_capture, write_pcap
from trafficdl.cli import main
from trafficdl.dataset import Dataset
from trafficdl.synth import FlowWriter, app_profiles


@pytest.fixture(scope="module")
def twin_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two apps' sessions as plain captures and as GTP-U tunnelled twins (same folders)."""
    root = tmp_path_factory.mktemp("twinsets")
    for i, prof in enumerate(app_profiles(2)):
        client = bytes((10, 45, i, 7))
        writer = FlowWriter(prof, random.Random(f"cli/{i}"), client)
        for _ in range(25):
            writer.add_flow()
        frames = writer.frames()
        for kind, fr in (("plain", frames), ("gtp", gtp_u_capture(frames, {client}))):
            (root / kind / prof.name).mkdir(parents=True)
            with open(root / kind / prof.name / "c.pcap", "wb") as f:
                write_pcap(f, fr)
    return root / "plain", root / "gtp"


def _extract(src: Path, out: Path, *flags: str) -> int:
    return main(["extract", str(src), "--out", str(out), "--no-progress", "--jobs", "1", *flags])


def test_gtp_dataset_equals_the_plain_one(twin_sets, tmp_path, capsys):
    plain, gtp = twin_sets
    assert _extract(plain, tmp_path / "p") == 0 and _extract(gtp, tmp_path / "g") == 0
    a, b = Dataset.open(tmp_path / "p"), Dataset.open(tmp_path / "g")
    assert len(a) == len(b) >= 50 and a.label_names == b.label_names
    for name in ("payload", "packets", "labels"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    cfg = b.meta["extract_config"]  # the choices, as the dataset records them
    assert cfg["decap"] == ["gtp", "vxlan", "geneve", "gre", "mpls", "ipip"]
    assert (cfg["idle_timeout"], cfg["active_timeout"], cfg["tcp_close"]) == (120.0, 1800.0, True)
    assert cfg["tunnel_key"] is False
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "g"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["encapsulation"] == {"gtp": len(b)}
    assert main(["summary", str(tmp_path / "p"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["encapsulation"] == {"none": len(a)}
    assert main(["summary", str(tmp_path / "g")]) == 0
    assert f"encapsulation: gtp {len(b)}" in capsys.readouterr().out


def test_no_decap_and_a_subset_are_recorded(twin_sets, tmp_path):
    gtp = twin_sets[1]
    assert _extract(gtp, tmp_path / "n", "--no-decap") == 0
    ds = Dataset.open(tmp_path / "n")
    assert len(ds) == 2 and ds.meta["extract_config"]["decap"] == []  # one tunnel per app
    assert set(ds.objects["dport"].tolist()) == {2152}
    assert _extract(gtp, tmp_path / "v", "--decap", "vxlan,gre") == 0
    assert Dataset.open(tmp_path / "v").meta["extract_config"]["decap"] == ["vxlan", "gre"]
    assert _extract(gtp, tmp_path / "t", "--active-timeout", "0", "--no-tcp-close") == 0
    cfg = Dataset.open(tmp_path / "t").meta["extract_config"]
    assert (cfg["active_timeout"], cfg["tcp_close"]) == (0.0, False)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("trafficdl: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_unknown_tunnel_name_is_one_line(twin_sets, tmp_path, capsys):
    assert _extract(twin_sets[1], tmp_path / "x", "--decap", "gtp,ipsec") == 2
    assert "unknown tunnel ipsec" in _one_error_line(capsys)


def test_nothing_read_says_why_for_each_file(tmp_path, capsys):
    good = tmp_path / "in" / "a.pcap"
    good.parent.mkdir()
    frame = b"\x00" * 60
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    good.write_bytes(header + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 60) + frame)
    empty = tmp_path / "in" / "b.pcap"
    empty.write_bytes(header)
    junk = tmp_path / "in" / "c.pcap"
    junk.write_text("no capture")
    assert _extract(tmp_path / "in", tmp_path / "ds") == 2
    err = _one_error_line(capsys)
    assert f"{good}: corrupt record at byte 24" in err
    assert f"{empty}: no packets" in err
    assert f"{junk}: not a pcap or pcapng" in err
    assert not (tmp_path / "ds").exists()


def test_no_objects_says_what_the_packets_were(twin_sets, tmp_path, capsys):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import GRE, Ether
    from scapy.utils import wrpcap

    path = tmp_path / "gre" / "g.pcap"
    path.parent.mkdir()
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    wrpcap(str(path), [eth / IP(src="192.0.2.1", dst="192.0.2.2") / GRE() / inner] * 3)
    capsys.readouterr()
    assert _extract(path.parent, tmp_path / "ds", "--no-decap") == 2
    err = _one_error_line(capsys)
    assert "no TCP/UDP objects found" in err and "3 packets: 3 other-l4" in err
    assert _extract(path.parent, tmp_path / "ds2") == 0  # decapsulated, the GRE has objects


def test_evaluate_quiet_still_prints_the_figures(twin_sets, tmp_path, capsys):
    assert _extract(twin_sets[0], tmp_path / "ds") == 0
    capsys.readouterr()
    argv = ["evaluate", str(tmp_path / "ds"), "--model", "lstm", "--folds", "2", "--epochs", "1",
            "--out", str(tmp_path / "ev"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "macro F" in out and "fold 2/2" in out and "most confused" in out
    assert main([*argv[:-1], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 2  # --json: the JSON only
