"""synth: determinism, wire correctness (checked by scapy), and encryption detection."""

from __future__ import annotations

import hashlib

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.layers.tls.all import TLS
from scapy.layers.tls.handshake import TLSClientHello
from scapy.utils import checksum, rdpcap

from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture.encryption import DTLS, NONE, QUIC, classify
from trafficdl.capture.encryption import TLS as TLS_KIND
from trafficdl.synth import SynthError, app_profiles, synthesize


def digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = synthesize(tmp_path / "a", apps=3, flows_per_app=12, seed=7)
    b = synthesize(tmp_path / "b", apps=3, flows_per_app=12, seed=7)
    c = synthesize(tmp_path / "c", apps=3, flows_per_app=12, seed=8)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)
    assert sorted({p.parent.name for p in a}) == ["facebook", "instagram", "messenger"]


def test_frames_are_valid_for_scapy(tmp_path):
    (path,) = synthesize(tmp_path, apps=1, flows_per_app=30, seed=1, captures_per_app=1)
    pkts = rdpcap(str(path))
    snis, dns = set(), 0
    for p in pkts:
        ip = p[IP]
        l4 = bytes(p)[14 + ip.ihl * 4 : 14 + ip.len]
        assert checksum(bytes(p)[14 : 14 + ip.ihl * 4]) == 0  # scapy's RFC 1071 sum
        assert in4_chksum(ip.proto, ip, l4) == 0  # including the pseudo header
        if TCP in p and bytes(p[TCP].payload)[:1] == b"\x16" and bytes(p[TCP].payload)[5] == 1:
            hello = TLS(bytes(p[TCP].payload)).msg[0]
            assert isinstance(hello, TLSClientHello)
            snis.add(hello.ext[0].servernames[0].servername.decode())
        dns += DNS in p
    assert snis and snis <= set(app_profiles(1)[0].domains)
    assert dns > 0


def test_similar_pair_shares_fingerprint():
    fb, msg, other = app_profiles(3)
    assert (fb.ciphers, fb.groups, fb.window) == (msg.ciphers, msg.groups, msg.window)
    assert set(fb.domains) & set(msg.domains)
    assert other.ciphers != fb.ciphers


def test_synth_extracts_with_encryption_flags(tmp_path):
    paths = synthesize(tmp_path, apps=3, flows_per_app=40, seed=3, captures_per_app=1)
    res = extract_file(paths[2], ExtractConfig())
    o = res.objects
    assert len(o) == 40
    assert TLS_KIND in set(o["encrypted"].tolist())
    dns = o["dport"] == 53
    assert (o["encrypted"][dns] == NONE).all() and (o["encrypted"][~dns] != NONE).all()


def test_bad_settings_raise_user_errors(tmp_path):
    with pytest.raises(SynthError):
        synthesize(tmp_path, apps=0)
    with pytest.raises(SynthError):
        synthesize(tmp_path, flows_per_app=0)


@pytest.mark.parametrize(
    ("proto", "head", "kind"),
    [
        (6, b"\x16\x03\x01\x00\xc8\x01", TLS_KIND),
        (6, b"\x17\x03\x03\x01\x00", TLS_KIND),
        (6, b"GET / HTTP/1.1", NONE),
        (17, b"\xc3\x00\x00\x00\x01\x08abcdefgh", QUIC),
        (17, b"\xc3\xff\x00\x00\x1d\x08", QUIC),
        (17, b"\xc3\x12\x34\x56\x78\x08", NONE),  # unknown version
        (17, b"\x16\xfe\xfd\x00\x00\x00", DTLS),
        (17, b"\x16\x03\x01\x00\x10", NONE),  # TLS over UDP is not a thing
        (17, b"\x12\x34\x01\x00\x00\x01", NONE),  # DNS
        (6, b"\x16\x03", NONE),  # too short
    ],
)
def test_encryption_detection(proto, head, kind):
    assert classify(proto, head) == kind


def test_output_under_a_file_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SynthError, match="cannot create"):
        synthesize(blocker, apps=1, flows_per_app=1)
