"""The speed paths give exactly what the general paths give.

- GTP-U: after a packet took the inline G-PDU path, the walk tries the next one
  as IPv4/UDP/GTP-U/IPv4 in one struct call (trafficdl.capture.walk). A walk fed
  one record per call never takes it (the hint starts cold each call), so the
  two walks of one mixed capture must agree in every object, input and count.
- Reading: a capture file on disk is mapped; a stream is read in chunks. Both
  must yield the same records and the same warnings, damaged files included.
"""

from __future__ import annotations

import io
import itertools
import mmap
from pathlib import Path

import numpy as np
import pytest
from capture_helpers import write_capture
from scapy.contrib.gtp import GTP_U_Header, GTPEchoRequest, GTPHeader, GTPPDUSessionContainer
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet

from trafficdl.capture import ExtractConfig, reader, walk
from trafficdl.capture.reader import _mapped, open_records

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
RAN, CORE = "192.0.2.1", "192.0.2.2"


def _gtp(inner: Packet, up: bool, teid: int = 0x100, **outer_kw) -> Packet:
    src, dst = (RAN, CORE) if up else (CORE, RAN)
    return (
        ETH
        / IP(src=src, dst=dst, **outer_kw)
        / UDP(sport=2152, dport=2152)
        / GTP_U_Header(teid=teid if up else teid + 1)
        / inner
    )


def _tcp4(i: int, up: bool, payload: bytes) -> Packet:
    a, b = ("10.45.0.7", "93.184.216.34") if up else ("93.184.216.34", "10.45.0.7")
    sp, dp = (40000 + i, 443) if up else (443, 40000 + i)
    return IP(src=a, dst=b) / TCP(sport=sp, dport=dp, flags="PA", seq=1000 + 50 * i) / payload


def _udp6(i: int, up: bool) -> Packet:
    a, b = ("2001:db8:a::7", "2001:db8:b::1") if up else ("2001:db8:b::1", "2001:db8:a::7")
    return (
        IPv6(src=a, dst=b)
        / UDP(sport=5000 + i if up else 53, dport=53 if up else 5000 + i)
        / (b"q%d" % i)
    )


def mixed_capture() -> list[Packet]:
    """GTP-U G-PDUs with IPv4 and IPv6 inside (the fast path's both exits) between
    everything that must leave it: plain frames, a VLAN tag, signalling, extension
    headers, outer IP options, GTP-U in GTP-U, a G-PDU cut short, a TSO outer."""
    pkts: list[Packet] = []
    for i in range(12):
        up = i % 2 == 0
        pkts += [
            _gtp(_tcp4(i, up, b"tls-%02d" % i * 3), up),
            _gtp(_tcp4(i, up, b"more"), up),
            _gtp(_udp6(i, up), up),
            _gtp(_udp6(i, up), up),
        ]
        kind = i % 6
        if kind == 0:
            pkts.append(ETH / _tcp4(i + 100, up, b"plain"))
        elif kind == 1:
            pkts.append(ETH / IP(src=RAN, dst=CORE) / UDP(sport=2152, dport=2152)
                        / GTPHeader(gtp_type=1) / GTPEchoRequest())  # fmt: skip
        elif kind == 2:
            ext = GTP_U_Header(teid=9, E=1, S=1, next_ex=0x85) / GTPPDUSessionContainer(QFI=9)
            pkts.append(ETH / IP(src=RAN, dst=CORE) / UDP(sport=2152, dport=2152) / ext
                        / _tcp4(i + 200, up, b"ext"))  # fmt: skip
        elif kind == 3:
            pkts.append(_gtp(_tcp4(i + 300, up, b"opts"), up, options=[IPOption_RR()]))
            pkts.append(Ether() / Dot1Q(vlan=7) / _gtp(_tcp4(i + 400, up, b"vlan"), up)[IP])
        elif kind == 4:
            pkts.append(_gtp(_gtp(_tcp4(i + 500, up, b"nested"), up)[IP], up, teid=0x300))
        else:
            cut = bytes(_gtp(_tcp4(i + 600, up, b"cut"), up))[: 14 + 20 + 8 + 8 + 12]
            pkts.append(Ether(cut))
            tso = _gtp(_tcp4(i + 700, up, b"tso"), up)
            tso[IP].len = 0
            pkts.append(tso)
    return pkts


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list:
    path = write_capture(tmp_path_factory.mktemp("fast") / "mixed.pcap", mixed_capture())
    with open(path, "rb") as f:
        return list(open_records(f))


def _walk(records: list, cfg: ExtractConfig, one_by_one: bool) -> walk.Walker:
    w = walk.Walker(cfg)
    if one_by_one:
        for rec in records:
            w.feed([rec])
    else:
        w.feed(records)
    w.close()
    return w


@pytest.mark.parametrize("segmentation", ["biflow", "flow", "burst"])
@pytest.mark.parametrize("tunnel_key", [False, True])
def test_gtp_fast_path_gives_what_the_general_path_gives(records, monkeypatch, segmentation,
                                                         tunnel_key):  # fmt: skip
    calls = []
    fused = walk._GTP44

    def counting(data: bytes, pos: int) -> tuple:
        calls.append(pos)
        return fused(data, pos)

    monkeypatch.setattr(walk, "_GTP44", counting)
    cfg = ExtractConfig(segmentation=segmentation, tunnel_key=tunnel_key, payload_bytes=24,
                        packets=5, min_packets=1)  # fmt: skip
    fast = _walk(records, cfg, one_by_one=False)
    assert len(calls) > len(records) // 2  # the fast path ran for most packets ...
    slow_calls = len(calls)
    general = _walk(records, cfg, one_by_one=True)
    assert len(calls) == slow_calls  # ... and never when every feed starts cold
    assert fast.stats == general.stats
    assert fast.stats.tunnelled > 40 and fast.stats.non_ip >= 2 and fast.stats.tso >= 2
    assert fast.stats.malformed >= 2
    a, b = fast.sink.arrays(), general.sink.arrays()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2].tolist() == b[2].tolist()
    if segmentation == "burst":  # one per server endpoint (TCP, DNS), and per tunnel key
        assert len(a[2]) == (6 if tunnel_key else 2)  # ids: none, GTP-U, GTP-U in GTP-U
        return
    assert len(a[2]) == 36  # 12 TCP + 12 UDP/IPv6 sessions, 12 of the other kinds
    kinds = set(a[2]["encap"].tolist())
    assert {"gtp", "gtp+gtp", ""} <= kinds
    teids = set(a[2]["tunnel_id"].tolist())
    assert {0x100, 0x101, 0x300, 0x301} & teids


# ------------------------------------------------------------------ reading


def _damaged(tmp_path: Path, n: int = 30) -> list[Path]:
    pkts = [ETH / _tcp4(i, i % 2 == 0, b"x" * (i * 37 % 300)) for i in range(n)]
    out = []
    for ng in (False, True):
        whole = write_capture(tmp_path / f"w{int(ng)}.pcap{'ng' if ng else ''}", pkts, ng=ng)
        data = whole.read_bytes()
        cut = tmp_path / f"cut-{whole.name}"
        cut.write_bytes(data[: len(data) - 41])  # the last record incomplete
        bad = tmp_path / f"bad-{whole.name}"
        # a record / block length of 0xFFFFFFF0 halfway
        frame = data.index(bytes(pkts[n // 2][IP])[:20]) - 14
        length_at = frame - (24 if ng else 8)  # EPB block length / pcap incl_len
        bad.write_bytes(data[:length_at] + b"\xf0\xff\xff\xff" + data[length_at + 4 :])
        out += [whole, cut, bad]
    return out


@pytest.mark.parametrize("window", [None, 1])
def test_mapped_and_streamed_reading_agree(tmp_path, monkeypatch, window):
    n = 30
    if window is not None:  # windows of ~2 KiB: records straddle them, pages get dropped
        n = 400
        monkeypatch.setattr(reader, "WINDOW", window)
        monkeypatch.setattr(reader, "MAX_RECORD", 2000)
        advised: list[tuple[int, int, int | None]] = []
        monkeypatch.setattr(mmap, "mmap", _recording(advised))
    for path in _damaged(tmp_path, n):
        with open(path, "rb") as f:
            mm = _mapped(f)
            assert mm is not None and len(mm) == path.stat().st_size
            mapped = open_records(f, "x")
            got = list(mapped)
        streamed = open_records(io.BytesIO(path.read_bytes()), "x")
        assert _mapped(io.BytesIO(b"abc")) is None  # type: ignore[arg-type]
        want = list(streamed)
        assert got == want and mapped.warnings == streamed.warnings, path.name
        assert all(type(r[2]) is bytes for r in got)
        if path.name.startswith("w"):
            assert len(got) == n and not mapped.warnings
        else:
            assert 0 < len(got) < n and len(mapped.warnings) == 1, (path.name, mapped.warnings)
        if window is not None:  # pages behind dropped from the start on, in order
            drops = [(at, size) for opt, at, size in advised if opt == mmap.MADV_DONTNEED]
            advised.clear()
            assert len(drops) >= 8 and drops[0][0] == 0, path.name  # 4 KiB pages
            assert all(a + m == b for (a, m), (b, _) in itertools.pairwise(drops))


def _recording(calls: list) -> type[mmap.mmap]:
    class Recording(mmap.mmap):
        def madvise(self, option: int, start: int = 0, length: int | None = None) -> None:
            calls.append((option, start, length))
            if length is None:
                super().madvise(option)
            else:
                super().madvise(option, start, length)

    return Recording


def test_an_empty_or_special_file_is_not_mapped(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with open(empty, "rb") as f:
        assert _mapped(f) is None
    with open("/dev/null", "rb") as f:
        assert _mapped(f) is None
    with open(write_capture(tmp_path / "a.pcap", [ETH / _tcp4(0, True, b"a")]), "rb") as f:
        assert _mapped(f) is not None  # a plain file opened from disk: mapped
    with open(tmp_path / "a.pcap", "rb", buffering=0) as raw:
        assert _mapped(raw) is None  # type: ignore[arg-type]  # not a BufferedReader: read
