"""Readiness and liveness probes, run against the pod's loopback IP as a kubelet does.

httpGet (2xx/3xx is success), tcpSocket, grpc (grpc.health.v1) and exec.
A probe's counters follow the API: initialDelaySeconds, periodSeconds,
timeoutSeconds, successThreshold, failureThreshold.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any


def _port(port: Any, container: dict[str, Any]) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"no container port named {port}")


def check(probe: dict[str, Any], container: dict[str, Any], ip: str,
          env: dict[str, str]) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            h = probe["httpGet"]
            conn = http.client.HTTPConnection(ip, _port(h["port"], container), timeout=timeout)
            try:
                conn.request("GET", h.get("path", "/"))
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        if "tcpSocket" in probe:
            with socket.create_connection((ip, _port(probe["tcpSocket"]["port"], container)),
                                          timeout=timeout):
                return True
        if "grpc" in probe:
            import grpc
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            g = probe["grpc"]
            with grpc.insecure_channel(f"{ip}:{int(g['port'])}") as ch:
                resp = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=g.get("service", "")),
                    timeout=timeout)
                return resp.status == health_pb2.HealthCheckResponse.SERVING
        if "exec" in probe:
            res = subprocess.run(probe["exec"]["command"], env=env, timeout=timeout,
                                 capture_output=True)
            return res.returncode == 0
    except Exception:
        return False
    return False


@dataclass
class Prober:
    probe: dict[str, Any] | None
    started: float
    ok: bool = False  # readiness starts false, liveness is judged by failures only
    successes: int = 0
    failures: int = 0
    next_at: float = field(default=0.0)

    def due(self, now: float) -> bool:
        if self.probe is None:
            return False
        first = self.started + float(self.probe.get("initialDelaySeconds", 0))
        return now >= max(first, self.next_at)

    def record(self, result: bool, now: float) -> None:
        assert self.probe is not None
        self.next_at = now + float(self.probe.get("periodSeconds", 10))
        if result:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.ok = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.ok = False

    def failed(self) -> bool:
        return self.probe is not None and \
            self.failures >= int(self.probe.get("failureThreshold", 3))


def now() -> float:
    return time.monotonic()
