"""One reconciliation of a TrafficTrainingJob as a pure decision: observed -> Plan.

Level-triggered like Kubeflow's controllers: from the job's spec and status,
its pods and the master's last status answer, decide which children to
create or delete, the new status and the Events to post. The kopf handlers
only gather the observation and execute the Plan, so every rule here
(restarts within backoffLimit, deadlines, elastic scaling, suspend, success
and clean-up) is unit-tested without an API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trafficdl_operator import builders
from trafficdl_operator import contract as c
from trafficdl_operator import status as s
from trafficdl_operator.job_spec import JobSpec
from trafficdl_operator.settings import Settings


@dataclass(frozen=True)
class Observed:
    name: str
    namespace: str
    generation: int
    spec: JobSpec
    status: dict[str, Any]
    pods: list[dict[str, Any]]
    master: dict[str, Any] | None  # status.master_fields() of the last Status RPC, if answered
    now: datetime
    # Fingerprint of the CA in the job's TLS Secret (None: insecure job); pods built for
    # another CA (before a renewal) are replaced.
    tls_id: str | None = None


@dataclass
class Plan:
    create: list[dict[str, Any]] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    delete_job: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


def run_id(name: str, uid: str | None) -> str:
    """Stable across master restarts and suspend/resume, unique across re-creations."""
    return f"{name}-{(uid or 'nouid').replace('-', '')[:8]}"


def _restarts(status: dict[str, Any], role: str) -> int:
    return int(((status.get("replicaStatuses") or {}).get(role) or {}).get("restarts", 0))


def _cleanup(summary: s.PodSummary, policy: str) -> list[str]:
    pods = ([summary.master] if summary.master else []) + list(summary.workers.values())
    if policy == "None":
        return []
    live = ("Pending", "Running") if policy == "Running" else ("Pending", "Running", "Succeeded",
                                                               "Failed")
    return [p["metadata"]["name"] for p in pods if s.pod_phase(p) in live]


def _figures_text(st: dict[str, Any]) -> str:
    fig = st.get("figures") or {}
    parts = []
    if fig:
        parts.append(f"accuracy {fig.get('accuracy', 0):.4f}, macro F1 {fig.get('macroF1', 0):.4f}")
    if st.get("trainingSeconds"):
        parts.append(f"trained in {st['trainingSeconds']:.0f} s")
    if st.get("cost") is not None and st.get("currency"):
        parts.append(f"cost {st['cost']:.4f} {st['currency']}")
    return "; ".join(parts)


class _Builder:
    """Accumulates one reconciliation's decisions over a mutable copy of status."""

    def __init__(self, obs: Observed, settings: Settings) -> None:
        self.obs, self.settings, self.plan = obs, settings, Plan()
        self.st: dict[str, Any] = {k: v for k, v in obs.status.items()}
        self.conds: list[dict[str, Any]] = list(self.st.get("conditions") or [])
        self.summary = s.summarize(obs.name, obs.pods)
        self.restarted = False

    def cond(self, ctype: str, value: bool, reason: str, message: str) -> None:
        self.conds = s.set_condition(self.conds, ctype, value, reason, message, self.obs.now)

    def finish(self, phase: str, reason: str, message: str) -> None:
        ok = phase == c.PHASE_SUCCEEDED
        self.st["phase"] = phase
        self.st["completionTime"] = s.now_iso(self.obs.now)
        self.cond(phase, True, reason, message)
        self.plan.event("Normal" if ok else "Warning", reason, message)
        self.plan.delete_pods += _cleanup(self.summary, self.obs.spec.run_policy.clean_pod_policy)

    def total_restarts(self) -> int:
        return _restarts(self.st, c.ROLE_MASTER) + _restarts(self.st, c.ROLE_WORKER)

    def restart(self, role: str, pod: dict[str, Any], what: str) -> bool:
        """Delete a failed pod for re-creation; False (and Failed) past backoffLimit."""
        limit = self.obs.spec.run_policy.backoff_limit
        why = s.pod_failure(pod)
        if self.total_restarts() >= limit:
            self.finish(c.PHASE_FAILED, c.REASON_BACKOFF_LIMIT,
                        f"{what} failed: {why}; backoffLimit={limit} restarts already used")
            return False
        rs = dict((self.st.get("replicaStatuses") or {}).get(role) or {})
        rs["restarts"] = int(rs.get("restarts", 0)) + 1
        self.st.setdefault("replicaStatuses", {})
        self.st["replicaStatuses"] = {**self.st["replicaStatuses"], role: rs}
        self.plan.delete_pods.append(pod["metadata"]["name"])
        msg = f"{what} failed: {why}; recreating (restart {self.total_restarts()} of {limit})"
        self.cond(c.PHASE_RESTARTING, True, f"{role.capitalize()}Restarted", msg)
        self.plan.event("Warning", f"{role.capitalize()}Restarted", msg)
        self.st["phase"] = c.PHASE_RESTARTING
        self.restarted = True
        return True


def _world_size(b: _Builder) -> int:
    spec, st = b.obs.spec, b.st
    current = int(st.get("worldSize") or spec.workers)
    if spec.workers == current:
        return current
    if spec.elastic:
        # TorchElastic-style: a membership change restarts the master and the workers
        # with the new N; the master resumes from its checkpoint on the volume.
        msg = (f"workers {current} -> {spec.workers}: master and workers restart with the new "
               "world size and resume from the checkpoint")
        b.plan.event("Normal", "Rescaled", msg)
        b.cond(c.PHASE_RESTARTING, True, "Rescaled", msg)
        st["phase"] = c.PHASE_RESTARTING
        b.restarted = True
        return spec.workers
    if st.get("refusedWorkers") != spec.workers:
        b.plan.event("Warning", "ScaleRefused",
                     f"{spec.dist.algorithm} is synchronous: keeping {current} workers "
                     f"(spec.scale.workers={spec.workers} applies to the next run)")
        st["refusedWorkers"] = spec.workers
    return current


def _stale(pod: dict[str, Any], world: int, tls_id: str | None = None) -> bool:
    """A pod built for another world size (before a rescale) or for other certificates
    (renewed since, or none: a pod from before per-job mTLS): it must be replaced."""
    if s.pod_phase(pod) == "Terminating":
        return False
    pod_tls = (pod.get("metadata", {}).get("annotations") or {}).get(c.ANNOTATION_CA)
    if tls_id and pod_tls != tls_id:
        return True
    env = (pod.get("spec", {}).get("containers") or [{}])[0].get("env") or []
    value = next((e.get("value") for e in env if e.get("name") == c.ENV_WORLD_SIZE), None)
    return value is not None and value != str(world)


def _children(b: _Builder, rid: str, world: int) -> bool:
    """Create missing pods, restart failed ones, drop ranks beyond world; False if failed."""
    obs, sm = b.obs, b.summary
    stale = [p for p in [sm.master, *sm.workers.values()]
             if p is not None and _stale(p, world, obs.tls_id)]
    if stale:  # replace them all first; new pods come at the next pass
        b.plan.delete_pods += [p["metadata"]["name"] for p in stale]
        return True
    if sm.master is None:
        b.plan.create.append(builders.build_master_pod(obs.name, obs.namespace, rid, obs.spec,
                                                       world, b.settings, obs.tls_id))
    elif s.pod_phase(sm.master) == "Failed" and not b.restart(c.ROLE_MASTER, sm.master, "master"):
        return False
    for rank in range(world):
        pod = sm.workers.get(rank)
        if pod is None:
            b.plan.create.append(builders.build_worker_pod(obs.name, obs.namespace, rid, obs.spec,
                                                           rank, world, b.settings, obs.tls_id))
        elif s.pod_phase(pod) == "Failed" and not b.restart(c.ROLE_WORKER, pod, f"worker {rank}"):
            return False
    for rank, pod in sm.workers.items():
        if rank >= world and s.pod_phase(pod) != "Terminating":
            b.plan.delete_pods.append(pod["metadata"]["name"])
    return True


def _counts(b: _Builder, world: int) -> None:
    sm, st = b.summary, b.st
    prev = st.get("replicaStatuses") or {}
    master = s.count([sm.master] if sm.master else [], _restarts(st, c.ROLE_MASTER))
    workers = s.count([p for r, p in sm.workers.items() if r < world],
                      _restarts(st, c.ROLE_WORKER))
    st["replicaStatuses"] = {**prev, c.ROLE_MASTER: master.as_status(),
                             c.ROLE_WORKER: workers.as_status()}
    st["workersReady"] = f"{workers.ready}/{world}"
    if b.restarted:
        return
    all_up = sm.master is not None and s.pod_ready(sm.master) and \
        workers.ready + workers.succeeded >= world
    if all_up and st.get("phase") in (c.PHASE_CREATED, c.PHASE_RESTARTING):
        b.st["phase"] = c.PHASE_RUNNING
        b.cond(c.PHASE_RUNNING, True, "JobRunning", f"master and {world} workers are running")
        b.plan.event("Normal", "Running", f"master and {world} workers are running")


def plan(obs: Observed, settings: Settings) -> Plan:
    """Decide this reconciliation; `obs.status` must already hold phase and runId."""
    b = _Builder(obs, settings)
    spec, st = obs.spec, b.st
    st["observedGeneration"] = obs.generation
    st["security"] = c.SECURITY_INSECURE if spec.security.insecure else c.SECURITY_MTLS
    if obs.master:
        st.update(obs.master)
    phase = st.get("phase")
    if phase in c.TERMINAL_PHASES:
        b.plan.delete_pods += _cleanup(b.summary, spec.run_policy.clean_pod_policy)
        ttl, done = spec.run_policy.ttl_seconds_after_finished, s.parse_time(
            st.get("completionTime"))
        if ttl is not None and done is not None and obs.now >= done + timedelta(seconds=ttl):
            b.plan.delete_job = True
        return _done(b)
    if spec.run_policy.suspend:
        pods = ([b.summary.master] if b.summary.master else []) + list(b.summary.workers.values())
        b.plan.delete_pods += [p["metadata"]["name"] for p in pods
                               if s.pod_phase(p) != "Terminating"]
        if phase != c.PHASE_SUSPENDED:
            st["phase"] = c.PHASE_SUSPENDED
            b.cond(c.PHASE_SUSPENDED, True, "Suspended", "pods removed; state kept on the volume")
            b.plan.event("Normal", "Suspended", "pods removed; resume with suspend: false")
        return _done(b)
    if phase == c.PHASE_SUSPENDED:
        st["phase"] = c.PHASE_CREATED
        st["startTime"] = s.now_iso(obs.now)  # as for Jobs: the deadline restarts on resume
        b.cond(c.PHASE_SUSPENDED, False, "Resumed", "pods recreated; the master resumes "
               "from its checkpoint")
        b.plan.event("Normal", "Resumed", "recreating pods; the master resumes from its checkpoint")
    deadline, start = spec.run_policy.active_deadline_seconds, s.parse_time(st.get("startTime"))
    if deadline is not None and start is not None and \
            obs.now - start > timedelta(seconds=deadline):
        b.finish(c.PHASE_FAILED, c.REASON_DEADLINE,
                 f"the job ran longer than activeDeadlineSeconds={deadline}")
        return _done(b)
    master_phase = (obs.master or {}).get("masterPhase")
    mpod_phase = s.pod_phase(b.summary.master) if b.summary.master else None
    if master_phase == "Succeeded" or mpod_phase == "Succeeded":
        if phase == c.PHASE_CREATED:  # the whole run fell between two reconciliations
            b.cond(c.PHASE_RUNNING, True, "JobRunning",
                   "master and workers ran; the run finished between two reconciliations")
        b.finish(c.PHASE_SUCCEEDED, "JobSucceeded",
                 _figures_text(st) or "the master reported the run finished")
        return _done(b)
    if master_phase == "Failed":
        b.finish(c.PHASE_FAILED, c.REASON_TRAINING_FAILED,
                 st.get("masterMessage") or "the master reported the run failed")
        return _done(b)
    world = _world_size(b)
    st["worldSize"] = world
    if not _children(b, str(st.get("runId")), world):
        return _done(b)
    _counts(b, world)
    return _done(b)


def _done(b: _Builder) -> Plan:
    b.st["conditions"] = b.conds
    b.plan.status = b.st
    return b.plan
