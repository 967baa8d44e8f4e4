"""The acceptance test of decapsulation: a GTP-U capture of the same sessions as a plain
capture gives the same objects and the same two inputs (payload, packet fields)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from scapy.contrib.gtp import GTP_U_Header
from scapy.layers.l2 import Ether

from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture.pktbuild import gtp_u_capture, write_pcap
from trafficdl.synth import FlowWriter, app_profiles

CLIENT = bytes((10, 45, 0, 7))
SAME = ("proto", "src", "sport", "dst", "dport", "n_packets", "n_bytes", "start", "duration",
        "encrypted")  # fmt: skip


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A plain capture of 60 TLS/QUIC/DNS sessions and its GTP-U tunnelled twin."""
    root = tmp_path_factory.mktemp("twins")
    writer = FlowWriter(app_profiles(3)[2], random.Random("twins"), CLIENT)
    for _ in range(60):
        writer.add_flow()
    frames = writer.frames()
    plain, tunnelled = root / "plain.pcap", root / "gtp.pcap"
    with open(plain, "wb") as f:
        write_pcap(f, frames)
    with open(tunnelled, "wb") as f:
        write_pcap(f, gtp_u_capture(frames, {CLIENT}))
    return plain, tunnelled, len(frames)


def test_the_twin_is_real_gtp_u(twins):
    from scapy.utils import rdpcap

    first = rdpcap(str(twins[1]), count=2)
    assert all(GTP_U_Header in p and p[GTP_U_Header].teid in (0x1000, 0x2000) for p in first)
    assert Ether(bytes(first[0]))[GTP_U_Header].payload.src == "10.45.0.7"


@pytest.mark.parametrize("segmentation", ["biflow", "flow", "burst"])
def test_gtp_u_capture_gives_the_plain_objects_and_inputs(twins, segmentation):
    plain_path, gtp_path, n = twins
    cfg = ExtractConfig(segmentation=segmentation)
    plain, gtp = extract_file(plain_path, cfg), extract_file(gtp_path, cfg)
    assert plain.packets_read == gtp.packets_read == n
    assert len(plain) >= 60 and len(gtp) == len(plain)
    for name in SAME:
        assert gtp.objects[name].tolist() == plain.objects[name].tolist(), name
    np.testing.assert_array_equal(gtp.payload, plain.payload)
    np.testing.assert_array_equal(gtp.packets, plain.packets)
    assert set(gtp.objects["encap"].tolist()) == {"gtp"}
    assert set(plain.objects["encap"].tolist()) == {""}
    assert gtp.stats["tunnelled"] == n
    if segmentation == "biflow":  # the client's side of the tunnel is the base station
        assert set(gtp.objects["outer_src"].tolist()) == {"192.0.2.1"}
        assert set(gtp.objects["outer_dst"].tolist()) == {"192.0.2.2"}
        assert set(gtp.objects["tunnel_id"].tolist()) <= {0x1000, 0x2000}


def test_without_decap_the_twin_is_one_tunnel_biflow(twins):
    res = extract_file(twins[1], ExtractConfig(decap=()))
    assert len(res) == 1 and res.objects[0]["sport"] == res.objects[0]["dport"] == 2152
    assert res.objects[0]["n_packets"] == twins[2]
