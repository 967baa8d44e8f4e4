"""Link layers, IP versions and L4 fields, from scapy-crafted packets."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw

from trafficdl.capture import ExtractConfig, extract_file

CFG = ExtractConfig(payload_bytes=32, packets=4)


def tcp_pair(l3_up, l3_down):
    """Client request (window 1000) then server response (window 2000)."""
    return [
        l3_up / TCP(sport=40000, dport=443, flags="PA", seq=1, window=1000) / Raw(b"hello"),
        l3_down / TCP(sport=443, dport=40000, flags="PA", seq=9, window=2000) / Raw(b"world!"),
    ]


def check_pair(res, src="10.0.0.1", dst="10.0.0.2"):
    assert len(res.objects) == 1
    o = res.objects[0]
    assert (o["proto"], o["src"], o["sport"], o["dst"], o["dport"]) == (6, src, 40000, dst, 443)
    assert o["n_packets"] == 2 and o["n_bytes"] == 11
    assert bytes(res.payload[0][:11]) == b"helloworld!"
    assert not res.payload[0][11:].any()
    np.testing.assert_allclose(
        res.packets[0], [[5, 1, 1000, 0], [6, -1, 2000, 0.1], [0, 0, 0, 0], [0, 0, 0, 0]],
        rtol=1e-5,
    )  # fmt: skip


V4 = (IP(src="10.0.0.1", dst="10.0.0.2"), IP(src="10.0.0.2", dst="10.0.0.1"))
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


@pytest.mark.parametrize(
    ("l2", "linktype"),
    [
        (lambda: ETH.copy(), None),
        (lambda: ETH / Dot1Q(vlan=7), None),
        (lambda: Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=7), None),  # QinQ
        (lambda: CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800), 113),
        (lambda: CookedLinuxV2(proto=0x0800, ifindex=2, lladdrtype=1, lladdrlen=6), 276),
        (lambda: Loopback(type=2), 0),
    ],
    ids=["ethernet", "vlan", "qinq", "sll", "sll2", "null"],
)
def test_link_layers_ipv4(extract_pkts, l2, linktype):
    pkts = [l2() / p for p in tcp_pair(*V4)]
    check_pair(extract_pkts(pkts, CFG, linktype=linktype))


def test_raw_ip_link(extract_pkts):
    check_pair(extract_pkts(tcp_pair(*V4), CFG, linktype=101))


def test_ipv6_with_extension_headers(extract_pkts):
    up = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
    down = IPv6(src="2001:db8::2", dst="2001:db8::1") / IPv6ExtHdrRouting(addresses=[])
    res = extract_pkts([ETH / p for p in tcp_pair(up, down)], CFG)
    check_pair(res, src="2001:db8::1", dst="2001:db8::2")


def test_ipv6_fragments_first_kept_rest_counted(extract_pkts):
    base = IPv6(src="2001:db8::1", dst="2001:db8::2")
    first = ETH / base / IPv6ExtHdrFragment(offset=0, m=1, id=5) / UDP(sport=5000, dport=53)
    first = first / Raw(b"abcd")
    later = ETH / base / IPv6ExtHdrFragment(offset=3, m=0, id=5) / Raw(b"tail-bytes")
    res = extract_pkts([first, later], CFG)
    assert res.stats["fragments"] == 1
    assert len(res.objects) == 1 and res.objects[0]["n_packets"] == 1
    assert bytes(res.payload[0][:4]) == b"abcd"


def test_ipv4_non_first_fragment_counted_and_skipped(extract_pkts):
    frag = ETH / IP(src="10.0.0.1", dst="10.0.0.2", proto=17, frag=185) / Raw(b"x" * 40)
    whole = ETH / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=53) / Raw(b"q")
    res = extract_pkts([whole, frag], CFG)
    assert res.stats["fragments"] == 1
    assert res.objects[0]["n_packets"] == 1


def test_udp_window_is_zero_and_payload_excludes_headers(extract_pkts):
    pkts = [
        ETH / V4[0] / UDP(sport=5353, dport=53) / Raw(b"\x01\x02\x03"),
        ETH / V4[1] / UDP(sport=53, dport=5353) / Raw(b"\x04\x05"),
    ]
    res = extract_pkts(pkts, CFG)
    o = res.objects[0]
    assert o["proto"] == 17 and o["n_bytes"] == 5
    assert bytes(res.payload[0][:6]) == b"\x01\x02\x03\x04\x05\x00"
    assert res.packets[0][:2, 2].tolist() == [0.0, 0.0]  # window
    assert res.packets[0][:2, 0].tolist() == [3.0, 2.0]  # L4 payload sizes


def test_ethernet_padding_is_not_payload(extract_pkts):
    # a 1-byte UDP payload is padded to the 60-byte Ethernet minimum on the wire
    frame = ETH / V4[0] / UDP(sport=1, dport=2) / Raw(b"A") / Raw(b"\0" * 20)
    frame[IP].len = 20 + 8 + 1
    frame[UDP].len = 9
    res = extract_pkts([frame], CFG)
    assert res.objects[0]["n_bytes"] == 1
    assert res.packets[0][0, 0] == 1.0


def test_other_protocols_counted_and_skipped(extract_pkts):
    pkts = [ETH / ARP(), ETH / V4[0] / ICMP(), ETH / V4[0] / UDP(sport=1, dport=2) / Raw(b"z")]
    res = extract_pkts(pkts, CFG)
    assert res.stats["non_ip"] == 1 and res.stats["other_l4"] == 1
    assert len(res.objects) == 1 and res.packets_read == 3


def test_tcp_header_options_are_not_payload(extract_pkts):
    opts = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")]
    syn = ETH / V4[0] / TCP(sport=40000, dport=80, flags="S", options=opts, window=64240)
    data = ETH / V4[0] / TCP(sport=40000, dport=80, flags="PA", seq=1, options=[("NOP", None)] * 4)
    res = extract_pkts([syn, data / Raw(b"GET /")], CFG)
    assert bytes(res.payload[0][:6]) == b"GET /\0"
    assert res.packets[0][0].tolist() == [0.0, 1.0, 64240.0, 0.0]


def test_snaplen_truncated_frame_keeps_wire_size(extract_pkts, tmp_path):
    frame = bytes(ETH / V4[0] / UDP(sport=1, dport=2) / Raw(b"B" * 100))
    path = tmp_path / "snap.pcap"
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 60, 1)
    path.write_bytes(header + struct.pack("<IIII", 1, 0, 60, len(frame)) + frame[:60])
    res = extract_file(path, CFG)
    assert res.packets[0][0, 0] == 100.0  # size from the IP header
    assert bytes(res.payload[0][:18]) == b"B" * 18  # only the captured bytes
    assert not res.payload[0][18:].any()
