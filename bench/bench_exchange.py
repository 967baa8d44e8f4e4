"""Master exchange throughput: commit + pull over real gRPC vs a raw loopback socket.

An exchange is what an AEASGD worker does every window: pull the centre and
commit its elastic difference: for a model that fits one chunk (the LSTM) two
unary calls, PullOne then CommitOne; for the CNN, Pull then Commit (streams).
The master runs in its own process (the real servicer and Center, AEASGD rule);
clients are separate processes too, as workers are. The peer figure is a plain
TCP socket on loopback moving the same bytes the same way (send S, receive S),
the physical limit of this machine, measured in the same run.

Figures: the CNN's 23.3 MB vector (5,822,338 parameters) as MB/s and
exchanges/s (target: >= 50% of the raw socket), and the LSTM's 0.2 MB vector
(52,302 parameters) with 4 workers exchanging back to back, as exchanges/s
summed over workers (target: >= 1,000/s, i.e. 4 workers committing every
mini-batch at 250 batches/s each).

The first figure of each model is what a user gets: the master's defaults, every
ack durable (each commit appended to the commit log, one fsync per group of
commits: recovery.py) and a bearer token on every call, beside the same
exchange without them. The others run the master bare (no checkpoint, no
token) next to a bare Python gRPC echo of the same bytes (what gRPC alone can
do here), the streaming Exchange rpc and the older two-call Pull + Commit path.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.table import Row, pick

CNN_PARAMS = 5_822_338
LSTM_PARAMS = 52_302
MB = 1e6


# ------------------------------------------------------------------ master side


def _serve_master(
    n: int, world: int, wire: str, conn: Any, checkpoint_dir: str = "", token: str = ""
) -> None:
    import torch
    from trafficdl_master.center import Center
    from trafficdl_master.server import ParameterServerServicer, make_master_server
    from trafficdl_master.state import CenterState

    from trafficdl.config import DistConfig, TrainConfig
    from trafficdl.distributed.spec import RunSpec
    from trafficdl.optim import get_rule

    torch.set_num_threads(1)
    spec = RunSpec(
        run_id="bench",
        train=TrainConfig(model="lstm"),
        dist=DistConfig(workers=world, wire_dtype=wire),
        dataset="",
        num_classes=2,
        label_names=["a", "b"],
        model_version="bench",
    )
    center = Center(CenterState(vector=torch.zeros(n), world_size=world), get_rule("aeasgd"))
    servicer = ParameterServerServicer(spec, center)
    if checkpoint_dir:  # the master's default: every ack durable (commit log, group commit)
        from trafficdl_master.recovery import Checkpointer
        from trafficdl_master.snapshot_store import CheckpointStore

        store = CheckpointStore(checkpoint_dir)
        Checkpointer(store, spec, center, every=1).attach(servicer)
    server, port, _ = make_master_server(servicer, "127.0.0.1:0", token=token or None)
    server.start()
    conn.send(port)
    conn.recv()  # told to stop
    server.stop(None).wait()


def _client_results(ctx: Any, workers: int, target: Callable[..., None], head: tuple,
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


def _client(
    port: int,
    seconds: float,
    min_exchanges: int,
    wire: str,
    conn: Any,
    mode: str = "auto",
    token: str = "",
) -> None:
    import torch
    from trafficdl_worker.exchange import CommitProgress, Exchanger

    from trafficdl.optim import get_rule
    from trafficdl.rpc.client import ParameterServerClient

    torch.set_num_threads(1)
    client = ParameterServerClient(
        f"127.0.0.1:{port}", "bench", wire_dtype=wire, token=token or None
    )
    reg = client.register(-1, "bench")
    ex = Exchanger(
        client,
        get_rule("aeasgd"),
        rank=reg.rank,
        alpha=0.5,
        center=reg.center,
        counter=reg.update_counter,
    )
    # auto: what workers do (PullOne + CommitOne for a one-chunk model, else Pull +
    # Commit); stream: the streaming Exchange rpc instead of the unary calls
    ex.combined = mode != "pullcommit"
    client.one_calls = mode != "stream"
    if mode == "exchange":
        ex.exchange_max_bytes = 1 << 62
    local = reg.center.clone()
    ex.exchange(local, CommitProgress())  # warm-up: connection, first allocation
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_exchanges or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        local = ex.exchange(local, CommitProgress())
        times.append(time.perf_counter() - t0)
    client.close()
    conn.send(times)


def _grpc_exchanges(
    n: int,
    workers: int,
    seconds: float,
    min_ex: int,
    wire: str,
    *,
    mode: str = "auto",
    checkpoint: bool = False,
    token: bool = False,
) -> list[list[float]]:
    """Exchanges with a master in its own process; `checkpoint` and `token` together are
    the master's defaults (every ack durable, a bearer token on every call)."""
    ctx = mp.get_context("spawn")
    secret = "b" * 43 if token else ""
    parent, child = ctx.Pipe()
    tmp = tempfile.TemporaryDirectory(prefix="bench-ckpt-") if checkpoint else None
    master = ctx.Process(
        target=_serve_master, args=(n, workers, wire, child, tmp.name if tmp else "", secret)
    )
    master.start()
    try:
        port = parent.recv()
        return _client_results(ctx, workers, _client, (port, seconds, min_ex, wire), (mode, secret))
    finally:
        parent.send("stop")
        master.join(10)
        if master.is_alive():
            master.kill()
        if tmp is not None:
            tmp.cleanup()


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


def _echo_exchanges(size: int, workers: int, seconds: float, min_ex: int) -> list[list[float]]:
    chunk = 1 << 20
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_echo_server, args=(workers, chunk, child))
    server.start()
    try:
        port = parent.recv()
        return _client_results(ctx, workers, _echo_client, (port, size, chunk, seconds, min_ex), ())
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


def _raw_exchanges(size: int, workers: int, seconds: float, min_ex: int) -> list[list[float]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_raw_server, args=(size, workers, child))
    server.start()
    port = parent.recv()
    results = _client_results(ctx, workers, _raw_client, (port, size, seconds, min_ex), ())
    server.join(10)
    return results


# ------------------------------------------------------------------ figures


def _rate(results: list[list[float]]) -> float:
    """Exchanges per second summed over clients (each client's count / its busy time)."""
    return sum(len(t) / sum(t) for t in results if t)


def run(quick: bool) -> list[Row]:
    """Every setting alternates with the others, round after round, so load on this
    shared machine hits all alike; figures are medians over rounds.

    Settings: what workers do (unary PullOne + CommitOne for the one-chunk LSTM,
    Pull + Commit for the CNN), the other paths forced (the streaming Exchange rpc,
    Pull + Commit), the same with the master's
    default durable acks
    (`checkpoint_every=1`: the commit log in a temporary directory), a bare Python gRPC
    stream-stream echo of the same bytes (no protobuf, no checks: what gRPC alone
    costs here) and the raw loopback socket.
    """
    seconds = pick(full=4.0, quick=1.5, smoke=0.3)
    rounds = pick(full=3, quick=1)
    cnn_bytes, lstm_bytes = CNN_PARAMS * 4, LSTM_PARAMS * 4
    moved = 2 * cnn_bytes / MB  # commit + pull
    runs: dict[str, list[float]] = {}

    def cnn(key: str, results: list[list[float]]) -> None:
        runs.setdefault(key, []).append(statistics.median(results[0]))  # seconds/exchange

    def lstm(key: str, results: list[list[float]]) -> None:
        runs.setdefault(key, []).append(_rate(results))  # exchanges/s, 4 workers

    default = {"checkpoint": True, "token": True}  # what a user's master does
    for _ in range(rounds):
        cnn("cnn_default", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32", **default))
        cnn("cnn", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32"))
        cnn("cnn_raw", _raw_exchanges(cnn_bytes, 1, seconds, 5))
        cnn("cnn_echo", _echo_exchanges(cnn_bytes, 1, seconds, 5))
        cnn("cnn_exch", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32", mode="exchange"))
        cnn("cnn16", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float16"))
        lstm("lstm_default", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32", **default))
        lstm("lstm", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32"))
        lstm("lstm_raw", _raw_exchanges(lstm_bytes, 4, seconds, 50))
        lstm("lstm_echo", _echo_exchanges(lstm_bytes, 4, seconds, 50))
        lstm(
            "lstm_2rpc", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32", mode="pullcommit")
        )
        lstm("lstm_exch", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32", mode="stream"))
    m = {k: statistics.median(v) for k, v in runs.items()}
    n = f"median of {rounds} alternating rounds"
    cnn_fig = "CNN 23.3 MB commit+pull, 1 worker"
    lstm_fig = "LSTM 0.2 MB exchanges/s, 4 workers"
    bare = "no checkpoint, no token"
    dflt = "default master (every ack logged + fsynced, token)"
    return [
        Row("exchange", f"{cnn_fig}, {dflt}", moved / m["cnn_default"], "MB/s",
            "raw loopback socket", moved / m["cnn_raw"], f"{n}; what a user gets"),
        Row("exchange", f"{cnn_fig}, {dflt}", moved / m["cnn_default"], "MB/s",
            f"same, {bare}", moved / m["cnn"], "the price of durability + auth"),
        Row("exchange", f"{cnn_fig}, {bare}", moved / m["cnn"], "MB/s", "raw loopback socket",
            moved / m["cnn_raw"], f"Pull + Commit rpcs (workers' path); {n}; target >= 0.5x"),
        Row("exchange", f"{cnn_fig}, {bare}", moved / m["cnn"], "MB/s", "bare Python gRPC echo",
            moved / m["cnn_echo"], "same bytes, 1 MiB raw chunks, no protobuf/checks"),
        Row("exchange", f"{cnn_fig}, {bare}", moved / m["cnn"], "MB/s", "Exchange rpc",
            moved / m["cnn_exch"], "one call per exchange, forced"),
        Row("exchange", f"CNN exchanges/s, float16 wire, {bare}", 1 / m["cnn16"], "1/s",
            "float32 wire", 1 / m["cnn"], "half the bytes"),
        Row("exchange", f"{lstm_fig}, {dflt}", m["lstm_default"], "1/s", "target", 1000.0,
            f"PullOne + CommitOne (workers' path); sum over 4 worker processes; {n}"),
        Row("exchange", f"{lstm_fig}, {dflt}", m["lstm_default"], "1/s", f"same, {bare}",
            m["lstm"], "the price of durability + auth"),
        Row("exchange", f"{lstm_fig}, {bare}", m["lstm"], "1/s", "bare Python gRPC echo",
            m["lstm_echo"], "same bytes, 4 clients"),
        Row("exchange", f"{lstm_fig}, {bare}", m["lstm"], "1/s", "Exchange rpc", m["lstm_exch"],
            "one streaming call per exchange"),
        Row("exchange", f"{lstm_fig}, {bare}", m["lstm"], "1/s", "Pull + Commit rpcs",
            m["lstm_2rpc"], "two streaming calls per exchange"),
        Row("exchange", f"{lstm_fig}, {bare}", m["lstm"], "1/s", "raw loopback socket",
            m["lstm_raw"], n),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=True)))
