"""Fixtures: kmock as the API server, the real operator in its own thread, a stand-in master.

The stand-in master speaks mutual TLS with the certificates the operator puts in
the job's TLS Secret, as a real master does (the default on a cluster).

The operator reads its settings from the environment each time it starts (its
startup handler), so a session fixture sets the suite's (a 0.2 s reconcile
interval, short timeouts) and restores the environment afterwards; kopf fixes the
timer's interval at the first start in a process, so these are set before any
operator starts. The ports (the operator's metrics, the stand-in master) are picked
afresh for each test and set in the environment the test's operator starts with: a
port picked at collection time may, twenty minutes of suite later, be the ephemeral
end of some other connection (EADDRINUSE). Each test's
kubeconfig points at its own kmock server;
kubernetes.config froze KUBECONFIG when it was imported, so its default
location is patched too (kopf's login and the operator's client both use it).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import kmock
import pytest
import pytest_asyncio
from operator_kmock import (
    EVENTS,
    PODS,
    SECRETS,
    KubeEmulator,
    declare_resources,
    eventually,
    write_kubeconfig,
)
from support.ports import free_ports

from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

OPERATOR_ENV = {
    "TRAFFICDL_OPERATOR_RECONCILE_INTERVAL": "0.2",
    "TRAFFICDL_OPERATOR_STATUS_TIMEOUT": "1",
    "TRAFFICDL_OPERATOR_POD_GRACE_SECONDS": "0",
}
NS = "default"
TTJ_PATH = f"/apis/trafficdl.io/v1alpha1/namespaces/{NS}/traffictrainingjobs"


class StandInMaster(pb_grpc.ParameterServerServicer):
    """Answers Status only, from `self.response`; records the bearer tokens it saw."""

    def __init__(self) -> None:
        self.response = pb.StatusResponse(phase=pb.RUN_PHASE_WAITING)
        self.tokens: list[str] = []

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> Any:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        self.tokens.append(auth.removeprefix("Bearer "))
        resp = pb.StatusResponse()
        resp.CopyFrom(self.response)
        resp.run_id = request.run_id
        return resp


@pytest.fixture()
def settings(operator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The operator's settings for this test, with a fresh metrics and master port (in
    the environment, where the test's operator reads them when it starts)."""
    from trafficdl_operator.settings import ENV_PREFIX, Settings

    master_port, metrics_port = free_ports(2)
    monkeypatch.setenv(f"{ENV_PREFIX}METRICS_PORT", str(metrics_port))
    monkeypatch.setenv(f"{ENV_PREFIX}MASTER_ADDR_OVERRIDE", f"127.0.0.1:{master_port}")
    return Settings.from_env()


def job_tls(cluster: Cluster) -> dict[str, bytes] | None:
    """The TLS Secret of the job created last (the operator's, as a master mounts it)."""
    secrets = [s for name, s in list(cluster.live(SECRETS).items()) if name.endswith("-tls")]
    if not secrets:
        return None
    return {k: base64.b64decode(v) for k, v in (secrets[-1].get("data") or {}).items()}


def _master_credentials(cluster: Cluster) -> grpc.ServerCredentials:
    """Mutual TLS like a real master: the certificate of the job's Secret, client
    certificates required and checked against the job's CA; read at each handshake,
    because the Secret appears only once the operator creates the job."""
    from trafficdl_operator import tls

    def config(data: dict[str, bytes]) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(data["master.key"], data["master.crt"])], root_certificates=data["ca.crt"])

    placeholder = tls.issue("none", "none", timedelta(hours=1))

    def fetch() -> Any:
        data = job_tls(cluster)
        return config(data) if data and data.get("master.key") else None

    return grpc.dynamic_ssl_server_credentials(config(placeholder), fetch,
                                               require_client_authentication=True)


@pytest.fixture()
def master(settings: Any, cluster: Cluster) -> Iterator[StandInMaster]:
    servicer = StandInMaster()
    pool = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="stand-in-master")
    server = grpc.server(pool)
    pb_grpc.add_ParameterServerServicer_to_server(servicer, server)
    server.add_secure_port(settings.master_addr_override, _master_credentials(cluster))
    server.start()
    yield servicer
    server.stop(grace=None).wait()
    pool.shutdown(wait=True)


class Cluster:
    """What a test does to the mock cluster: kubectl-like writes over HTTP, reads from memory."""

    def __init__(self, k: KubeEmulator, ttj: kmock.resource) -> None:
        self.k, self.ttj = k, ttj

    async def _send(self, method: str, path: str, body: Any, ctype: str) -> dict[str, Any]:
        resp = await self.k.request(method, path, json=body, headers={"Content-Type": ctype})
        data = await resp.json()
        assert resp.status < 300, data
        return data

    async def create_job(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": "trafficdl.io/v1alpha1", "kind": "TrafficTrainingJob",
                "metadata": {"name": name, "namespace": NS}, "spec": spec}
        return await self._send("POST", TTJ_PATH, body, "application/json")

    async def patch_job(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._send("PATCH", f"{TTJ_PATH}/{name}", patch,
                                "application/merge-patch+json")

    async def delete_job(self, name: str) -> None:
        await self._send("DELETE", f"{TTJ_PATH}/{name}", {}, "application/json")

    async def set_pod(self, name: str, phase: str, exit_code: int | None = None) -> None:
        status: dict[str, Any] = {"phase": phase}
        if exit_code is not None:
            status["containerStatuses"] = [{"name": "c", "state": {"terminated": {
                "exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}}}]
        await self._send("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status",
                         {"status": status}, "application/merge-patch+json")

    async def run_pods(self, *names: str) -> None:
        for name in names:
            await self.set_pod(name, "Running")

    def live(self, resource: kmock.resource) -> dict[str, dict[str, Any]]:
        return {key[2]: obj.raw for key, obj in self.k.objects.items()
                if key[0] == resource and not obj.deleted}

    def pods(self) -> dict[str, dict[str, Any]]:
        return self.live(PODS)

    def job(self, name: str) -> dict[str, Any] | None:
        return self.live(self.ttj).get(name)

    def status(self, name: str) -> dict[str, Any]:
        return (self.job(name) or {}).get("status") or {}

    def condition(self, name: str, ctype: str) -> dict[str, Any] | None:
        for cond in self.status(name).get("conditions") or []:
            if cond["type"] == ctype:
                return cond
        return None

    def event_reasons(self) -> list[str]:
        return [e.get("reason", "") for e in self.live(EVENTS).values()]


@pytest.fixture(scope="session")
def operator_env() -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OPERATOR_ENV.items():
            mp.setenv(key, value)
        yield OPERATOR_ENV


@pytest_asyncio.fixture()
async def cluster(operator_env: dict[str, str], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    from kubernetes.config import kube_config

    async with KubeEmulator() as k, kmock.Server(k) as server:
        ttj = declare_resources(k)
        path = str(write_kubeconfig(tmp_path / "kubeconfig", str(server.url)))
        monkeypatch.setenv("KUBECONFIG", path)  # for subprocesses
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", path)
        yield Cluster(k, ttj)


@pytest_asyncio.fixture()
async def operator(cluster: Cluster, settings: Any) -> AsyncIterator[Any]:
    """The real operator (kopf's CLI) in its own thread and loop, stopped after the test."""
    from kopf.testing import KopfRunner

    runner = KopfRunner(["run", "--all-namespaces", "--standalone", "-m",
                         "trafficdl_operator.main"], timeout=30)
    loop = asyncio.get_running_loop()
    before = set(threading.enumerate())
    with futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kopf-runner") as pool:
        await loop.run_in_executor(pool, runner.__enter__)
        try:
            yield runner
        finally:
            # Joining blocks: do it off the loop so kmock keeps answering kopf's last calls.
            await loop.run_in_executor(pool, runner.__exit__, None, None, None)
    # The operator must leave no thread behind (its handler pool, metrics server, loop).
    await eventually(lambda: not set(threading.enumerate()) - before, timeout=5,
                     what="the operator's threads to exit")
