"""Operator settings, read once from the environment (flags of `trafficdl operator` set them).

Everything an administrator may tune lives here with its reason, so the Helm
chart, the docs and the tests agree on one list. Values are read at import of
`trafficdl_operator.main` (kopf's timer intervals are fixed at registration).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from trafficdl import __version__

ENV_PREFIX = "TRAFFICDL_OPERATOR_"


@dataclass(frozen=True)
class Settings:
    # Default images when a job's pod template names none.
    master_image: str = f"trafficdl-master:{__version__}"
    worker_image: str = f"trafficdl-worker:{__version__}"
    # How often each job is reconciled (pods listed, master status polled), seconds.
    # 10 s keeps API and master load negligible while status stays fresh.
    reconcile_interval: float = 10.0
    # Deadline of one Status RPC; a busy master must not stall the reconcile loop.
    status_timeout: float = 3.0
    # Port of the operator's own Prometheus metrics (0 disables the endpoint).
    metrics_port: int = 8080
    # Interface of that endpoint; the chart sets the pod's own IP (downward API).
    metrics_addr: str = "0.0.0.0"
    # Dial this host:port instead of the master Service (tests, port-forwards).
    master_addr_override: str = ""
    # The master keeps answering Status this long after the run (several reconcile
    # intervals), so the final figures reach status before the pod exits.
    master_linger_seconds: float = 60.0
    # Deletion grace period given to pods the operator removes, seconds.
    pod_grace_seconds: int = 30
    # Accept data.volume.hostPath (chart value allowHostPath): off by default, a hostPath
    # volume exposes the node's filesystem to whoever may create a job.
    allow_host_path: bool = False
    # Lifetime of a job's certificates, hours: short, so a leaked key is useful for days.
    cert_lifetime_hours: float = 168.0
    # Re-issue a job's certificates (and restart its pods) once they expire within this
    # many hours, checked at every reconciliation (also on resume from suspend).
    cert_renew_before_hours: float = 24.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: object) -> str:
            return env.get(ENV_PREFIX + name, str(default))

        d = cls()
        return cls(
            master_image=get("MASTER_IMAGE", d.master_image),
            worker_image=get("WORKER_IMAGE", d.worker_image),
            reconcile_interval=float(get("RECONCILE_INTERVAL", d.reconcile_interval)),
            status_timeout=float(get("STATUS_TIMEOUT", d.status_timeout)),
            metrics_port=int(get("METRICS_PORT", d.metrics_port)),
            metrics_addr=get("METRICS_ADDR", d.metrics_addr),
            master_addr_override=get("MASTER_ADDR_OVERRIDE", d.master_addr_override),
            master_linger_seconds=float(get("MASTER_LINGER_SECONDS", d.master_linger_seconds)),
            pod_grace_seconds=int(get("POD_GRACE_SECONDS", d.pod_grace_seconds)),
            allow_host_path=get("ALLOW_HOST_PATH", "false").strip().lower() in ("1", "true"),
            cert_lifetime_hours=float(get("CERT_LIFETIME_HOURS", d.cert_lifetime_hours)),
            cert_renew_before_hours=float(get("CERT_RENEW_BEFORE_HOURS",
                                              d.cert_renew_before_hours)),
        )
