"""Application payloads of the synthesizer: TLS, QUIC and DNS messages as bytes.

Just enough of each protocol for traffic to look real to a classifier and to
Wireshark/scapy: a ClientHello with SNI, cipher list, groups and ALPN; a
ServerHello; application-data records of random (encrypted-looking) bytes;
QUIC long-header packets; DNS queries and answers. No cryptography.
"""

from __future__ import annotations

import random
import struct
from typing import Protocol


class TlsProfile(Protocol):
    ciphers: tuple[int, ...]
    alpn: tuple[bytes, ...]
    groups: tuple[int, ...]
    sigalgs: tuple[int, ...]
    session_id: bool  # resumption-style 32-byte session id in the ClientHello
    padding: int  # bytes of the padding extension (0: none)
    org: str  # certificate subject organisation
    quic_version: int


def _u16(v: int) -> bytes:
    return struct.pack("!H", v)


def _ext(kind: int, body: bytes) -> bytes:
    return _u16(kind) + _u16(len(body)) + body


def client_hello(p: TlsProfile, sni: str, rng: random.Random) -> bytes:
    """A TLS 1.2-record ClientHello with the app's ciphers, groups, ALPN and the SNI."""
    host = sni.encode()
    # MQTT endpoints (chat push channels) offer no HTTP ALPN
    protos = (b"mqtt",) if sni.startswith(("mqtt", "edge-chat", "edge-mqtt")) else p.alpn
    alpn = b"".join(bytes([len(a)]) + a for a in protos)
    exts = b"".join(
        (
            _ext(0, _u16(len(host) + 3) + b"\0" + _u16(len(host)) + host),
            _ext(10, _u16(2 * len(p.groups)) + b"".join(_u16(g) for g in p.groups)),
            _ext(11, b"\x01\x00"),
            _ext(13, _u16(2 * len(p.sigalgs)) + b"".join(_u16(a) for a in p.sigalgs)),
            _ext(16, _u16(len(alpn)) + alpn),
            _ext(43, b"\x04\x03\x04\x03\x03"),
            _ext(51, _u16(38) + _u16(0x001D) + _u16(32) + rng.randbytes(32)),
            _ext(21, bytes(p.padding)) if p.padding else b"",
        )
    )
    sid = b"\x20" + rng.randbytes(32) if p.session_id else b"\x00"
    body = (
        b"\x03\x03" + rng.randbytes(32) + sid
        + _u16(2 * len(p.ciphers)) + b"".join(_u16(c) for c in p.ciphers)
        + b"\x01\x00" + _u16(len(exts)) + exts
    )  # fmt: skip
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + _u16(len(hs)) + hs


def server_hello(rng: random.Random) -> bytes:
    """A TLS 1.3 ServerHello and ChangeCipherSpec (the certificate follows encrypted)."""
    body = b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
    body += _u16(46) + _ext(43, b"\x03\x04") + _ext(51, _u16(0x001D) + _u16(32) + rng.randbytes(32))
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + _u16(len(hs)) + hs + b"\x14\x03\x03\x00\x01\x01"


def app_data(size: int, rng: random.Random) -> bytes:
    """Encrypted-looking TLS application-data records totalling about `size` bytes."""
    out = b""
    while size > 0:
        n = min(size, 16384)
        out += b"\x17\x03\x03" + _u16(n) + rng.randbytes(n)
        size -= n
    return out


def dns_query(name: str, txid: int) -> bytes:
    qname = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return _u16(txid) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x01\x00\x01"


def dns_answer(query: bytes, addr: bytes) -> bytes:
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + addr
    return query[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + query[12:] + ans


def quic_long(p: TlsProfile, dcid: bytes, size: int, rng: random.Random, ptype: int) -> bytes:
    head = bytes([0xC0 | (ptype << 4) | 0x03]) + struct.pack("!I", p.quic_version)
    head += bytes([len(dcid)]) + dcid + b"\x08" + rng.randbytes(8)
    if ptype == 0:
        head += b"\x00"  # empty token
    rest = max(size - len(head) - 2, 20)
    return head + struct.pack("!H", 0x4000 | rest) + rng.randbytes(rest)


EC_KEY_OID = b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = bytes([n]) if n < 128 else b"\x82" + _u16(n)
    return bytes([tag]) + size + body


def _name(cn: str, org: str) -> bytes:
    def rdn(oid: bytes, text: str) -> bytes:
        return _der(0x31, _der(0x30, _der(0x06, oid) + _der(0x0C, text.encode())))

    return _der(
        0x30, rdn(b"\x55\x04\x06", "US") + rdn(b"\x55\x04\x0a", org) + rdn(b"\x55\x04\x03", cn)
    )


def server_flight_tls12(p: TlsProfile, domain: str, rng: random.Random) -> bytes:
    """TLS 1.2 ServerHello, a plaintext Certificate (subject = the app's org and
    a wildcard of the domain) and ServerHelloDone, as apps of the paper's era sent."""
    sh = b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + _u16(p.ciphers[0]) + b"\0"
    wildcard = "*." + domain.split(".", 1)[-1]
    tbs = _der(
        0x30,
        b"\xa0\x03\x02\x01\x02" + _der(0x02, rng.randbytes(16))
        + _der(0x30, b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02")
        + _name("DigiCert SHA2 High Assurance Server CA", "DigiCert Inc")
        + _der(0x30, _der(0x17, b"231001000000Z") + _der(0x17, b"241231235959Z"))
        + _name(wildcard, p.org)
        + _der(0x30, EC_KEY_OID + _der(0x03, b"\0\x04" + rng.randbytes(64))),
    )  # fmt: skip
    cert = _der(0x30, tbs + _der(0x03, b"\0" + rng.randbytes(70)))
    certs = len(cert).to_bytes(3, "big") + cert
    msgs = (
        b"\x02" + len(sh).to_bytes(3, "big") + sh
        + b"\x0b" + (len(certs) + 3).to_bytes(3, "big") + len(certs).to_bytes(3, "big") + certs
        + b"\x0e\x00\x00\x00"
    )  # fmt: skip
    return b"\x16\x03\x03" + _u16(len(msgs)) + msgs
