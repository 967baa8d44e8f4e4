"""Streaming pcap / pcapng record readers: (timestamp, link type, frame bytes).

Per-packet dissection (scapy's rdpcap) runs at ~1.5k packets/s here, so the
readers walk the record headers themselves with `struct.unpack_from` over
large buffers (~700k records/s measured here; docs/capture.md). A file opened
from disk is mapped (mmap), not read: 4 MiB reads brought fresh pages and a
copy per chunk, 0.3-0.6 us of a ~3.5 us packet (measured here). The mapping is
walked in 8 MiB windows whose pages are dropped behind the walk, so resident
memory stays about one window (42 MB peak for a 42 MB capture's whole
extraction, against 50 MB with reads). Other streams (BytesIO, a pipe) are
read in 4 MiB chunks: memory is one chunk plus the frame being yielded,
whatever the capture size. A file must not shrink while it is mapped (SIGBUS).

Frames are yielded without an Ethernet FCS where the file declares one (the
pcap link-type field's FCS bits, pcapng's if_fcslen), and pcapng timestamps
honour each interface's if_tsresol and if_tsoffset.

Damage never raises past the reader: the packets before it are yielded and
`warnings` says what happened (a truncated last record, an absurd length, an
unknown pcapng block layout). Only a file that is not a capture at all raises
CaptureFormatError, before any packet.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import struct
from collections.abc import Iterator
from typing import BinaryIO

from trafficdl.errors import TrafficdlError

CHUNK = 1 << 22  # 4 MiB reads: few syscalls, bounded memory
WINDOW = 1 << 23  # 8 MiB of a mapped file resident at most (plus one record)
MAX_RECORD = 1 << 18  # 256 KiB: larger caplens only occur in corrupt files

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

Record = tuple[float, int, bytes, int]  # ts, link type, frame (captured part), wire length
Buffer = bytes | mmap.mmap  # slicing either gives bytes


class CaptureFormatError(TrafficdlError):
    """The file is not a pcap or pcapng capture."""


def _chunks(f: BinaryIO, first: bytes) -> Iterator[bytes]:
    if first:
        yield first
    while chunk := f.read(CHUNK):
        yield chunk


def _mapped(f: BinaryIO) -> mmap.mmap | None:
    """The whole file read-only mapped, when `f` is a plain file opened from disk."""
    if type(f) is not io.BufferedReader:  # a wrapper (gzip...) has its own fileno
        return None
    try:
        fd = f.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size == 0:
            return None
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if hasattr(mmap, "MADV_SEQUENTIAL"):  # where the platform has madvise
        mm.madvise(mmap.MADV_SEQUENTIAL)
    return mm


class RecordReader:
    """Iterate the records of an open capture file; collect warnings on damage."""

    def __init__(self, f: BinaryIO, name: str = "capture") -> None:
        self.f = f
        self.name = name
        self.warnings: list[str] = []
        self._stop = 0  # where the record loop stopped in the current buffer
        head = f.read(24)
        magic = head[:4]
        if magic in PCAP_MAGICS:
            if len(head) < 24:
                raise CaptureFormatError(f"{name}: pcap header truncated ({len(head)} bytes)")
            endian, self.ts_div = PCAP_MAGICS[magic]
            self.endian = endian
            self.format = "pcap"
            field = struct.unpack_from(endian + "I", head, 20)[0]
            self.linktype = field & 0x03FFFFFF  # libpcap's LT_LINKTYPE
            # LT_FCS_LENGTH_PRESENT: the top 4 bits count 16-bit words of FCS per frame
            self.fcs = (field >> 28) * 2 if field & 0x04000000 else 0
            self._rest = b""
        elif magic == PCAPNG_SHB:
            self.format = "pcapng"
            self._rest = head
        else:
            raise CaptureFormatError(f"{name}: not a pcap or pcapng capture (magic {magic.hex()})")

    def _buffers(self, base: int) -> Iterator[tuple[Buffer, int, int, int]]:
        """(buffer, file offset of its byte 0, where its records start, where its bytes
        end) in turn; the loop leaves in self._stop where it stopped in each. A mapped
        file comes in windows of WINDOW bytes, the pages behind dropped from this
        process (its resident memory stays a window); other files in chunks read from
        file offset `base` on, each after what the last one left over."""
        self._stop = 0
        mm = _mapped(self.f)
        if mm is None:
            buf: bytes = b""
            for chunk in _chunks(self.f, self._rest):
                pos = self._stop
                buf = buf[pos:] + chunk if pos < len(buf) else chunk
                base += pos
                self._stop = 0
                yield buf, base, 0, len(buf)
            return
        size, dropped = len(mm), 0
        pos = self.f.tell() - len(self._rest)
        while True:  # a window holds at least one whole record: each one gets further
            end = min(size, pos + WINDOW + MAX_RECORD + 64)
            self._stop = pos
            yield mm, 0, pos, end
            if end == size:
                return
            pos = self._stop
            behind = pos & ~(mmap.PAGESIZE - 1)
            if behind > dropped and hasattr(mmap, "MADV_DONTNEED"):
                mm.madvise(mmap.MADV_DONTNEED, dropped, behind - dropped)
                dropped = behind

    def __iter__(self) -> Iterator[Record]:
        if self.format == "pcap":
            return self._pcap()
        return self._pcapng()

    # ------------------------------------------------------------------ pcap
    def _pcap(self) -> Iterator[Record]:
        unpack = struct.Struct(self.endian + "IIII").unpack_from
        div = self.ts_div
        lt = self.linktype
        fcs = self.fcs
        buf: Buffer = b""
        pos = offset = 0  # offset: the file offset of buf[0], for messages
        for buf, offset, pos, end in self._buffers(24):
            while pos + 16 <= end:
                sec, frac, incl, orig = unpack(buf, pos)
                if incl > MAX_RECORD:
                    self.warnings.append(self.corrupt_record(offset + pos, incl))
                    return
                nxt = pos + 16 + incl
                if nxt > end:
                    break
                yield sec + frac / div, lt, buf[pos + 16 : nxt - fcs], orig - fcs
                pos = nxt
            self._stop = pos  # where the next buffer takes over
        if pos < len(buf):
            self.warnings.append(self.truncated(offset + pos, len(buf) - pos))

    @staticmethod
    def corrupt_record(at: int, length: int) -> str:
        """The warning for a pcap record whose length is absurd (the walk stops there)."""
        return f"corrupt record at byte {at} (length {length}); kept the packets before it"

    @staticmethod
    def truncated(at: int, left: int) -> str:
        """The warning for a pcap file that ends inside a record."""
        return (
            f"truncated: last record incomplete at byte {at} "
            f"({left} bytes); kept the packets before it"
        )

    # ---------------------------------------------------------------- pcapng
    def _pcapng(self) -> Iterator[Record]:
        buf: Buffer = b""
        pos = offset = 0
        endian = "<"
        u32 = struct.Struct("<I").unpack_from
        ifaces: list[tuple[int, float, int, int]] = []  # link type, ticks/s, offset s, FCS
        for buf, offset, pos, end in self._buffers(0):
            while pos + 12 <= end:
                btype = u32(buf, pos)[0]
                if btype == 0x0A0D0D0A:  # section header: byte order may change
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        self.warnings.append(f"corrupt section header at byte {offset + pos}")
                        return
                    u32 = struct.Struct(endian + "I").unpack_from
                    ifaces = []
                blen = u32(buf, pos + 4)[0]
                if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
                    self.warnings.append(
                        f"corrupt block at byte {offset + pos} (length {blen}); "
                        "kept the packets before it"
                    )
                    return
                nxt = pos + blen
                if nxt > end:
                    break
                if btype == 6 or btype == 2:  # enhanced / obsolete packet block
                    iface, hi, lo, cap, orig = struct.unpack_from(endian + "IIIII", buf, pos + 8)
                    if btype == 2:
                        iface &= 0xFFFF
                    if iface >= len(ifaces) or 28 + cap > blen:
                        self.warnings.append(f"bad packet block at byte {offset + pos}; skipped")
                    else:
                        lt, tps, tsoff, fcs = ifaces[iface]
                        frame = buf[pos + 28 : pos + 28 + cap - fcs]
                        yield ((hi << 32) | lo) / tps + tsoff, lt, frame, orig - fcs
                elif btype == 3 and ifaces:  # simple packet block: no timestamp
                    orig = u32(buf, pos + 8)[0]
                    cap = min(orig, blen - 16)
                    fcs = ifaces[0][3]
                    yield 0.0, ifaces[0][0], buf[pos + 12 : pos + 12 + cap - fcs], orig - fcs
                elif btype == 1:  # interface description
                    lt = struct.unpack_from(endian + "H", buf, pos + 8)[0]
                    ifaces.append((lt, *self._if_options(buf, pos + 16, nxt - 4, endian)))
                pos = nxt
            self._stop = pos  # where the next buffer takes over
        if pos < len(buf):
            self.warnings.append(
                f"truncated: last block incomplete at byte {offset + pos} "
                f"({len(buf) - pos} bytes); kept the packets before it"
            )

    @staticmethod
    def _if_options(buf: Buffer, pos: int, end: int, endian: str) -> tuple[float, int, int]:
        """(ticks per second, timestamp offset in seconds, FCS bytes per frame) of an IDB:
        if_tsresol (default microseconds), if_tsoffset, if_fcslen (default none)."""
        tps, offset, fcs = 1e6, 0, 0
        while pos + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", buf, pos)
            if code == 0:
                break
            if code == 9 and length >= 1:
                v = buf[pos + 4]
                tps = float(2 ** (v & 0x7F)) if v & 0x80 else float(10**v)
            elif code == 14 and length == 8:
                offset = struct.unpack_from(endian + "q", buf, pos + 4)[0]
            elif code == 13 and length >= 1 and buf[pos + 4] < 16:
                fcs = buf[pos + 4]
            pos += 4 + ((length + 3) & ~3)
        return tps, offset, fcs


def open_records(f: BinaryIO, name: str = "capture") -> RecordReader:
    """A record reader for an open binary file (raises CaptureFormatError)."""
    return RecordReader(f, name)
