"""What security costs on the wire: token check per call, TLS/mTLS on a 23 MB commit.

Run: .venv/bin/python tests/integration/faults/faults_bench_rpc.py
Prints median rates over loopback, plaintext next to each protected variant,
measured in the same run (these machines are noisy: compare side by side).
`measure()` returns the same figures as a dict for bench/.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "faults"))

from faults_tls_certs import make_pki

from trafficdl.rpc import security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

TOKEN = security.generate_token()
CHUNK = b"\x01" * (1 << 20)
CHUNKS = 23  # a 23 MB CNN centre


class Sink(pb_grpc.ParameterServerServicer):
    def Heartbeat(self, request, context):
        return pb.HeartbeatResponse(update_counter=1)

    def Commit(self, request_iterator, context):
        return pb.CommitResponse(update_counter=sum(len(m.chunk) for m in request_iterator))


def _commit() -> Iterator[pb.CommitRequest]:
    yield pb.CommitRequest(header=pb.CommitHeader(rank=0))
    for _ in range(CHUNKS):
        yield pb.CommitRequest(chunk=CHUNK)


def _rate(token, server_tls, client_tls, work: str, repeats: int) -> float:
    server, port = security.make_server("127.0.0.1:0", token, tls=server_tls, max_workers=4)
    pb_grpc.add_ParameterServerServicer_to_server(Sink(), server)
    server.start()
    try:
        with security.make_channel(f"localhost:{port}", token, tls=client_tls) as channel:
            stub = pb_grpc.ParameterServerStub(channel)
            rates = []
            for _ in range(repeats + 1):  # the first round warms the connection up
                t0 = time.perf_counter()
                if work == "heartbeat":
                    for _ in range(1000):
                        stub.Heartbeat(pb.HeartbeatRequest())
                    rates.append(1000 / (time.perf_counter() - t0))
                else:
                    stub.Commit(_commit())
                    rates.append(CHUNKS * len(CHUNK) / 1e6 / (time.perf_counter() - t0))
            return statistics.median(rates[1:])
    finally:
        server.stop(None)


def measure(repeats: int = 5) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        tls = (security.ServerTls(pki.server_cert, pki.server_key), security.ClientTls(pki.ca))
        mtls = (
            security.ServerTls(pki.server_cert, pki.server_key, pki.ca),
            security.ClientTls(pki.ca, pki.client_cert, pki.client_key),
        )
        return {
            "heartbeat_calls_per_s_plain": _rate(None, None, None, "heartbeat", repeats),
            "heartbeat_calls_per_s_token": _rate(TOKEN, None, None, "heartbeat", repeats),
            "commit_mb_per_s_plain": _rate(TOKEN, None, None, "commit", repeats),
            "commit_mb_per_s_tls": _rate(TOKEN, *tls, "commit", repeats),
            "commit_mb_per_s_mtls": _rate(TOKEN, *mtls, "commit", repeats),
        }


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:32s} {value:10.0f}")
