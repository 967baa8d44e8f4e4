"""The compiled walk against walk.py: same objects, bytes, counters and warnings.

Every extract_file call of tests/unit/capture runs in TRAFFICDL_CAPTURE_CORE=check
mode (conftest.py): both walks, AssertionError on any difference. Here, on top:
the synthetic captures the other suites and the benchmark use, under several
configurations; the fuzz corpus (test_capture_reader's seeds plus plain-IP seeds
of every link type, mutated thousands of times, deterministic and by hypothesis);
damaged files; chunked reads; and the fallback to walk.py for other tunnels.
"""

from __future__ import annotations

import functools
import io
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from capture_helpers import write_capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from test_capture_reader import seed_captures

from bench.bench_capture import big_capture
from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture import fastwalk as fw
from trafficdl.capture.extract import _walked, fastwalk_check
from trafficdl.capture.reader import CaptureFormatError, open_records
from trafficdl.capture.walk import Walker
from trafficdl.synth import synthesize

CONFIGS = [
    ExtractConfig(),
    ExtractConfig(segmentation="flow"),
    ExtractConfig(payload_bytes=40, packets=3, min_packets=2, min_payload=10),
    ExtractConfig(idle_timeout=0.05, active_timeout=0.2, tcp_close=False),
    ExtractConfig(decap=()),
]


def walk_both(data: bytes, cfg: ExtractConfig) -> bool:
    """Walk `data` with both cores (read from memory, in chunks); assert they agree.
    False when the compiled walk handed the capture to walk.py."""
    try:
        ref_reader = open_records(io.BytesIO(data))
    except CaptureFormatError:
        with pytest.raises(CaptureFormatError):
            open_records(io.BytesIO(data))
        return True
    ref = Walker(cfg)
    ref.feed(ref_reader)
    ref.close()
    reader = open_records(io.BytesIO(data))
    fast = fw.FastWalk(cfg)
    if not fast.feed(reader):
        return False
    fast.close()
    assert reader.warnings == ref_reader.warnings
    assert fast.stats.as_dict() == ref.stats.as_dict()
    assert len(fast) == len(ref.sink)
    if len(fast):
        for a, b in zip(fast.arrays(), ref.sink.arrays(), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return True


def test_extension_is_built():
    # `pip install -e .` (make venv) compiles it; without it every capture takes walk.py
    assert fw.built(), "trafficdl.capture._fastwalk missing: reinstall with a C compiler"
    assert fw.covers(ExtractConfig()) and fw.covers(ExtractConfig(segmentation="flow"))
    assert not fw.covers(ExtractConfig(segmentation="burst"))
    assert not fw.covers(ExtractConfig(tunnel_key=True))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """The synthetic captures of the unit/integration suites and the benchmark (small)."""
    root = tmp_path_factory.mktemp("fastcore")
    files = synthesize(root / "a", apps=3, flows_per_app=16, captures_per_app=2, seed=3)
    files += synthesize(root / "b", apps=2, flows_per_app=60, seed=5)
    big_capture(root / "big.pcap", 6000, gtp=root / "big-gtp.pcap")
    return [*files, root / "big.pcap", root / "big-gtp.pcap"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "flow", "small", "timeouts", "nodecap"])
def test_synthetic_captures_identical(corpus, cfg, monkeypatch):
    monkeypatch.setenv(fw.CORE_ENV, "auto")
    total = 0
    for path in corpus:
        fast, ref = extract_file(path, cfg), _walked(path, cfg, 0)
        fastwalk_check(fast, ref)
        total += len(ref)
        assert walk_both(path.read_bytes(), cfg)  # the chunked, in-memory reading too
    assert total > 300


@functools.cache
def plain_seeds() -> tuple[bytes, ...]:
    """Captures the compiled walk covers whole: every link type, VLAN, IPv6 extension
    headers and fragments, TCP options, GTP-U G-PDUs, TSO lengths, ns timestamps."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # no ARP lookup by scapy
    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    back = IP(src="10.0.0.2", dst="10.0.0.1")
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    quic = Raw(b"\xc0\x00\x00\x00\x01x")  # a QUIC v1 long header
    tcp = [
        eth / ip / TCP(sport=40000, dport=443, flags="S", seq=7),
        eth / back / TCP(sport=443, dport=40000, flags="SA", seq=70, ack=8),
        eth / ip / TCP(sport=40000, dport=443, flags="PA", seq=8, options=[("MSS", 1460)])
        / Raw(b"\x16\x03\x01" + b"a" * 40),
        eth / ip / TCP(sport=40000, dport=443, flags="PA", seq=8) / Raw(b"\x16\x03\x01" * 9),
        eth / back / TCP(sport=443, dport=40000, flags="FA", seq=71) / Raw(b"bye"),
        eth / ip / TCP(sport=40000, dport=443, flags="F", seq=48),
        eth / ip / TCP(sport=40000, dport=443, flags="S", seq=900),
        eth / Dot1Q(vlan=3) / Dot1Q(vlan=4) / ip / UDP(sport=5353, dport=53) / Raw(b"q" * 9),
        eth / v6 / IPv6ExtHdrHopByHop() / UDP(sport=7, dport=443) / quic,
        eth / v6 / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=7, dport=443) / Raw(b"f"),
        eth / v6 / IPv6ExtHdrFragment(offset=8) / Raw(b"g" * 8),
        eth / IP(src="10.0.0.1", dst="10.0.0.2", len=0) / UDP(sport=9, dport=10) / Raw(b"t"),
        eth / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=2152, dport=2152)
        / Raw(bytes.fromhex("30ff0020000000aa"))
        / IP(src="10.7.0.1", dst="10.7.0.2") / UDP(sport=3000, dport=443) / Raw(b"gtp-inner"),
    ]  # fmt: skip
    times = [1000.0 + 0.01 * i for i in range(len(tcp))]
    other = [
        (CookedLinux(proto=0x0800) / ip / UDP(sport=8, dport=9) / Raw(b"s"), 113),
        (CookedLinuxV2(proto=0x86DD) / v6 / UDP(sport=8, dport=9) / Raw(b"s2"), 276),
        (ip / TCP(sport=1, dport=2) / Raw(b"raw"), 101),
        (Loopback(type=2) / ip / UDP(sport=3, dport=4) / Raw(b"null"), 0),
        (eth / ip / UDP(sport=3, dport=4), 147),  # an unsupported link type
    ]
    out = []
    with tempfile.TemporaryDirectory() as d:
        out.append(write_capture(Path(d) / "t.pcap", tcp, times=times).read_bytes())
        out.append(write_capture(Path(d) / "t.pcapng", tcp, times=times, ng=True).read_bytes())
        for i, (pkt, lt) in enumerate(other):
            out.append(write_capture(Path(d) / f"o{i}.pcap", [pkt] * 3, linktype=lt).read_bytes())
    return tuple(out)


def test_plain_seeds_are_covered_and_identical():
    for data in plain_seeds():
        for cfg in CONFIGS:
            assert walk_both(data, cfg)


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 9)):
        buf[rng.randrange(24, len(buf))] = rng.randrange(256)
    cut = rng.randrange(len(buf) + 1) if rng.random() < 0.3 else len(buf)
    return bytes(buf[:cut]) + rng.randbytes(rng.randrange(0, 40) if rng.random() < 0.2 else 0)


def test_fuzz_corpus_identical():
    """Thousands of damaged captures: every one walked alike or handed to walk.py."""
    rng = random.Random(17)
    seeds = [*plain_seeds(), *seed_captures()]
    covered = tried = 0
    for i in range(3000):
        data = mutate(rng, seeds[i % len(seeds)])
        cfg = CONFIGS[i % 2]
        tried += 1
        covered += walk_both(data, cfg)
    assert covered > 0.7 * tried  # most mutants really ran the compiled walk


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(0, 1))
def test_hypothesis_mutants_identical(seed, which):
    seeds = [*plain_seeds(), *seed_captures()]
    rng = random.Random(seed)
    walk_both(mutate(rng, seeds[seed % len(seeds)]), CONFIGS[which])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"]),
       st.binary(max_size=400))  # fmt: skip
def test_random_bytes_identical(magic, rest):
    walk_both(magic + rest, CONFIGS[0])


def test_damaged_files_report_alike(tmp_path, monkeypatch):
    data = plain_seeds()[0]
    monkeypatch.setenv(fw.CORE_ENV, "check")
    cases = {
        "cut.pcap": data[:-7],  # truncated last record
        "corrupt.pcap": data[:32] + b"\xff\xff\xff\x7f" + data[36:],  # absurd length
        "garbage.pcap": b"not a capture at all",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        res = extract_file(tmp_path / name)  # check mode: raises on any difference
        assert res.error or res.warnings
    monkeypatch.setattr("trafficdl.capture.reader.CHUNK", 97)  # records straddle reads
    monkeypatch.setattr("trafficdl.capture.reader._mapped", lambda f: None)
    res = extract_file(tmp_path / "cut.pcap")
    assert "truncated" in res.warnings[0]


def test_other_tunnels_fall_back_to_walk_py(tmp_path, monkeypatch):
    inner = IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=40000, dport=443) / Raw(b"\x16\x03ab")
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkts = [
        eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6) / Raw(b"plain"),
        eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=4789) / VXLAN(vni=3)
        / eth / inner,
    ]  # fmt: skip
    path = write_capture(tmp_path / "vx.pcap", pkts)
    assert not walk_both(path.read_bytes(), ExtractConfig())
    monkeypatch.setenv(fw.CORE_ENV, "auto")
    res = extract_file(path)
    assert res.objects["encap"].tolist() == ["", "vxlan"]
    fastwalk_check(res, _walked(path, ExtractConfig(), 0))


def test_check_mode_catches_a_difference(corpus):
    ref = _walked(corpus[0], ExtractConfig(), 0)
    other = _walked(corpus[0], ExtractConfig(), 0)
    other.payload = other.payload.copy()
    other.payload[0, 0] ^= 1
    with pytest.raises(AssertionError, match="payload"):
        fastwalk_check(other, ref)
    other = _walked(corpus[0], ExtractConfig(), 0)
    other.stats = {**other.stats, "malformed": 1}
    with pytest.raises(AssertionError, match="stats"):
        fastwalk_check(other, ref)
    assert np.array_equal(ref.packets, _walked(corpus[0], ExtractConfig(), 0).packets)
