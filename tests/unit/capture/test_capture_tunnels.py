"""Tunnel decapsulation, from scapy-crafted captures: every encapsulation, both inner IP
versions, nested stacks, the switches (--decap, --no-decap, tunnel key)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from trafficdl.capture import ExtractConfig, ExtractConfigError

CFG = ExtractConfig(payload_bytes=32, packets=4)
INNER = {
    4: (IP(src="10.45.0.7", dst="93.184.216.34"), IP(src="93.184.216.34", dst="10.45.0.7")),
    6: (IPv6(src="2001:db8:a::7", dst="2001:db8:b::1"),
        IPv6(src="2001:db8:b::1", dst="2001:db8:a::7")),
}  # fmt: skip
OUTER = ("192.0.2.1", "192.0.2.2")  # client-side tunnel end first
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _outer(up: bool) -> IP:
    a, b = OUTER if up else OUTER[::-1]
    return IP(src=a, dst=b)


def _eth_in(inner: Packet) -> Packet:
    return Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04") / inner


def _ppp(inner: Packet) -> Packet:
    return PPP(proto=0x0021 if isinstance(inner, IP) else 0x0057) / inner


# Each encapsulation: (inner L3 packet, uplink?) -> frame; expected encap, outer IPs, tunnel id
Wrap = Callable[[Packet, bool], Packet]
ENCAPS: dict[str, tuple[Wrap, str, bool, int]] = {
    "gtp": (lambda p, up: ETH / _outer(up) / UDP(sport=2152, dport=2152)
            / GTP_U_Header(teid=0x100 if up else 0x200) / p, "gtp", True, 0x100),
    "gtp-ext": (lambda p, up: ETH / _outer(up) / UDP(sport=2152, dport=2152)
                / GTP_U_Header(teid=0x100, E=1, S=1, next_ex=0x85)
                / GTPPDUSessionContainer(type=0 if not up else 1, QFI=9) / p, "gtp", True, 0x100),
    "gtp-over-ipv6": (lambda p, up: ETH / IPv6(src="2001:db8::1" if up else "2001:db8::2",
                                               dst="2001:db8::2" if up else "2001:db8::1")
                      / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=7) / p, "gtp", True, 7),
    "vxlan": (lambda p, up: ETH / _outer(up) / UDP(sport=49152 if up else 50000, dport=4789)
              / VXLAN(vni=4242) / _eth_in(p), "vxlan", True, 4242),
    "geneve": (lambda p, up: ETH / _outer(up) / UDP(sport=1234, dport=6081)
               / GENEVE(vni=77, proto=0x6558, optionlen=2, options=b"\x01\x02\x03\x04" * 2)
               / _eth_in(p), "geneve", True, 77),
    "geneve-ip": (lambda p, up: ETH / _outer(up) / UDP(sport=1234, dport=6081)
                  / GENEVE(vni=78, proto=0x0800 if isinstance(p, IP) else 0x86DD) / p,
                  "geneve", True, 78),
    "gre": (lambda p, up: ETH / _outer(up) / GRE(proto=0x0800 if isinstance(p, IP) else 0x86DD)
            / p, "gre", True, 0),
    "gre-key-seq-csum": (lambda p, up: ETH / _outer(up)
                         / GRE(chksum_present=1, key_present=1, key=99, seqnum_present=1,
                               proto=0x0800 if isinstance(p, IP) else 0x86DD) / p, "gre", True, 99),
    "nvgre": (lambda p, up: ETH / _outer(up) / GRE(key_present=1, key=(5000 << 8) | 3,
                                                   proto=0x6558) / _eth_in(p),
              "nvgre", True, (5000 << 8) | 3),
    "erspan2": (lambda p, up: ETH / _outer(up) / GRE(seqnum_present=1, proto=0x88BE)
                / ERSPAN_II(session_id=12) / _eth_in(p), "erspan", True, 12),
    "erspan1": (lambda p, up: ETH / _outer(up) / GRE(proto=0x88BE) / _eth_in(p),
                "erspan", True, 0),
    "erspan3": (lambda p, up: ETH / _outer(up) / GRE(seqnum_present=1, proto=0x22EB)
                / ERSPAN_III(session_id=13, o=1) / ERSPAN_PlatformSpecific() / _eth_in(p),
                "erspan", True, 13),
    "mpls": (lambda p, up: Ether(type=0x8847) / MPLS(label=100, s=0) / MPLS(label=16, s=1) / p,
             "mpls", False, 16),
    "pppoe": (lambda p, up: Ether(type=0x8864) / PPPoE(sessionid=0x1F) / _ppp(p),
              "pppoe", False, 0x1F),
    "pppoe-qinq": (lambda p, up: Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=7, type=0x8864)
                   / PPPoE(sessionid=5) / _ppp(p), "pppoe", False, 5),
    "ipip": (lambda p, up: ETH / _outer(up) / p, "ipip", True, 0),
    "mpls-in-ip": (lambda p, up: ETH / IP(src=OUTER[not up], dst=OUTER[up], proto=137)
                   / MPLS(label=21, s=1) / p, "mpls", True, 21),
    # nested stacks
    "pppoe+gtp": (lambda p, up: Ether() / Dot1Q(vlan=3, type=0x8864) / PPPoE(sessionid=2)
                  / PPP(proto=0x0021) / _outer(up) / UDP(dport=2152) / GTP_U_Header(teid=9) / p,
                  "pppoe+gtp", True, 9),
    "mpls+gtp": (lambda p, up: Ether(type=0x8847) / MPLS(label=30, s=1) / _outer(up)
                 / UDP(dport=2152) / GTP_U_Header(teid=8) / p, "mpls+gtp", True, 8),
    "gre+vxlan": (lambda p, up: ETH / _outer(up) / GRE(proto=0x0800) / IP(src="172.16.0.1",
                  dst="172.16.0.2") / UDP(dport=4789) / VXLAN(vni=3) / _eth_in(p),
                  "gre+vxlan", True, 3),
    "vxlan+gtp": (lambda p, up: ETH / _outer(up) / UDP(dport=4789) / VXLAN(vni=1)
                  / _eth_in(IP(src="198.51.100.1", dst="198.51.100.2")) / UDP(dport=2152)
                  / GTP_U_Header(teid=4) / p, "vxlan+gtp", True, 4),
    "gre+mpls": (lambda p, up: ETH / _outer(up) / GRE(proto=0x8847) / MPLS(label=50, s=1) / p,
                 "gre+mpls", True, 50),
}  # fmt: skip


def _pair(version: int) -> list[Packet]:
    up, down = INNER[version]
    return [
        up / TCP(sport=40000, dport=443, flags="PA", seq=1, window=1000) / Raw(b"hello"),
        down / TCP(sport=443, dport=40000, flags="PA", seq=9, window=2000) / Raw(b"world!"),
    ]


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("name", list(ENCAPS))
def test_each_encapsulation_gives_the_inner_biflow(extract_pkts, name, version):
    wrap, encap, outer_ip, tid = ENCAPS[name]
    if name == "ipip" and version == 6:
        wrap = lambda p, up: ETH / _outer(up) / p  # noqa: E731  6in4 (protocol 41)
    up, down = _pair(version)
    res = extract_pkts([wrap(up, True), wrap(down, False)], CFG)
    assert len(res.objects) == 1, res.stats
    o = res.objects[0]
    src, dst = (INNER[version][0].src, INNER[version][0].dst)
    assert (o["proto"], o["src"], o["sport"], o["dst"], o["dport"]) == (6, src, 40000, dst, 443)
    assert (o["n_packets"], o["n_bytes"]) == (2, 11)
    assert bytes(res.payload[0][:12]) == b"helloworld!\0"
    np.testing.assert_allclose(res.packets[0][:2], [[5, 1, 1000, 0], [6, -1, 2000, 0.1]],
                               rtol=1e-5)  # fmt: skip
    assert o["encap"] == encap and o["tunnel_id"] == tid
    if outer_ip:
        first = "2001:db8::1" if name == "gtp-over-ipv6" else OUTER[0]
        assert o["outer_src"] == first and o["outer_dst"] != first and o["outer_dst"]
    else:
        assert o["outer_src"] == o["outer_dst"] == ""
    assert res.stats["tunnelled"] == 2 and res.stats["malformed"] == 0


def test_plain_packets_have_no_tunnel_metadata(extract_pkts):
    res = extract_pkts([ETH / p for p in _pair(4)], CFG)
    o = res.objects[0]
    assert (o["encap"], o["outer_src"], o["tunnel_id"]) == ("", "", 0)
    assert res.stats["tunnelled"] == 0


def test_no_decap_keys_objects_by_the_outer_packets(extract_pkts):
    wrap = ENCAPS["gtp"][0]
    pkts = [wrap(p, up) for p, up in zip(_pair(4), (True, False), strict=True)]
    res = extract_pkts(pkts, ExtractConfig(payload_bytes=32, packets=4, decap=()))
    o = res.objects[0]
    assert (o["proto"], o["src"], o["sport"], o["dport"], o["encap"]) == (
        17, OUTER[0], 2152, 2152, "")  # fmt: skip
    assert bytes(res.payload[0][:2]) == b"\x30\xff"  # the GTP header, as before decapsulation
    gre = ENCAPS["gre"][0]
    res = extract_pkts([gre(p, True) for p in _pair(4)], ExtractConfig(decap=("gtp",)))
    assert len(res.objects) == 0 and res.stats["other_l4"] == 2


def test_decap_accepts_a_comma_list_and_rejects_unknown_names():
    assert ExtractConfig(decap="GTP, vxlan").decap == ("gtp", "vxlan")
    assert ExtractConfig(decap="none").decap == ()
    assert ExtractConfig(decap=["gre", "gtp"]).decap == ("gtp", "gre")  # canonical order
    with pytest.raises(ExtractConfigError, match="unknown tunnel ipsec"):
        ExtractConfig(decap="gtp,ipsec")


def test_tunnel_key_separates_overlays_with_the_same_inner_tuple(extract_pkts):
    def vx(p: Packet, vni: int) -> Packet:
        return ETH / _outer(True) / UDP(dport=4789) / VXLAN(vni=vni) / _eth_in(p)

    up, down = _pair(4)
    pkts = [vx(up, 1), vx(down, 1), vx(up, 2), vx(down, 2)]
    assert len(extract_pkts(pkts, CFG).objects) == 1
    res = extract_pkts(pkts, ExtractConfig(payload_bytes=32, packets=4, tunnel_key=True))
    assert res.objects["tunnel_id"].tolist() == [1, 2]
    assert res.objects["n_packets"].tolist() == [2, 2]
    assert res.packets[1][:2, 1].tolist() == [1.0, -1.0]  # each overlay a whole biflow


def test_gtp_signalling_is_not_an_object(extract_pkts):
    echo = ETH / _outer(True) / UDP(sport=2152, dport=2152) / GTP_U_Header(gtp_type=1, teid=0)
    data = ENCAPS["gtp"][0](_pair(4)[0], True)
    res = extract_pkts([echo, data], CFG)
    assert res.stats["non_ip"] == 1 and len(res.objects) == 1
    assert res.objects[0]["encap"] == "gtp"


@pytest.mark.parametrize("cut", [44, 48, 60])
def test_truncated_tunnel_headers_count_as_malformed(extract_pkts, cut):
    frame = ENCAPS["gtp-ext"][0](_pair(4)[0], True)
    raw = bytes(frame)[:cut]
    res = extract_pkts([Ether(raw)], CFG)
    assert res.stats["malformed"] == 1 and len(res.objects) == 0
