"""Master exchange throughput: commit + pull over real gRPC vs a raw loopback socket.

An exchange is what an AEASGD worker does every window: pull the centre (server
stream of chunks) and commit its elastic difference (client stream of chunks).
The master runs in its own process (the real servicer and Center, AEASGD rule);
clients are separate processes too, as workers are. The peer figure is a plain
TCP socket on loopback moving the same bytes the same way (send S, receive S),
the physical limit of this machine, measured in the same run.

Figures: the CNN's 23.3 MB vector (5,822,338 parameters) as MB/s and
exchanges/s (target: >= 50% of the raw socket), and the LSTM's 0.2 MB vector
(52,302 parameters) with 4 workers exchanging back to back, as exchanges/s
summed over workers (target: >= 1,000/s, i.e. 4 workers committing every
mini-batch at 250 batches/s each).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import time
from typing import Any

from bench.table import Row

CNN_PARAMS = 5_822_338
LSTM_PARAMS = 52_302
MB = 1e6


# ------------------------------------------------------------------ master side


def _serve_master(n: int, world: int, wire: str, conn: Any) -> None:
    import torch
    from trafficdl_master.center import Center, CenterState
    from trafficdl_master.server import ParameterServerServicer, make_master_server

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
    server, port, _ = make_master_server(ParameterServerServicer(spec, center), "127.0.0.1:0")
    server.start()
    conn.send(port)
    conn.recv()  # told to stop
    server.stop(None).wait()


def _client(port: int, seconds: float, min_exchanges: int, wire: str, conn: Any) -> None:
    import torch
    from trafficdl_worker.client import Exchanger, Progress

    from trafficdl.optim import get_rule
    from trafficdl.rpc.client import ParameterServerClient

    torch.set_num_threads(1)
    client = ParameterServerClient(f"127.0.0.1:{port}", "bench", wire_dtype=wire)
    reg = client.register(-1, "bench")
    ex = Exchanger(
        client,
        get_rule("aeasgd"),
        rank=reg.rank,
        alpha=0.5,
        center=reg.center,
        counter=reg.update_counter,
    )
    local = reg.center.clone()
    ex.exchange(local, Progress())  # warm-up: connection, first allocation
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_exchanges or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        local = ex.exchange(local, Progress())
        times.append(time.perf_counter() - t0)
    client.close()
    conn.send(times)


def _grpc_exchanges(
    n: int, workers: int, seconds: float, min_ex: int, wire: str
) -> list[list[float]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    master = ctx.Process(target=_serve_master, args=(n, workers, wire, child))
    master.start()
    try:
        port = parent.recv()
        pipes, procs = [], []
        for _ in range(workers):
            a, b = ctx.Pipe()
            p = ctx.Process(target=_client, args=(port, seconds, min_ex, wire, b))
            p.start()
            pipes.append(a)
            procs.append(p)
        results = [a.recv() for a in pipes]
        for p in procs:
            p.join()
        return results
    finally:
        parent.send("stop")
        master.join(10)
        if master.is_alive():
            master.kill()


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
    pipes, procs = [], []
    for _ in range(workers):
        a, b = ctx.Pipe()
        p = ctx.Process(target=_raw_client, args=(port, size, seconds, min_ex, b))
        p.start()
        pipes.append(a)
        procs.append(p)
    results = [a.recv() for a in pipes]
    for p in procs:
        p.join()
    server.join(10)
    return results


# ------------------------------------------------------------------ figures


def _rate(results: list[list[float]]) -> float:
    """Exchanges per second summed over clients (each client's count / its busy time)."""
    return sum(len(t) / sum(t) for t in results if t)


def run(quick: bool) -> list[Row]:
    """gRPC and raw socket alternate, round after round, so load on this shared
    machine hits both alike; figures are medians over rounds."""
    seconds = 1.5 if quick else 4.0
    rounds = 1 if quick else 3
    cnn_bytes, lstm_bytes = CNN_PARAMS * 4, LSTM_PARAMS * 4
    moved = 2 * cnn_bytes / MB  # commit + pull
    cnn, cnn_raw, cnn16, lstm, lstm_raw = [], [], [], [], []
    for _ in range(rounds):
        cnn.append(statistics.median(_grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32")[0]))
        cnn_raw.append(statistics.median(_raw_exchanges(cnn_bytes, 1, seconds, 5)[0]))
        cnn16.append(statistics.median(_grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float16")[0]))
        lstm.append(_rate(_grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32")))
        lstm_raw.append(_rate(_raw_exchanges(lstm_bytes, 4, seconds, 50)))
    g, r, h = (statistics.median(x) for x in (cnn, cnn_raw, cnn16))
    n = f"median of {rounds} alternating rounds"
    return [
        Row(
            "exchange",
            "CNN 23.3 MB commit+pull, 1 worker",
            moved / g,
            "MB/s",
            "raw loopback socket",
            moved / r,
            f"{n}; target >= 0.5x",
        ),
        Row(
            "exchange",
            "CNN exchanges/s, float16 wire",
            1 / h,
            "1/s",
            "float32 wire",
            1 / g,
            "half the bytes",
        ),
        Row(
            "exchange",
            "LSTM 0.2 MB exchanges/s, 4 workers",
            statistics.median(lstm),
            "1/s",
            "target",
            1000.0,
            "sum over 4 worker processes, back to back",
        ),
        Row(
            "exchange",
            "LSTM 0.2 MB exchanges/s, 4 workers",
            statistics.median(lstm),
            "1/s",
            "raw loopback socket",
            statistics.median(lstm_raw),
            n,
        ),
    ]


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=True)))
