"""The same-node data plane: tensors through shared memory, a Unix socket for the doorbell.

Python gRPC caps an exchange near half a raw loopback socket (every byte is
copied through protobuf messages, HTTP/2 frames and the kernel twice), and
its per-call cost caps a small model's exchanges at a few hundred per second
(bench/bench_exchange.py). A worker on the master's own node (the local
launcher's children, a pod beside the master) does not need a network for the
tensor bytes: it creates one anonymous shared-memory file (memfd) of two
vectors, [commit | centre], hands its descriptor to the master over a Unix
socket (SCM_RIGHTS; nothing under /dev/shm to name, guess or leak), and from
then on each exchange is a few dozen bytes on that persistent socket while
the vectors are written in place: the worker writes its contribution into the
commit half, the master folds it from there and copies the centre into the
centre half. Control (register, heartbeat, leave, status) stays on gRPC, and
every refusal or broken connection sends the window back to the gRPC rpcs,
whose retries, re-registration and deduplication by sequence apply unchanged.

Who may connect: the socket lives in a directory only the master's user can
enter (0700), the master checks the peer's uid (SO_PEERCRED) and the run's
bearer token in the hello. TLS does not apply: no byte leaves the host's
memory. The vectors are float32; a run with a 16-bit wire dtype rounds them
through it on the worker, so both transports fold the same numbers.

Frames, both ways: a 5-byte head (little-endian uint32 body length, one kind
byte) and the body. Requests: HELLO (JSON, with the descriptor), PULL (empty;
answer: the centre's counter), COMMIT and COMMIT_PULL (a serialized
CommitHeader; answer: the counter of the centre copied back, 0 without one,
then a serialized CommitResponse). Answers: OK, or AGAIN with a reason (the
worker finishes that window with the rpcs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import mmap
import os
import socket
import struct
import time
from typing import Any

import torch

from trafficdl.errors import TrafficdlError
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

log = logging.getLogger("trafficdl.worker")
HEAD = struct.Struct("<IB")
COUNTER = struct.Struct("<Q")
HELLO, PULL, COMMIT, COMMIT_PULL = 1, 2, 3, 4
OK, AGAIN = 0, 1
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
MAX_BODY = 1 << 20  # headers and hellos only: tensors never travel on the socket
SCHEME = "unix:"
_WIRE = {"float16": torch.float16, "bfloat16": torch.bfloat16}


class DataPlaneError(TrafficdlError):
    """The data plane broke off or refused: finish the window with the gRPC rpcs.
    `refused`: the master turned this worker away at the hello (it will again)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def send_frame(sock: socket.socket, kind: int, body: bytes = b"") -> None:
    sock.sendall(HEAD.pack(len(body), kind) + body)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("data plane closed")
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[int, bytes]:
    size, kind = HEAD.unpack(recv_exact(sock, HEAD.size))
    if size > MAX_BODY:
        raise ConnectionError(f"data plane frame of {size} bytes")
    return kind, recv_exact(sock, size) if size else b""


def vectors(buf: mmap.mmap, numel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The commit half and the centre half of a shared buffer, as float32 views."""
    commit = torch.frombuffer(buf, dtype=torch.float32, count=numel, offset=0)
    centre = torch.frombuffer(buf, dtype=torch.float32, count=numel, offset=4 * numel)
    return commit, centre


def socket_path(address: str) -> str:
    """The socket path of "unix:<path>" ("" for anything else: not a data plane we know)."""
    return address[len(SCHEME) :] if address.startswith(SCHEME) else ""


class DataPlaneClient:
    """One worker's persistent connection to the master's data plane."""

    def __init__(self, sock: socket.socket, buf: mmap.mmap, numel: int, wire_dtype: str) -> None:
        self.sock = sock
        self.buf = buf
        self.numel = numel
        self._commit, self._centre = vectors(buf, numel)
        self._wire = _WIRE.get(wire_dtype)

    @classmethod
    def connect(
        cls, address: str, *, run_id: str, rank: int, numel: int, token: str | None,
        wire_dtype: str = "float32", timeout: float = 10.0,
    ) -> DataPlaneClient:  # fmt: skip
        """Connect and hand over a fresh shared buffer; raises DataPlaneError."""
        path = socket_path(address)
        if not path or not os.path.exists(path):
            raise DataPlaneError(f"no data plane at {address!r} on this node")
        fd = os.memfd_create("trafficdl-dataplane", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.ftruncate(fd, 8 * numel)
            # Sealed at its size: the master maps it, and a buffer that shrank under a
            # mapping would kill the master (SIGBUS) on its next access.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
            buf = mmap.mmap(fd, 8 * numel)
            sock.settimeout(timeout)
            sock.connect(path)
            hello = json.dumps(
                {"run_id": run_id, "rank": rank, "numel": numel, "token": token or ""}
            ).encode()
            socket.send_fds(sock, [HEAD.pack(len(hello), HELLO) + hello], [fd])
            kind, body = recv_frame(sock)
            if kind != OK:
                raise DataPlaneError(f"data plane refused: {body.decode(errors='replace')}",
                                     refused=True)  # fmt: skip
            sock.settimeout(None)  # an exchange may wait on a synchronous round
            return cls(sock, buf, numel, wire_dtype)
        except (OSError, ValueError) as exc:
            sock.close()
            raise DataPlaneError(f"data plane {address}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(fd)  # the mapping (and the master's copy of the descriptor) keep it

    def _call(self, kind: int, body: bytes = b"") -> bytes:
        try:
            send_frame(self.sock, kind, body)
            answer, reply = recv_frame(self.sock)
        except OSError as exc:
            raise DataPlaneError(f"data plane: {exc}") from None
        if answer != OK:
            raise DataPlaneError(f"data plane: {reply.decode(errors='replace')}")
        return reply

    def _rounded(self, t: torch.Tensor) -> torch.Tensor:
        return t if self._wire is None else t.to(self._wire).to(torch.float32)

    def pull(self) -> tuple[int, torch.Tensor]:
        """The centre's counter and the centre, in the shared buffer: valid until the
        next call (an elastic contribution is computed from it at once, no copy)."""
        (counter,) = COUNTER.unpack(self._call(PULL))
        return counter, self._rounded(self._centre)

    def commit(
        self, contribution: torch.Tensor, header: pb.CommitHeader, *, pull: bool
    ) -> tuple[pb.CommitResponse, int, torch.Tensor | None]:
        """Fold `contribution`; the ack and, with `pull` (and not final), the centre after
        the fold with its counter."""
        self._commit.copy_(self._rounded(contribution))
        reply = self._call(COMMIT_PULL if pull else COMMIT, header.SerializeToString())
        (counter,) = COUNTER.unpack_from(reply)
        ack = pb.CommitResponse.FromString(reply[COUNTER.size :])
        centre = self._rounded(self._centre.clone()) if pull and not header.final else None
        return ack, counter, centre

    def close(self) -> None:
        self.sock.close()
        del self._commit, self._centre
        with contextlib.suppress(BufferError):  # a view still alive: the mapping goes with it
            self.buf.close()


class DataPlaneLink:
    """A worker's data plane, connected on first use and again after a break (at most
    once per `retry_seconds`); `address_of()` names the latest registration's plane."""

    def __init__(self, address_of: Any, *, token: str | None, run_id: str, numel: int,
                 wire_dtype: str, retry_seconds: float = 1.0) -> None:  # fmt: skip
        self.address_of = address_of
        self.token = token
        self.run_id = run_id
        self.numel = numel
        self.wire_dtype = wire_dtype
        self.retry_seconds = retry_seconds
        self.client: DataPlaneClient | None = None
        self._next_try = 0.0
        self.breaks = 0
        self.refused = ""  # the address whose master turned us away: not asked again

    def get(self, rank: int) -> DataPlaneClient | None:
        if self.client is not None:
            return self.client
        address = self.address_of()
        if (not socket_path(address) or address == self.refused
                or time.monotonic() < self._next_try):  # fmt: skip
            return None
        try:
            self.client = DataPlaneClient.connect(
                address, run_id=self.run_id, rank=rank, numel=self.numel, token=self.token,
                wire_dtype=self.wire_dtype,
            )  # fmt: skip
        except DataPlaneError as exc:
            if exc.refused:
                self.refused = address
                log.info("%s: exchanging over gRPC", exc)
            self._next_try = time.monotonic() + self.retry_seconds
        return self.client

    def drop(self) -> None:
        """Forget the connection (after an error): its buffer is never written again."""
        if self.client is not None:
            self.client.close()
            self.client = None
            self.breaks += 1
            self._next_try = time.monotonic() + self.retry_seconds

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
