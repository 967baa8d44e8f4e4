"""Pure status computation: conditions, per-role pod counts, master figures.

Kept apart from the handlers so the rules a user reads in `kubectl get ttj`
(which condition is true, what the counters mean, which figures come from
the master) are unit-tested without an API server or a master. Field names
follow the CRD's status schema (camelCase).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trafficdl_operator import contract as c

# A condition that becomes True switches these off (one "current" state at a time,
# as in Kubeflow; Created stays True for the life of the job).
_EXCLUSIVE = {
    c.PHASE_RUNNING: (c.PHASE_RESTARTING, c.PHASE_SUSPENDED),
    c.PHASE_RESTARTING: (c.PHASE_RUNNING,),
    c.PHASE_SUSPENDED: (c.PHASE_RUNNING, c.PHASE_RESTARTING),
    c.PHASE_SUCCEEDED: (c.PHASE_RUNNING, c.PHASE_RESTARTING, c.PHASE_SUSPENDED),
    c.PHASE_FAILED: (c.PHASE_RUNNING, c.PHASE_RESTARTING, c.PHASE_SUSPENDED),
}


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def set_condition(conditions: list[dict[str, Any]], ctype: str, status: bool, reason: str,
                  message: str, now: datetime) -> list[dict[str, Any]]:
    """Return conditions with `ctype` set; lastTransitionTime moves only when status flips."""
    ts = now_iso(now)
    value = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        cond = dict(cond)
        if cond.get("type") == ctype:
            found = True
            if cond.get("status") != value:
                cond["lastTransitionTime"] = ts
            cond.update(status=value, reason=reason, message=message, lastUpdateTime=ts)
        elif status and cond.get("type") in _EXCLUSIVE.get(ctype, ()) and \
                cond.get("status") == "True":
            cond.update(status="False", lastTransitionTime=ts, lastUpdateTime=ts)
        out.append(cond)
    if not found:
        out.append({"type": ctype, "status": value, "reason": reason, "message": message,
                    "lastTransitionTime": ts, "lastUpdateTime": ts})
    return out


def condition_true(conditions: list[dict[str, Any]], ctype: str) -> bool:
    return any(x.get("type") == ctype and x.get("status") == "True" for x in conditions)


def pod_phase(pod: dict[str, Any]) -> str:
    """Pending/Running/Succeeded/Failed, or Terminating once deletion has started."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    return (pod.get("status") or {}).get("phase") or "Pending"


def pod_ready(pod: dict[str, Any]) -> bool:
    if pod_phase(pod) != "Running":
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    ready = [x for x in conds if x.get("type") == "Ready"]
    # No Ready condition reported (a minimal kubelet or a mock): Running counts as ready.
    return not ready or ready[0].get("status") == "True"


def pod_failure(pod: dict[str, Any]) -> str:
    """A short, user-readable reason for a failed pod (exit code, OOMKilled, evicted...)."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term:
            why = term.get("reason") or "Error"
            return f"{why} (exit code {term.get('exitCode', '?')})"
    return status.get("reason") or status.get("message") or "pod failed"


def pod_rank(pod: dict[str, Any]) -> int | None:
    value = pod.get("metadata", {}).get("labels", {}).get(c.LABEL_RANK)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class RoleCounts:
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    ready: int = 0
    restarts: int = 0

    def as_status(self) -> dict[str, int]:
        return {"active": self.active, "succeeded": self.succeeded, "failed": self.failed,
                "restarts": self.restarts}


@dataclass
class PodSummary:
    master: dict[str, Any] | None = None
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)
    stray: list[dict[str, Any]] = field(default_factory=list)


def summarize(job: str, pods: list[dict[str, Any]]) -> PodSummary:
    """Sort a job's pods by role (filtering by label here too: some servers ignore selectors)."""
    out = PodSummary()
    for pod in pods:
        lbl = pod.get("metadata", {}).get("labels", {}) or {}
        if lbl.get(c.LABEL_JOB) != job:
            continue
        role, rank = lbl.get(c.LABEL_ROLE), pod_rank(pod)
        if role == c.ROLE_MASTER and pod["metadata"].get("name") == c.master_name(job):
            out.master = pod
        elif role == c.ROLE_WORKER and rank is not None:
            out.workers[rank] = pod
        else:
            out.stray.append(pod)
    return out


def count(pods: list[dict[str, Any]], restarts: int) -> RoleCounts:
    rc = RoleCounts(restarts=restarts)
    for pod in pods:
        phase = pod_phase(pod)
        if phase in ("Pending", "Running"):
            rc.active += 1
        elif phase == "Succeeded":
            rc.succeeded += 1
        elif phase == "Failed":
            rc.failed += 1
        rc.ready += pod_ready(pod)
    return rc


# RunPhase enum numbers of trafficdl.rpc.v1 (kept as names to stay protobuf-free here).
MASTER_PHASES = {0: "Unspecified", 1: "Waiting", 2: "Running", 3: "Evaluating",
                 4: "Succeeded", 5: "Failed"}


def master_fields(resp: Any) -> dict[str, Any]:
    """A StatusResponse (or any object with its attributes) -> the status fields it fills."""
    out: dict[str, Any] = {
        "epoch": round(float(resp.epoch), 4),
        "epochs": int(resp.epochs),
        "progress": round(float(resp.progress), 4),
        "trainingSeconds": round(float(resp.training_seconds), 3),
        "wtpeSeconds": round(float(resp.wtpe_seconds), 3),
        "nodeHours": round(float(resp.node_hours), 6),
        "cost": round(float(resp.cost), 6),
        "workersConnected": int(resp.workers_connected),
        "masterRestarts": int(resp.restarts),
        "masterPhase": MASTER_PHASES.get(int(resp.phase), "Unspecified"),
    }
    if resp.currency:
        out["currency"] = resp.currency
    if resp.message:
        out["masterMessage"] = resp.message
    fig = resp.figures
    if fig is not None and (fig.accuracy or fig.macro_f1 or fig.macro_recall):
        out["figures"] = {
            "accuracy": round(float(fig.accuracy), 6),
            "macroRecall": round(float(fig.macro_recall), 6),
            "macroPrecision": round(float(fig.macro_precision), 6),
            "macroF1": round(float(fig.macro_f1), 6),
        }
    return out
