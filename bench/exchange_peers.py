"""The peers of the exchange benchmark: what Python gRPC alone and a raw loopback socket do.

Both move the same bytes as a worker's exchange (send S, receive S) between
processes, with no model, rule or checks: the limits bench_exchange.py's
figures are read against, measured in the same run.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from collections.abc import Callable
from typing import Any


def client_results(ctx: Any, workers: int, target: Callable[..., None], head: tuple,
                   tail: tuple) -> list[Any]:  # fmt: skip
    """Start `workers` client processes `target(*head, pipe, *tail)`; their results."""
    pipes, procs = [], []
    for _ in range(workers):
        a, b = ctx.Pipe()
        p = ctx.Process(target=target, args=(*head, b, *tail))
        p.start()
        pipes.append(a)
        procs.append(p)
    results = [a.recv() for a in pipes]
    for p in procs:
        p.join()
    return results


# ------------------------------------------------------------------ bare gRPC


def _echo_server(clients: int, chunk: int, conn: Any) -> None:
    """What Python gRPC itself costs: a stream-stream call that takes S bytes in chunks
    and streams S bytes back, raw bytes (no protobuf, no checks), same options."""
    import grpc

    from trafficdl.rpc import security

    cache: dict[int, list[bytes]] = {}

    def exchange(requests: Any, _context: Any) -> Any:
        size = sum(len(m) for m in requests)
        if size not in cache:
            cache[size] = [bytes(min(chunk, size - i)) for i in range(0, size, chunk)]
        yield from cache[size]

    server, port = security.make_server("127.0.0.1:0", None, max_workers=2 * clients + 8)
    handler = grpc.stream_stream_rpc_method_handler(exchange)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Exchange": handler}),)
    )
    server.start()
    conn.send(port)
    conn.recv()
    server.stop(None).wait()


def _echo_client(port: int, size: int, chunk: int, seconds: float, min_ex: int, conn: Any) -> None:
    from trafficdl.rpc import security

    channel = security.make_channel(f"127.0.0.1:{port}", None)
    call = channel.stream_stream("/bench.Echo/Exchange")
    payload = memoryview(bytes(size))

    def once() -> None:
        sent = (bytes(payload[i : i + chunk]) for i in range(0, size, chunk))
        back = bytearray(size)
        got = 0
        for m in call(sent):
            back[got : got + len(m)] = m
            got += len(m)

    once()
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_ex or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    channel.close()
    conn.send(times)


def echo_exchanges(size: int, workers: int, seconds: float, min_ex: int) -> list[list[float]]:
    chunk = 1 << 20
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_echo_server, args=(workers, chunk, child))
    server.start()
    try:
        port = parent.recv()
        return client_results(ctx, workers, _echo_client, (port, size, chunk, seconds, min_ex), ())
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


# ------------------------------------------------------------------ raw socket


def _recv_exact(sock: socket.socket, buf: memoryview) -> None:
    got = 0
    while got < len(buf):
        k = sock.recv_into(buf[got:])
        if k == 0:
            raise ConnectionError("peer closed")
        got += k


def _raw_server(size: int, clients: int, conn: Any) -> None:
    import threading

    srv = socket.create_server(("127.0.0.1", 0))
    conn.send(srv.getsockname()[1])

    def handle(s: socket.socket) -> None:
        buf = memoryview(bytearray(size))
        with s:
            while True:
                try:
                    _recv_exact(s, buf)  # the commit
                except ConnectionError:
                    return
                s.sendall(buf)  # the pull

    threads = []
    for _ in range(clients):
        s, _addr = srv.accept()
        t = threading.Thread(target=handle, args=(s,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    srv.close()


def _raw_client(port: int, size: int, seconds: float, min_ex: int, conn: Any) -> None:
    payload = bytes(size)
    back = memoryview(bytearray(size))
    times = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        t_end = time.perf_counter() + seconds
        while len(times) < min_ex or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            s.sendall(payload)
            _recv_exact(s, back)
            times.append(time.perf_counter() - t0)
    conn.send(times)


def raw_exchanges(size: int, workers: int, seconds: float, min_ex: int) -> list[list[float]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_raw_server, args=(size, workers, child))
    server.start()
    port = parent.recv()
    results = client_results(ctx, workers, _raw_client, (port, size, seconds, min_ex), ())
    server.join(10)
    return results
