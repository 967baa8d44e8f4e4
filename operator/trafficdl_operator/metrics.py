"""The operator's own Prometheus metrics (JupyterHub-style: module constants with help).

Names follow `trafficdl_operator_<noun>_<unit>`; labels are bounded (phase,
handler, role, outcome): never a job name or uid, those belong to the
TrafficTrainingJob's status and Events. The jobs-by-phase gauge is recomputed
from an in-memory map of the jobs this process reconciles.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from trafficdl_operator.contract import PHASES

JOBS = Gauge("trafficdl_operator_jobs", "TrafficTrainingJobs known to this operator, by phase.",
             ["phase"])
RECONCILIATIONS = Counter("trafficdl_operator_reconciliations_total",
                          "Handler runs (create, reconcile), successful or not.", ["handler"])
ERRORS = Counter("trafficdl_operator_reconcile_errors_total",
                 "Handler runs that raised (kopf retries them).", ["handler"])
DURATION = Histogram("trafficdl_operator_reconcile_duration_seconds",
                     "Wall time of one handler run.", ["handler"],
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RESTARTS = Counter("trafficdl_operator_pod_restarts_total",
                   "Failed master/worker pods recreated by the operator.", ["role"])
STATUS_POLLS = Counter("trafficdl_operator_status_polls_total",
                       "Status RPCs to masters, by outcome (ok, unavailable).", ["outcome"])

_lock = threading.Lock()
_phases: dict[str, str] = {}


def set_phase(uid: str, phase: str | None) -> None:
    """Record (or forget, with None) a job's phase and refresh the gauge."""
    with _lock:
        if phase is None:
            _phases.pop(uid, None)
        else:
            _phases[uid] = phase
        for p in PHASES:
            JOBS.labels(phase=p).set(sum(1 for v in _phases.values() if v == p))


def start_server(port: int, registry: CollectorRegistry = REGISTRY,
                 addr: str = "0.0.0.0") -> Any:
    """Serve /metrics on `port`; returns the server so a cleanup handler can stop it."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
