"""Master exchange throughput: commit + pull over real gRPC vs a raw loopback socket.

An exchange is what an AEASGD worker does every window: pull the centre and
commit its elastic difference: for a model that fits one chunk (the LSTM) two
unary calls, PullOne then CommitOne; for the CNN, Pull then Commit (streams).
The master runs in its own process (the real servicer and Center, AEASGD rule);
clients are separate processes too, as workers are. The peer figure is a plain
TCP socket on loopback moving the same bytes the same way (send S, receive S),
the physical limit of this machine, measured in the same run.

Figures: the CNN's 23.3 MB vector (5,822,338 parameters) as MB/s and
exchanges/s (target through the data plane: >= 70% of the raw socket; over
gRPC >= 50%), and the LSTM's 0.2 MB vector (52,302 parameters) with 4 workers
exchanging back to back, as exchanges/s summed over workers (target through
the data plane >= 2,000/s; over gRPC >= 1,000/s).

The first figure of each model is what the local launcher's workers get: the
same-node data plane (shared memory and a Unix socket: trafficdl/rpc/dataplane.py)
with the master's defaults, every ack durable (each commit appended to the
commit log, one fsync per group of commits: recovery.py) and the bearer token
checked when the worker connects, beside the same exchange without them; then
what a worker on another node gets, the gRPC rpcs, likewise. The others run
the master bare (no checkpoint, no token) next to a bare Python gRPC echo of
the same bytes (what gRPC alone can do here), the streaming Exchange rpc and
the older two-call Pull + Commit path.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import time
from typing import Any

from bench.exchange_peers import client_results, echo_exchanges, raw_exchanges
from bench.table import Row, pick

CNN_PARAMS = 5_822_338
LSTM_PARAMS = 52_302
MB = 1e6


# ------------------------------------------------------------------ master side


def _serve_master(
    n: int, world: int, wire: str, conn: Any, checkpoint_dir: str = "", token: str = "",
    plane: bool = False,
) -> None:  # fmt: skip
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
    dp = None
    if plane:  # workers on this node: tensors through shared memory (dataplane.py)
        from trafficdl_master.dataplane import DataPlaneServer

        dp = DataPlaneServer(servicer, token or None).start()
        servicer.data_plane = dp.address
    server.start()
    conn.send(port)
    conn.recv()  # told to stop
    if dp is not None:
        dp.stop()
    server.stop(None).wait()


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
    plane: bool = False,
) -> list[list[float]]:
    """Exchanges with a master in its own process; `checkpoint` and `token` together are
    the master's defaults (every ack durable, a bearer token on every call); `plane`: it
    offers its same-node data plane, which workers then use (the local launcher's case)."""
    ctx = mp.get_context("spawn")
    secret = "b" * 43 if token else ""
    parent, child = ctx.Pipe()
    tmp = tempfile.TemporaryDirectory(prefix="bench-ckpt-") if checkpoint else None
    master = ctx.Process(
        target=_serve_master,
        args=(n, workers, wire, child, tmp.name if tmp else "", secret, plane),
    )
    master.start()
    try:
        port = parent.recv()
        return client_results(ctx, workers, _client, (port, seconds, min_ex, wire), (mode, secret))
    finally:
        parent.send("stop")
        master.join(10)
        if master.is_alive():
            master.kill()
        if tmp is not None:
            tmp.cleanup()


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
    plane = {"plane": True}  # a worker on the master's node (the local launcher's)
    for _ in range(rounds):
        cnn("cnn_plane_default", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32",
                                                 **default, **plane))  # fmt: skip
        cnn("cnn_plane", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32", **plane))
        cnn("cnn_default", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32", **default))
        cnn("cnn", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32"))
        cnn("cnn_raw", raw_exchanges(cnn_bytes, 1, seconds, 5))
        cnn("cnn_echo", echo_exchanges(cnn_bytes, 1, seconds, 5))
        cnn("cnn_exch", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float32", mode="exchange"))
        cnn("cnn16", _grpc_exchanges(CNN_PARAMS, 1, seconds, 5, "float16"))
        lstm("lstm_plane_default", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32",
                                                   **default, **plane))  # fmt: skip
        lstm("lstm_plane", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32", **plane))
        lstm("lstm_default", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32", **default))
        lstm("lstm", _grpc_exchanges(LSTM_PARAMS, 4, seconds, 50, "float32"))
        lstm("lstm_raw", raw_exchanges(lstm_bytes, 4, seconds, 50))
        lstm("lstm_echo", echo_exchanges(lstm_bytes, 4, seconds, 50))
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
    near, far = "same node (data plane)", "other node (gRPC)"
    return [
        Row("exchange", f"{cnn_fig}, {near}, {dflt}", moved / m["cnn_plane_default"], "MB/s",
            "raw loopback socket", moved / m["cnn_raw"], f"{n}; what the local launcher gets"),
        Row("exchange", f"{cnn_fig}, {near}, {dflt}", moved / m["cnn_plane_default"], "MB/s",
            f"same, {bare}", moved / m["cnn_plane"], "the price of durability + auth"),
        Row("exchange", f"{cnn_fig}, {near}, {bare}", moved / m["cnn_plane"], "MB/s",
            "raw loopback socket", moved / m["cnn_raw"], "shared memory + Unix socket; "
            "target >= 0.7x"),
        Row("exchange", f"{cnn_fig}, {near}, {bare}", moved / m["cnn_plane"], "MB/s",
            "same over gRPC", moved / m["cnn"], "Pull + Commit rpcs"),
        Row("exchange", f"{cnn_fig}, {far}, {dflt}", moved / m["cnn_default"], "MB/s",
            "raw loopback socket", moved / m["cnn_raw"], f"{n}; what a pod on another node gets"),
        Row("exchange", f"{cnn_fig}, {far}, {dflt}", moved / m["cnn_default"], "MB/s",
            f"same, {bare}", moved / m["cnn"], "the price of durability + auth"),
        Row("exchange", f"{cnn_fig}, {far}, {bare}", moved / m["cnn"], "MB/s",
            "raw loopback socket", moved / m["cnn_raw"], f"Pull + Commit rpcs; {n}"),
        Row("exchange", f"{cnn_fig}, {far}, {bare}", moved / m["cnn"], "MB/s",
            "bare Python gRPC echo", moved / m["cnn_echo"],
            "same bytes, 1 MiB raw chunks, no protobuf/checks"),
        Row("exchange", f"{cnn_fig}, {far}, {bare}", moved / m["cnn"], "MB/s", "Exchange rpc",
            moved / m["cnn_exch"], "one call per exchange, forced"),
        Row("exchange", f"CNN exchanges/s, float16 wire, {far}, {bare}", 1 / m["cnn16"], "1/s",
            "float32 wire", 1 / m["cnn"], "half the bytes"),
        Row("exchange", f"{lstm_fig}, {near}, {dflt}", m["lstm_plane_default"], "1/s",
            "target", 2000.0, f"sum over 4 worker processes; {n}"),
        Row("exchange", f"{lstm_fig}, {near}, {dflt}", m["lstm_plane_default"], "1/s",
            f"same, {bare}", m["lstm_plane"], "the price of durability + auth"),
        Row("exchange", f"{lstm_fig}, {near}, {bare}", m["lstm_plane"], "1/s", "target",
            2000.0, "shared memory + Unix socket"),
        Row("exchange", f"{lstm_fig}, {near}, {bare}", m["lstm_plane"], "1/s",
            "same over gRPC", m["lstm"], "PullOne + CommitOne rpcs"),
        Row("exchange", f"{lstm_fig}, {far}, {dflt}", m["lstm_default"], "1/s", "target",
            1000.0, f"PullOne + CommitOne; sum over 4 worker processes; {n}"),
        Row("exchange", f"{lstm_fig}, {far}, {dflt}", m["lstm_default"], "1/s", f"same, {bare}",
            m["lstm"], "the price of durability + auth"),
        Row("exchange", f"{lstm_fig}, {far}, {bare}", m["lstm"], "1/s", "bare Python gRPC echo",
            m["lstm_echo"], "same bytes, 4 clients"),
        Row("exchange", f"{lstm_fig}, {far}, {bare}", m["lstm"], "1/s", "Exchange rpc",
            m["lstm_exch"], "one streaming call per exchange"),
        Row("exchange", f"{lstm_fig}, {far}, {bare}", m["lstm"], "1/s", "Pull + Commit rpcs",
            m["lstm_2rpc"], "two streaming calls per exchange"),
        Row("exchange", f"{lstm_fig}, {far}, {bare}", m["lstm"], "1/s", "raw loopback socket",
            m["lstm_raw"], n),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.table import render

    print(render(run(quick=True)))
