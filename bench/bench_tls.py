"""What mutual TLS costs the exchange, and what issuing a run's certificates costs.

mTLS is the default on a cluster (the operator issues every job's certificates);
it must not cost training time.
The exchange is bench_exchange's, unchanged: a real master process (servicer,
Center, AEASGD rule) and real worker processes doing what workers do (the
LSTM's 0.2 MB vector as PullOne + CommitOne with 4 workers, the CNN's 23.3 MB
vector as Pull + Commit streams with 1 worker), bearer token on every call, no
checkpoint (so the transport is all that differs). Each spawned process of the
TLS runs first makes TLS its default credentials (the run's CA, the master's
certificate with client certificates required, one worker certificate from
trafficdl.rpc.certs), then runs bench_exchange's own master or client code.
Plaintext and mTLS alternate, round after round, so load on this shared
machine hits both alike. Target: mTLS >= 0.9x plaintext.

Issuance: a fresh CA, the master's certificate and 16 workers' (18
certificates, what a 16-worker job needs), written as files, median of 3;
target <= 1 s.
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from bench import bench_exchange as ex
from bench.table import Row, median_time, pick

WORKERS_ISSUED = 16


def issue_certificates(directory: str | Path, workers: int = WORKERS_ISSUED) -> None:
    """A run's CA, master (SANs localhost, 127.0.0.1) and worker certificates, as files."""
    from trafficdl.rpc.certs import issue_run

    run = issue_run("bench", ["localhost", "127.0.0.1"], workers)
    run.ca.write(directory, "ca")
    run.master.write(directory, "master")
    for rank, issued in enumerate(run.workers):
        issued.write(directory, f"worker-{rank}")


TLS_DIR_ENV = "BENCH_TLS_DIR"  # inherited by the spawned master and clients


def _tls_master(*args: Any) -> None:
    """bench_exchange's master, serving mutual TLS with the files in $BENCH_TLS_DIR."""
    import trafficdl_master.server as server

    from trafficdl.rpc.security import ServerTls

    d = Path(os.environ[TLS_DIR_ENV])
    tls = ServerTls(d / "master.pem", d / "master.key", client_ca_file=d / "ca.pem")
    server.make_master_server = functools.partial(server.make_master_server, tls=tls)
    ex._serve_master(*args)


def _tls_client(*args: Any) -> None:
    """bench_exchange's worker client, over mutual TLS with a worker certificate."""
    import trafficdl.rpc.client as rpc_client
    from trafficdl.rpc.security import ClientTls

    d = Path(os.environ[TLS_DIR_ENV])
    tls = ClientTls(d / "ca.pem", d / "worker-0.pem", d / "worker-0.key")
    rpc_client.ParameterServerClient = functools.partial(rpc_client.ParameterServerClient, tls=tls)
    ex._client(*args)


def _exchanges(
    n: int, workers: int, seconds: float, min_ex: int, tls_dir: str
) -> list[list[float]]:
    """bench_exchange's exchanges (token on, no checkpoint); mTLS when `tls_dir` is set.

    For mTLS its process targets are swapped for the wrappers above for the call
    (spawned children import the originals, which the wrappers then run)."""
    if not tls_dir:
        return ex._grpc_exchanges(n, workers, seconds, min_ex, "float32", token=True)
    with (
        mock.patch.object(ex, "_serve_master", _tls_master),
        mock.patch.object(ex, "_client", _tls_client),
        mock.patch.dict(os.environ, {TLS_DIR_ENV: tls_dir}),
    ):
        return ex._grpc_exchanges(n, workers, seconds, min_ex, "float32", token=True)


def run(quick: bool) -> list[Row]:
    seconds = pick(full=4.0, quick=1.5, smoke=0.3)
    rounds = pick(full=3, quick=1)
    moved = 2 * ex.CNN_PARAMS * 4 / ex.MB  # commit + pull
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        issue_s = median_time(lambda: issue_certificates(tmp), repeats=3)
        for _ in range(rounds):
            for key, tls in (("plain", ""), ("mtls", tmp)):
                cnn = _exchanges(ex.CNN_PARAMS, 1, seconds, 5, tls)
                runs.setdefault(f"cnn_{key}", []).append(statistics.median(cnn[0]))
                lstm = _exchanges(ex.LSTM_PARAMS, 4, seconds, 50, tls)
                runs.setdefault(f"lstm_{key}", []).append(ex._rate(lstm))
    m = {k: statistics.median(v) for k, v in runs.items()}
    n = f"median of {rounds} alternating rounds; token on every call, no checkpoint"
    return [
        Row("tls", "CNN 23.3 MB commit+pull, 1 worker, mutual TLS", moved / m["cnn_mtls"],
            "MB/s", "same, plaintext", moved / m["cnn_plain"], f"{n}; target >= 0.9x"),
        Row("tls", "LSTM 0.2 MB exchanges/s, 4 workers, mutual TLS", m["lstm_mtls"], "1/s",
            "same, plaintext", m["lstm_plain"], f"PullOne + CommitOne; {n}; target >= 0.9x"),
        Row("tls", f"issue CA + master + {WORKERS_ISSUED} worker certificates (18, EC P-256)",
            issue_s, "s", "target", 1.0, "median of 3, files written; target <= 1x"),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.table import render

    t0 = time.perf_counter()
    print(render(run(quick=True)))
    print(f"{time.perf_counter() - t0:.1f} s")
