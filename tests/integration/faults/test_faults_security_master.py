"""The real master process keeps strangers and bad commits out (security).

A master started as a pod starts it (token in TRAFFICDL_TOKEN): calls without
the token or with a wrong one are refused with UNAUTHENTICATED, the health
service answers without one; commits with a wrong shape, wire dtype, model
version or NaN/Inf values are refused with INVALID_ARGUMENT and a clear
message, counted per reason in Prometheus, and leave the centre unchanged; the
token appears in no command line, log or metric. With TLS files in the
environment, the master requires mutual TLS and a worker configured the same
way trains a run to the end.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
import torch
from faults_cluster import Cluster, free_port, make_dataset
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trafficdl.rpc import security
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "faults"))
from faults_tls_certs import make_pki

TRAIN = {"model": "lstm", "epochs": 2, "batch_size": 25, "lr": 0.003}
DIST = {"workers": 1, "algorithm": "aeasgd", "window": 4, "threads_per_worker": 1}


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code(), err.value.details()


def test_master_refuses_strangers_and_bad_commits(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", per_class=60)
    metrics_port = free_port()
    with Cluster(tmp_path, dataset, train=TRAIN, dist=DIST) as cl:
        cl.start_master(metrics_port=metrics_port)
        target = f"127.0.0.1:{cl.port}"

        # Health: public. Everything else: token needed.
        plain = grpc.insecure_channel(target)
        health = health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        plain.close()
        for token, message in ((None, "missing bearer token"),
                               (security.generate_token(), "invalid bearer token")):  # fmt: skip
            stranger = ParameterServerClient(target, cl.run_id, token=token)
            code, details = _code(lambda c=stranger: c.status(timeout=5))
            assert code == grpc.StatusCode.UNAUTHENTICATED and message in details
            code, _ = _code(lambda c=stranger: c.commit(torch.zeros(3), pb.CommitHeader(rank=0)))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            code, _ = _code(lambda c=stranger: c.register(0, "stranger"))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            stranger.close()

        # A peer with the token registers (world of 1: the run starts) ...
        peer = ParameterServerClient(target, cl.run_id, token=cl.token)
        reg = peer.register(0, "peer")
        n = reg.center.numel()
        assert reg.update_counter == 0 and n > 1000

        def commit(vector: torch.Tensor, *, dtype: str = "float32", version: str = "") -> None:
            peer.wire_dtype = dtype
            peer.model_version = version or reg.model_version
            header = pb.CommitHeader(rank=0, sequence=1, batches_done=1, epoch=0.1)
            peer.commit(vector, header)

        nan = torch.zeros(n)
        nan[n // 2] = float("nan")
        inf = torch.zeros(n)
        inf[-1] = float("inf")
        bad = {
            "shape": (lambda: commit(torch.zeros(n + 1)), "values, the model has"),
            "dtype": (lambda: commit(torch.zeros(n), dtype="float16"), "wire dtype 'float16'"),
            "version": (lambda: commit(torch.zeros(n), version="0" * 16), "model version"),
            "nonfinite": (lambda: commit(nan), "NaN or infinite"),
        }
        for reason, (call, expected) in bad.items():
            code, details = _code(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, reason
            assert details.startswith("commit refused:") and expected in details, details
        code, details = _code(lambda: commit(inf))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "1 NaN or infinite" in details

        # ... and the centre is exactly what it was.
        pulled = peer.pull(0)
        assert pulled.update_counter == 0 and torch.equal(pulled.center, reg.center)
        st = cl.status()
        assert st.commits_rejected == 5 and st.update_counter == 0

        # A well-formed commit still goes through (the refusals above were not blanket).
        commit(torch.full((n,), 1e-3))
        assert peer.pull(0).update_counter == 1
        peer.close()

        scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        text = scrape.read().decode()
        for reason, count in (("shape", 1), ("dtype", 1), ("version", 1), ("nonfinite", 2)):
            line = f'trafficdl_master_commits_invalid_total{{reason="{reason}"}} {count:.1f}'
            assert line in text, line
        assert 'trafficdl_master_auth_rejected_total{reason="missing"} 3.0' in text
        assert 'trafficdl_master_auth_rejected_total{reason="wrong"} 3.0' in text
        assert "trafficdl_master_commits_rejected_total 5.0" in text

        # The secret is in no command line, log or metric.
        cmdline = Path(f"/proc/{cl.procs['master'].pid}/cmdline").read_bytes()
        assert cl.token.encode() not in cmdline
        assert cl.token not in text and cl.token not in cl.log("master")
        assert "refused" in cl.log("master")


def test_mutual_tls_run_and_strangers_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    dataset = make_dataset(tmp_path / "ds", per_class=60)
    server_tls = {"TRAFFICDL_TLS_CERT": str(pki.server_cert),
                  "TRAFFICDL_TLS_KEY": str(pki.server_key), "TRAFFICDL_TLS_CA": str(pki.ca)}
    worker_tls = {"TRAFFICDL_TLS_CERT": str(pki.client_cert),
                  "TRAFFICDL_TLS_KEY": str(pki.client_key), "TRAFFICDL_TLS_CA": str(pki.ca)}
    with Cluster(tmp_path, dataset, train=TRAIN, dist=DIST) as cl:
        cl.start_master(extra=server_tls)
        target = f"127.0.0.1:{cl.port}"
        stranger = security.ClientTls(
            ca_file=pki.ca, cert_file=pki.stranger_cert, key_file=pki.stranger_key
        )
        refused = [
            ParameterServerClient(target, cl.run_id, token=cl.token),  # plaintext
            ParameterServerClient(target, cl.run_id, token=cl.token,
                                  tls=security.ClientTls(ca_file=pki.ca)),  # no client cert
            ParameterServerClient(target, cl.run_id, token=cl.token, tls=stranger),
        ]  # fmt: skip
        for client in refused:
            code, _ = _code(lambda c=client: c.status(timeout=5))
            assert code == grpc.StatusCode.UNAVAILABLE
            client.close()
        cl.start_worker(0, extra=worker_tls)
        assert cl.wait_master(timeout=120) == 0
        run = cl.run_json()
        assert run["commits_total"] >= 2 and run["commits_rejected"] == 0
        assert cl.procs["worker-0"].wait(timeout=30) == 0
