"""Does an object look encrypted? TLS, QUIC or DTLS, from its first payload bytes.

Only record/packet headers are checked (never decryption): a TLS record header
(content type 20-23, version 3.x), a QUIC long header (form and fixed bits set,
a known or reserved version), a DTLS record header (content type 20-23, version
0xfeXX). The codes match trafficdl.dataset.ENCRYPTION_KINDS.
"""

from __future__ import annotations

NONE, TLS, QUIC, DTLS = 0, 1, 2, 3
_TCP, _UDP = 6, 17


def _quic_version_ok(v: int) -> bool:
    return (
        v in (0x00000001, 0x6B3343CF)  # v1, v2
        or (v & 0xFFFFFF00) == 0xFF000000  # IETF drafts
        or (v & 0x0F0F0F0F) == 0x0A0A0A0A  # reserved, forces negotiation (RFC 9000 15)
        or (v >> 24 == 0x51 and (v >> 16) & 0xFF == 0x30)  # gQUIC "Q0xx"
    )


def classify(proto: int, head: bytes | None) -> int:
    """Encryption kind of a payload that starts with `head` (first bytes of one packet)."""
    if not head or len(head) < 5:
        return NONE
    b0 = head[0]
    if proto == _TCP:
        if 20 <= b0 <= 23 and head[1] == 3 and head[2] <= 4:
            return TLS
        return NONE
    if proto == _UDP:
        if 20 <= b0 <= 23 and head[1] == 0xFE and head[2] in (0xFF, 0xFD, 0xFC):
            return DTLS
        if b0 & 0xC0 == 0xC0 and _quic_version_ok(int.from_bytes(head[1:5], "big")):
            return QUIC
    return NONE


def classify_object(proto: int, up: bytes | None, down: bytes | None) -> int:
    """An object is encrypted if its first payload in either direction is."""
    return classify(proto, up) or classify(proto, down)
