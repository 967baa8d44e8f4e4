"""Operator settings, read once from the environment (flags of `trafficdl operator` set them).

Everything an administrator may tune lives here with its reason, so the Helm
chart, the docs and the tests agree on one list. Values are read when the operator
starts (the startup handler of `trafficdl_operator.main`), never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from trafficdl import __version__
from trafficdl.errors import TrafficdlError

ENV_PREFIX = "TRAFFICDL_OPERATOR_"
T = TypeVar("T")


class SettingsError(TrafficdlError):
    """A TRAFFICDL_OPERATOR_* variable that does not parse."""


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
        """The settings from TRAFFICDL_OPERATOR_* variables (defaults for those unset).
        Raises SettingsError, naming the variable, when one does not parse."""
        env = dict(os.environ if env is None else env)
        d = cls()

        def get(name: str, default: T, kind: Callable[[str], T]) -> T:
            raw = env.get(ENV_PREFIX + name)
            if raw is None:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not a valid "
                                    f"{getattr(kind, '__name__', 'value')}") from None

        return cls(
            master_image=get("MASTER_IMAGE", d.master_image, str),
            worker_image=get("WORKER_IMAGE", d.worker_image, str),
            reconcile_interval=get("RECONCILE_INTERVAL", d.reconcile_interval, float),
            status_timeout=get("STATUS_TIMEOUT", d.status_timeout, float),
            metrics_port=get("METRICS_PORT", d.metrics_port, int),
            metrics_addr=get("METRICS_ADDR", d.metrics_addr, str),
            master_addr_override=get("MASTER_ADDR_OVERRIDE", d.master_addr_override, str),
            master_linger_seconds=get("MASTER_LINGER_SECONDS", d.master_linger_seconds, float),
            pod_grace_seconds=get("POD_GRACE_SECONDS", d.pod_grace_seconds, int),
            allow_host_path=get("ALLOW_HOST_PATH", d.allow_host_path, _flag),
            cert_lifetime_hours=get("CERT_LIFETIME_HOURS", d.cert_lifetime_hours, float),
            cert_renew_before_hours=get("CERT_RENEW_BEFORE_HOURS", d.cert_renew_before_hours,
                                        float),
        )


def _flag(raw: str) -> bool:
    """A boolean setting: 1/true on (any case), anything else off."""
    return raw.strip().lower() in ("1", "true")
