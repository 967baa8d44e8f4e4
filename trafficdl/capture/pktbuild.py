"""Byte-exact Ethernet/IPv4/TCP/UDP frames and a pcap writer, for the synthesizer.

scapy builds a frame in ~400 us here (measured: 15k packets would take 6 s),
so `trafficdl synth` assembles headers with `struct` and real checksums
instead; tests/unit/capture check every field against scapy's dissection of
the result. The GTP-U wrappers make the tunnelled twin of a capture (tests,
bench). The pcap writer is the classic microsecond format (LINKTYPE 1).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Collection
from typing import BinaryIO

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_REC = struct.Struct("<IIII")
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum, in network byte order."""
    if len(data) % 2:
        data += b"\0"
    s = sum(array("H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    # array("H") summed in host order; the one's complement sum is order-free
    return s if sys.byteorder == "big" else ((s & 0xFF) << 8) | (s >> 8)


def _ipv4(src: bytes, dst: bytes, proto: int, l4: bytes, ident: int, ttl: int = 64) -> bytes:
    hdr = _IP.pack(0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, ttl, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + l4


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def tcp_frame(
    macs: tuple[bytes, bytes],
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes = b"",
    ident: int = 0,
) -> bytes:
    """An Ethernet/IPv4/TCP frame with valid IP and TCP checksums."""
    seg = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    seg += payload
    csum = checksum(_pseudo(src, dst, 6, len(seg)) + seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    return _ETH.pack(macs[1], macs[0], 0x0800) + _ipv4(src, dst, 6, seg, ident)


def udp_frame(
    macs: tuple[bytes, bytes],
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    payload: bytes,
    ident: int = 0,
) -> bytes:
    """An Ethernet/IPv4/UDP frame with valid IP and UDP checksums."""
    dgram = _UDP.pack(sport, dport, 8 + len(payload), 0) + payload
    csum = checksum(_pseudo(src, dst, 17, len(dgram)) + dgram) or 0xFFFF
    dgram = dgram[:6] + struct.pack("!H", csum) + dgram[8:]
    return _ETH.pack(macs[1], macs[0], 0x0800) + _ipv4(src, dst, 17, dgram, ident)


def gtp_u_frame(
    macs: tuple[bytes, bytes],
    outer: tuple[bytes, bytes],
    teid: int,
    frame: bytes,
    ident: int = 0,
) -> bytes:
    """An Ethernet/IPv4 `frame`'s IP packet re-sent inside GTP-U (UDP 2152, a G-PDU)
    from outer[0] to outer[1], as captured on a mobile core's user-plane interface."""
    inner = frame[14:]
    gtp = struct.pack("!BBHI", 0x30, 0xFF, len(inner), teid) + inner
    return udp_frame(macs, outer[0], outer[1], 2152, 2152, gtp, ident)


def gtp_u_capture(
    frames: list[tuple[float, bytes]],
    clients: Collection[bytes],
    teids: tuple[int, int] = (0x1000, 0x2000),
) -> list[tuple[float, bytes]]:
    """Mobile clients' Ethernet/IPv4 frames as a core network's user-plane interface
    (S1-U / N3) carries them: uplink (from one of `clients`) from the base station
    192.0.2.1 to the gateway 192.0.2.2 with the gateway's TEID, downlink back with
    the base station's."""
    ran, core = bytes((192, 0, 2, 1)), bytes((192, 0, 2, 2))
    macs = (b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02")
    out = []
    for i, (ts, frame) in enumerate(frames):
        if frame[26:30] in clients:
            out.append((ts, gtp_u_frame(macs, (ran, core), teids[0], frame, i)))
        else:
            out.append((ts, gtp_u_frame(macs[::-1], (core, ran), teids[1], frame, i)))
    return out


def write_pcap(f: BinaryIO, frames: list[tuple[float, bytes]], linktype: int = 1) -> None:
    """Classic pcap (microseconds, little endian) of (timestamp, frame) pairs."""
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    for ts, frame in frames:
        sec = int(ts)
        usec = round((ts - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        f.write(_REC.pack(sec, usec, len(frame), len(frame)))
        f.write(frame)
