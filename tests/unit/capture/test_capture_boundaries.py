"""Object boundaries (TCP close, active timeout) and odd frames: TSO, FCS, QinQ TPIDs,
pcapng if_tsoffset / if_tsresol / if_fcslen."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from trafficdl.capture import ExtractConfig, extract_file

CFG = ExtractConfig(payload_bytes=64, packets=8)
C, S = IP(src="10.0.0.1", dst="10.0.0.2"), IP(src="10.0.0.2", dst="10.0.0.1")


def _conn(end: str, data: bytes) -> list:
    """SYN, SYN+ACK, a request, then the connection's end: 'fin' (both ways) or 'rst'."""
    pkts = [
        Ether() / C / TCP(sport=40000, dport=443, flags="S", seq=0),
        Ether() / S / TCP(sport=443, dport=40000, flags="SA", seq=0, ack=1),
        Ether() / C / TCP(sport=40000, dport=443, flags="PA", seq=1) / Raw(data),
    ]
    n = 1 + len(data)
    if end == "fin":
        pkts += [
            Ether() / C / TCP(sport=40000, dport=443, flags="FA", seq=n),
            Ether() / S / TCP(sport=443, dport=40000, flags="FA", seq=1, ack=n + 1),
            Ether() / C / TCP(sport=40000, dport=443, flags="A", seq=n + 1, ack=2),
        ]
    else:
        pkts.append(Ether() / S / TCP(sport=443, dport=40000, flags="R", seq=1))
    return pkts


@pytest.mark.parametrize("end", ["fin", "rst"])
def test_a_syn_after_close_starts_a_new_object(extract_pkts, end):
    first, second = _conn(end, b"one"), _conn("fin", b"second")
    res = extract_pkts(first + second, CFG)  # 0.1 s apart: far inside the idle timeout
    assert res.objects["n_packets"].tolist() == [len(first), len(second)]
    assert [bytes(p[:6]) for p in res.payload] == [b"one\0\0\0", b"second"]
    assert res.packets[1][0].tolist()[:2] == [0.0, 1.0]  # the new SYN is the client's
    merged = extract_pkts(first + second, ExtractConfig(payload_bytes=64, tcp_close=False))
    assert merged.objects["n_packets"].tolist() == [len(first) + len(second)]


def test_one_fin_does_not_end_a_biflow_but_ends_a_flow(extract_pkts):
    half = _conn("fin", b"x")[:4]  # only the client's FIN
    again = _conn("fin", b"y")
    assert extract_pkts(half + again, CFG).objects["n_packets"].tolist() == [len(half + again)]
    flows = extract_pkts(half + again, ExtractConfig(segmentation="flow"))
    client = [o["n_packets"] for o in flows.objects if o["sport"] == 40000]
    assert client == [3, 4]  # SYN, data, FIN | SYN, data, FIN, ACK


def test_active_timeout_splits_a_busy_flow(extract_pkts):
    pkts = [Ether() / C / UDP(sport=5000, dport=53) / Raw(b"%d" % i) for i in range(10)]
    times = [1000.0 + 2 * i for i in range(10)]  # one packet every 2 s for 18 s
    res = extract_pkts(pkts, ExtractConfig(active_timeout=5.0), times=times)
    assert res.objects["n_packets"].tolist() == [3, 3, 3, 1]
    assert extract_pkts(pkts, ExtractConfig(active_timeout=0), times=times).objects[
        "n_packets"].tolist() == [10]  # fmt: skip


def test_tso_frame_takes_its_length_from_the_frame(extract_pkts):
    big = Ether() / C / TCP(sport=40000, dport=443, flags="PA", seq=1) / Raw(b"T" * 3000)
    big[IP].len = 0  # what the capturing host saw before the NIC segmented it
    v6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)
    v6 = v6 / Raw(b"U" * 2000)
    v6[IPv6].plen = 0
    res = extract_pkts([big, v6], CFG)
    assert res.stats["tso"] == 2 and res.stats["malformed"] == 0
    assert res.objects["n_bytes"].tolist() == [3000, 2000]
    assert res.packets[0][0, 0] == 3000.0 and res.packets[1][0, 0] == 2000.0


def _pcap_with_fcs(path: Path, frames: list[bytes]) -> Path:
    """A pcap whose link-type field declares a 4-byte FCS (libpcap LT_FCS_DATALINK_EXT)."""
    field = (2 << 28) | 0x04000000 | 1  # two 16-bit words of FCS, Ethernet
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, field)
    for i, f in enumerate(frames):
        f += b"\xde\xad\xbe\xef"
        out += struct.pack("<IIII", 100 + i, 0, len(f), len(f)) + f
    path.write_bytes(out)
    return path


def test_declared_fcs_is_stripped(tmp_path):
    tso = Ether() / C / TCP(sport=40000, dport=443, flags="PA", seq=1) / Raw(b"F" * 100)
    tso[IP].len = 0
    reply = Ether() / S / TCP(sport=443, dport=40000, flags="PA", seq=1) / Raw(b"ok")
    path = _pcap_with_fcs(tmp_path / "fcs.pcap", [bytes(tso), bytes(reply)])
    res = extract_file(path, ExtractConfig(payload_bytes=128))
    assert res.error is None and res.stats["tso"] == 1
    assert res.objects["n_bytes"].tolist() == [102]  # not 106: the FCS is no payload
    assert bytes(res.payload[0][98:104]) == b"FFok\0\0"


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value.ljust((len(value) + 3) & ~3, b"\0")


def _block(btype: int, body: bytes) -> bytes:
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def test_pcapng_tsoffset_tsresol_and_fcslen(tmp_path):
    frame = bytes(Ether() / C / UDP(sport=7, dport=8) / Raw(b"ng")) + b"\x01\x02\x03\x04"
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = _option(9, b"\x09") + _option(14, struct.pack("<q", 1_000_000)) + _option(13, b"\x04")
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + opts + struct.pack("<I", 0))
    ticks = 2_500_000_000  # 2.5 s in nanoseconds (if_tsresol 9)
    pad = frame.ljust((len(frame) + 3) & ~3, b"\0")
    epb = _block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                len(frame)) + pad)  # fmt: skip
    path = tmp_path / "opts.pcapng"
    path.write_bytes(shb + idb + epb)
    res = extract_file(path, CFG)
    assert res.error is None and not res.warnings
    assert res.objects["start"].tolist() == [1_000_002.5]
    assert res.objects["n_bytes"].tolist() == [2] and bytes(res.payload[0][:3]) == b"ng\0"


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8, 0x9100, 0x9200])
def test_qinq_with_any_tpid(extract_pkts, tpid):
    pkt = Ether(type=tpid) / Dot1Q(vlan=100) / Dot1Q(vlan=7) / C / UDP(sport=9, dport=53)
    res = extract_pkts([pkt / Raw(b"q")], CFG)
    assert len(res.objects) == 1 and res.objects[0]["dport"] == 53
