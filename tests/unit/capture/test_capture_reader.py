"""pcap/pcapng reading, damaged and garbage files, and fuzzing of the reader+walk."""

from __future__ import annotations

import functools
import io
import struct
import tempfile
from pathlib import Path

from capture_helpers import write_capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture.reader import open_records
from trafficdl.capture.walk import Walker


def frames(n=5):
    return [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=53)
            / Raw(b"p%d" % i) for i in range(n)]  # fmt: skip


def test_pcapng_matches_pcap(tmp_path):
    a = extract_file(write_capture(tmp_path / "a.pcap", frames()), ExtractConfig())
    b = extract_file(write_capture(tmp_path / "b.pcapng", frames(), ng=True), ExtractConfig())
    assert b.format == "pcapng" and a.format == "pcap"
    assert (a.payload == b.payload).all() and (a.packets == b.packets).all()
    assert a.objects["start"].tolist() == b.objects["start"].tolist()


def test_nanosecond_and_big_endian_pcap(tmp_path):
    frame = bytes(frames(1)[0])
    for magic, endian, frac, expect in ((0xA1B23C4D, ">", 5, 7.000000005),
                                        (0xA1B2C3D4, "<", 5, 7.000005)):  # fmt: skip
        data = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
        data += struct.pack(endian + "IIII", 7, frac, len(frame), len(frame)) + frame
        path = tmp_path / f"{magic:x}{endian == '>'}.pcap"
        path.write_bytes(data)
        res = extract_file(path, ExtractConfig())
        assert res.objects[0]["start"] == expect


def test_truncated_capture_keeps_packets_before_damage(tmp_path):
    path = write_capture(tmp_path / "t.pcap", frames(5))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    res = extract_file(path, ExtractConfig())
    assert res.error is None and res.packets_read == 4
    assert any("truncated" in w for w in res.warnings)


def test_corrupt_record_length_stops_with_warning(tmp_path):
    path = write_capture(tmp_path / "c.pcap", frames(3))
    data = bytearray(path.read_bytes())
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    struct.pack_into("<I", data, 24 + 16 + first_len + 8, 0x7FFFFFFF)  # second record
    path.write_bytes(bytes(data))
    res = extract_file(path, ExtractConfig())
    assert res.packets_read == 1 and any("corrupt" in w for w in res.warnings)


def test_garbage_file_is_an_error_not_an_exception(tmp_path):
    path = tmp_path / "notes.pcap"
    path.write_text("this is not a capture\n" * 10)
    res = extract_file(path, ExtractConfig())
    assert res.error and "not a pcap or pcapng" in res.error
    assert len(res.objects) == 0 and res.packets_read == 0


def test_missing_file_is_an_error(tmp_path):
    res = extract_file(tmp_path / "absent.pcap", ExtractConfig())
    assert res.error and "cannot read" in res.error


def _walk_bytes(data: bytes) -> None:
    try:
        reader = open_records(io.BytesIO(data))
    except Exception as exc:  # only the documented format error may escape
        assert type(exc).__name__ == "CaptureFormatError"
        return
    for seg in ("biflow", "burst"):
        w = Walker(ExtractConfig(segmentation=seg, payload_bytes=16, packets=3))
        w.feed(reader if seg == "biflow" else open_records(io.BytesIO(data)))
        w.close()
        w.sink.arrays()


@functools.cache
def seed_captures() -> tuple[bytes, ...]:
    """Small valid captures, written once by scapy: pcap and pcapng of TCP, UDP and a
    fragment; VLAN, IPv6 and tunnelled packets (GTP-U, VXLAN, GRE, MPLS, PPPoE); SLL."""
    from scapy.contrib.gtp import GTP_U_Header
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import GRE, CookedLinux, Dot1Q
    from scapy.layers.ppp import PPP, PPPoE
    from scapy.layers.vxlan import VXLAN

    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    inner = IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=40000, dport=443) / Raw(b"\x16\x03ab")
    pkts = [
        Ether() / ip / UDP(sport=5, dport=443) / Raw(b"\x16\x03"),
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=443, dport=5) / Raw(b"x" * 30),
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1", frag=0, flags=1) / Raw(b"zz"),
    ]  # fmt: skip
    odd = [
        Ether() / Dot1Q(vlan=5) / ip / UDP(sport=6, dport=53) / Raw(b"q"),
        Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=7, dport=443) / Raw(b"6"),
        Ether() / ip / UDP(dport=2152) / GTP_U_Header(teid=1, E=1, next_ex=0) / inner,
        Ether() / ip / UDP(dport=4789) / VXLAN(vni=3) / Ether() / inner,
        Ether() / ip / GRE(key_present=1, key=4) / inner,
        Ether(type=0x8847) / MPLS(label=9, s=1) / inner,
        Ether() / Dot1Q(vlan=2, type=0x8864) / PPPoE(sessionid=1) / PPP(proto=0x21) / inner,
    ]  # fmt: skip
    sll = [CookedLinux(proto=0x0800) / ip / UDP(sport=8, dport=9) / Raw(b"s")]
    with tempfile.TemporaryDirectory() as d:
        return (
            write_capture(Path(d) / "a.pcap", pkts).read_bytes(),
            write_capture(Path(d) / "b.pcapng", pkts, ng=True).read_bytes(),
            write_capture(Path(d) / "c.pcap", odd).read_bytes(),
            write_capture(Path(d) / "d.pcap", sll, linktype=113).read_bytes(),
        )


def test_fuzz_seeds_decode_cleanly():
    counts = [extract_file_bytes(data) for data in seed_captures()]
    assert [c[0] for c in counts] == [3, 3, 7, 1]  # packets read
    assert [c[1] for c in counts] == [2, 2, 3, 1]  # objects: tunnels carry one inner biflow
    assert all(c[2] == 0 for c in counts)  # nothing malformed


def extract_file_bytes(data: bytes) -> tuple[int, int, int]:
    w = Walker(ExtractConfig())
    w.feed(open_records(io.BytesIO(data)))
    w.close()
    return w.stats.packets, len(w.sink), w.stats.malformed


@st.composite
def mutated_capture(draw):
    """A small valid capture with random bytes overwritten, cut or appended."""
    seeds = seed_captures()
    data = bytearray(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_capture())
def test_mutated_captures_never_crash(data):
    _walk_bytes(data)


@settings(max_examples=150, deadline=2000)
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a", b""]), st.binary(max_size=400))
def test_random_bytes_never_crash(magic, rest):
    _walk_bytes(magic + rest)


def test_pcapng_interfaces_with_different_link_types(tmp_path):
    from scapy.layers.l2 import CookedLinux
    from scapy.utils import PcapNgWriter

    a = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"eth")
    b = CookedLinux(proto=0x0800) / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=3, dport=4)
    b = b / Raw(b"sll")
    a.time, b.time = 1.5, 2.25
    a.sniffed_on, b.sniffed_on = "eth0", "any"
    path = tmp_path / "multi.pcapng"
    with PcapNgWriter(str(path)) as w:
        w.write(a)
        w.write(b)
    res = extract_file(path, ExtractConfig())
    assert res.error is None and not res.warnings
    assert res.objects["src"].tolist() == ["10.0.0.1", "10.0.0.3"]
    assert res.objects["start"].tolist() == [1.5, 2.25]
    assert [bytes(p[:3]) for p in res.payload] == [b"eth", b"sll"]


def test_records_across_chunk_boundaries(tmp_path, monkeypatch):
    from trafficdl.capture import reader

    pkts = frames(40)
    paths = [
        write_capture(tmp_path / "a.pcap", pkts),
        write_capture(tmp_path / "b.pcapng", pkts, ng=True),
    ]
    whole = [extract_file(p, ExtractConfig()) for p in paths]
    monkeypatch.setattr(reader, "CHUNK", 97)  # every record straddles a read
    monkeypatch.setattr(reader, "_mapped", lambda f: None)  # read, not mapped
    for p, ref in zip(paths, whole, strict=True):
        res = extract_file(p, ExtractConfig())
        assert res.packets_read == 40 and not res.warnings
        assert (res.payload == ref.payload).all() and (res.packets == ref.packets).all()
