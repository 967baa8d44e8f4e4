"""Frames from a network interface: an AF_PACKET raw socket, optionally BPF-filtered.

No libpcap capture loop and no scapy sniffing (~2k packets/s measured here): one
`recvfrom` per frame straight into the walk's record tuple. `--bpf` filters
in the kernel: the expression is compiled by libpcap's `pcap_compile`
(through ctypes, no capture handle) and attached with SO_ATTACH_FILTER, so
filtered-out frames never reach Python. Opening the socket needs root or
CAP_NET_RAW; without it the user gets one line saying so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import socket
import struct
import time

from trafficdl.errors import TrafficdlError

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SOL_PACKET, PACKET_STATISTICS = 263, 6
SNAPLEN = 65535
# sll_hatype -> the pcap link type the walk decodes
_LINKTYPES = {1: 1, 772: 1, 65534: 101, 776: 101, 778: 101, 823: 101}


class LiveCaptureError(TrafficdlError):
    """The interface cannot be captured on (permissions, name, filter)."""


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]  # fmt: skip


def _libpcap() -> ctypes.CDLL:
    names = [ctypes.util.find_library("pcap"), "libpcap.so.1", "libpcap.so.0.8", "libpcap.so"]
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise LiveCaptureError("--bpf needs libpcap (Debian: apt-get install libpcap0.8)")


def compile_bpf(expression: str, linktype: int = 1) -> bytes:
    """A classic BPF program (struct sock_filter[]) for `expression`, as raw bytes."""
    pcap = _libpcap()
    pcap.pcap_open_dead.restype = ctypes.c_void_p
    pcap.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    pcap.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                  ctypes.c_int, ctypes.c_uint32]  # fmt: skip
    pcap.pcap_geterr.restype = ctypes.c_char_p
    pcap.pcap_geterr.argtypes = [ctypes.c_void_p]
    pcap.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    pcap.pcap_close.argtypes = [ctypes.c_void_p]
    handle = pcap.pcap_open_dead(linktype, SNAPLEN)
    prog = _BpfProgram()
    try:
        if pcap.pcap_compile(handle, ctypes.byref(prog), expression.encode(), 1, 0xFFFFFFFF) < 0:
            why = (pcap.pcap_geterr(handle) or b"syntax error").decode(errors="replace")
            raise LiveCaptureError(f"--bpf {expression!r}: {why}")
        insns = ctypes.cast(prog.bf_insns, ctypes.POINTER(_BpfInsn * prog.bf_len)).contents
        code = bytes(insns)
        pcap.pcap_freecode(ctypes.byref(prog))
        return code
    finally:
        pcap.pcap_close(handle)


class PacketSource:
    """Frames of one interface as (time, link type, bytes, original length) records."""

    def __init__(self, iface: str, bpf: str | None = None, rcvbuf: int = 64 << 20) -> None:
        self.iface = iface
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise LiveCaptureError(
                f"capturing on {iface} needs root or CAP_NET_RAW "
                "(sudo, or: setcap cap_net_raw+ep on the python binary)"
            ) from exc
        try:
            self._setup(iface, bpf, rcvbuf)
        except BaseException:
            self.sock.close()
            raise
        self.dropped_outgoing = 0

    def _setup(self, iface: str, bpf: str | None, rcvbuf: int) -> None:
        try:
            # FORCE lets root exceed net.core.rmem_max: bursts must not overflow the socket
            self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if bpf:
            code = compile_bpf(bpf)
            buf = ctypes.create_string_buffer(code)
            fprog = struct.pack("HL", len(code) // 8, ctypes.addressof(buf))
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            except OSError as exc:
                raise LiveCaptureError(f"--bpf {bpf!r}: the kernel refused it ({exc})") from exc
        try:
            self.sock.bind((iface, 0))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO) or isinstance(exc, socket.gaierror):
                raise LiveCaptureError(f"{iface}: no such network interface") from exc
            raise LiveCaptureError(f"{iface}: cannot capture ({exc.strerror or exc})") from exc
        self.sock.setblocking(False)
        self.loopback = iface == "lo"

    def read(self, timeout: float, max_frames: int = 512) -> list[tuple[float, int, bytes, int]]:
        """Frames available now (waiting up to `timeout` seconds for the first one)."""
        out: list[tuple[float, int, bytes, int]] = []
        if not select.select([self.sock], [], [], timeout)[0]:
            return out
        recv = self.sock.recvfrom
        clock = time.time
        lts = _LINKTYPES
        skip_out = self.loopback  # lo shows each frame twice, once as outgoing (libpcap too)
        while len(out) < max_frames:
            try:
                data, addr = recv(SNAPLEN)
            except BlockingIOError:
                break
            if skip_out and addr[2] == PACKET_OUTGOING:
                self.dropped_outgoing += 1
                continue
            out.append((clock(), lts.get(addr[3], -addr[3]), data, len(data)))
        return out

    def kernel_stats(self) -> tuple[int, int]:
        """(frames the kernel passed the filter, frames it dropped: socket buffer full) since
        the last call (PACKET_STATISTICS resets on read)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return struct.unpack("II", raw)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> PacketSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def can_capture() -> bool:
    """Whether this process may open AF_PACKET sockets (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
    except OSError:
        return False
    return os.name == "posix"
