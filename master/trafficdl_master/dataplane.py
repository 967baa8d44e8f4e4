"""The master's end of the same-node data plane (trafficdl/rpc/dataplane.py).

A Unix socket in a private directory; one thread per connected worker reads
its doorbell frames and works on the worker's shared buffer: a pull copies
the centre into the buffer's centre half under the centre's lock (a pull
never sees a torn fold), a commit validates the commit half and folds it
through the servicer's own `fold` (deduplication, commit log and group
commit, checkpoint-before-ack, metrics: the same code as the gRPC commits).
The contribution is read in place; the worker does not touch its buffer
until the ack, and everything that keeps the values (the commit log, a
synchronous round) is done before the ack is sent.

`stop()` closes the listener and every connection and waits for the commits
in flight, so nothing is folded after it (the master saves its last
checkpoint then).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import logging
import mmap
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

import torch

from trafficdl.rpc.dataplane import (
    AGAIN,
    COMMIT,
    COMMIT_PULL,
    COUNTER,
    HEAD,
    HELLO,
    OK,
    PULL,
    SCHEME,
    SEALS,
    recv_exact,
    recv_frame,
    send_frame,
    vectors,
)
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl_master import metrics
from trafficdl_master.server import ParameterServerServicer, Refusal
from trafficdl_master.validation import CommitRefused, check_values

log = logging.getLogger("trafficdl.master")
_PEERCRED = struct.Struct("3i")


def _netns(pid: int | str) -> int:
    """The network namespace of process `pid` (-1 when it cannot be read: never equal).
    A worker in another one is "another host" (a pod, a netns lab) even when it shares
    the filesystem: it exchanges over gRPC, across the network it is meant to use."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino if pid else -1
    except OSError:
        return -1 if pid != "self" else -2


def _unsafe(fd: int, size: int) -> str:
    """Why the handed buffer may not be mapped ("" when it may): it must be exactly the
    two vectors and sealed at that size, or the worker could shrink it under the
    mapping and kill the master with SIGBUS."""
    try:
        actual = os.fstat(fd).st_size
        if actual != size:
            return f"shared buffer of {actual} bytes, not {size}"
        if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS != SEALS:
            return "shared buffer not sealed at its size"
    except OSError as exc:
        return f"shared buffer unusable: {exc}"
    return ""


class DataPlaneServer:
    """Serves `servicer`'s run to workers on this node; `address` is what they are told."""

    def __init__(self, servicer: ParameterServerServicer, token: str | None) -> None:
        self.servicer = servicer
        self.token = token or ""
        self.dir = tempfile.mkdtemp(prefix="trafficdl-dp-")  # 0700: only our user enters
        self.path = os.path.join(self.dir, "s")
        self.address = SCHEME + self.path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False
        self.ranks: set[int] = set()  # ranks that exchanged through the plane (run.json)
        self._accept = threading.Thread(target=self._serve, name="data-plane", daemon=True)

    def start(self) -> DataPlaneServer:
        self._accept.start()
        return self

    def stop(self, grace: float = 5.0) -> None:
        """No commit is folded after this returns (those in flight finish first)."""
        with self._lock:
            self._stopped = True
            conns = list(self._conns)
        for s in (self.listener, *conns):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        deadline = time.monotonic() + grace
        for t in [self._accept, *self._threads]:
            if t is not threading.current_thread() and t.ident is not None:
                t.join(max(deadline - time.monotonic(), 0.0))
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ serving
    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self._lock:
                if self._stopped:
                    conn.close()
                    return
                self._conns.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]  # reconnects
                t = threading.Thread(target=self._connection, args=(conn,), daemon=True,
                                     name="data-plane-worker")  # fmt: skip
                self._threads.append(t)
            t.start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            buf, numel, rank = self._hello(conn)
            commit, centre = vectors(buf, numel)
            with self._lock:
                self.ranks.add(rank)
            log.info("rank %d exchanges through the same-node data plane", rank)
            while True:
                kind, body = recv_frame(conn)
                if kind == PULL:
                    send_frame(conn, OK, COUNTER.pack(self._pull(centre)))
                elif kind in (COMMIT, COMMIT_PULL):
                    self._commit(conn, kind == COMMIT_PULL, body, commit, centre)
                else:
                    raise ConnectionError(f"unknown data plane request {kind}")
        except OSError as exc:  # a closed or broken connection: the worker uses gRPC
            log.debug("data plane connection closed: %s", exc)
        except Exception as exc:  # a malformed frame or hello: drop this connection only
            log.warning("data plane connection dropped: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _hello(self, conn: socket.socket) -> tuple[mmap.mmap, int, int]:
        """Check the peer and its hello; map the buffer it handed over."""
        pid, uid, _gid = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        msg, fds, _flags, _addr = socket.recv_fds(conn, HEAD.size + 4096, 1)
        try:
            if len(msg) < HEAD.size:
                raise ConnectionError("short hello")
            size, kind = HEAD.unpack_from(msg)
            body = msg[HEAD.size :]
            if kind != HELLO or size > 4096:
                raise ConnectionError("a data plane connection starts with its hello")
            if len(body) < size:
                body += recv_exact(conn, size - len(body))
            hello = json.loads(body)
            numel = self.servicer.center.state.vector.numel()
            problem = self._refusal(pid, uid, hello, fds, numel)
            if problem:
                metrics.AUTH_REJECTED.labels("data_plane").inc()
                send_frame(conn, AGAIN, problem.encode())
                raise ConnectionError(f"data plane hello refused: {problem}")
            buf = mmap.mmap(fds[0], 8 * numel)
            send_frame(conn, OK)
            return buf, numel, int(hello.get("rank", -1))
        finally:
            for fd in fds:
                os.close(fd)

    def _refusal(self, pid: int, uid: int, hello: dict, fds: list[int], numel: int) -> str:
        """Why this peer may not use the plane ("" when it may), cheapest checks first."""
        if uid != os.getuid():
            return "another user"
        if _netns(pid) != _netns("self"):
            return "another network namespace: not a worker of this node"
        if not hmac.compare_digest(str(hello.get("token", "")), self.token):
            return "wrong token"
        if hello.get("run_id") not in ("", self.servicer.spec.run_id):
            return f"not run {hello.get('run_id')!r}"
        if hello.get("numel") != numel:
            return f"{hello.get('numel')} values, the model has {numel}"
        if len(fds) != 1:
            return "no shared buffer"
        return _unsafe(fds[0], 8 * numel)

    def _pull(self, centre: torch.Tensor) -> int:
        def copy(counter: int, vector: torch.Tensor) -> int:
            centre.copy_(vector)
            return counter

        counter = self.servicer.center.read(copy)
        metrics.PULLS.inc()
        metrics.PULL_BYTES.inc(4 * centre.numel())
        return counter

    def _commit(self, conn: socket.socket, pull: bool, body: bytes, commit: torch.Tensor,
                centre: torch.Tensor) -> None:  # fmt: skip
        t0 = time.perf_counter()
        h = pb.CommitHeader.FromString(body)
        problem = self._problem(h, commit)
        if not problem:
            try:
                ack = self.servicer.fold(h, commit, t0)
            except Refusal as exc:
                problem = exc.message
        if problem:  # the worker finishes this window with the rpcs
            send_frame(conn, AGAIN, problem.encode())
            return
        counter = self._pull(centre) if pull and not h.final else 0
        send_frame(conn, OK, COUNTER.pack(counter) + ack.SerializeToString())

    def _problem(self, h: pb.CommitHeader, commit: torch.Tensor) -> str:
        """Why the commit cannot be folded here ("" when it can). A refused value is not
        counted here: the rpc the worker retries with refuses and counts it once."""
        if h.run_id and h.run_id != self.servicer.spec.run_id:
            return f"this master serves run {self.servicer.spec.run_id!r}, not {h.run_id!r}"
        try:
            check_values(commit)
        except CommitRefused as exc:
            return f"commit refused: {exc}"
        return ""
