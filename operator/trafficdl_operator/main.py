"""kopf handlers of the TrafficTrainingJob operator: thin, each with a stable id.

`create` validates the spec (an invalid one ends as a Failed condition, never
a retry loop), makes the per-run token Secret and the master Service, and
runs the first reconciliation. Each reconciliation first makes sure the job's
TLS Secret holds certificates valid beyond the renewal window (issuing or
re-issuing them, trafficdl_operator.tls), unless the job opted out with
spec.security.insecure, which is logged, posted as an Event and shown in
status.security. `reconcile` is a timer that, every
reconcileInterval, lists the job's pods, asks the master's Status RPC and
executes the pure plan of trafficdl_operator.reconcile: create/recreate/
delete pods, post Events, write status, delete the job after its TTL.
Level-triggered, so spec changes (workers, suspend) take effect at the next
tick and an operator restart loses nothing. Run with `trafficdl operator` or
`kopf run -m trafficdl_operator.main`.

Settings (trafficdl_operator.settings) are read from the environment by the
startup handler `configure` and kept in kopf's memo, never at import: importing
this module registers handlers and reads nothing.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from trafficdl_operator import builders, metrics, tls
from trafficdl_operator import contract as c
from trafficdl_operator import reconcile as rec
from trafficdl_operator import status as s
from trafficdl_operator.job_spec import JobSpec, SpecError, parse
from trafficdl_operator.kube import CreateRejected, Kube, load_config
from trafficdl_operator.masterclient import fetch_status
from trafficdl_operator.settings import Settings, SettingsError

log = logging.getLogger(__name__)
# The interval the `reconcile` timer was registered with, once a startup has registered it.
_timer_interval: float | None = None


@contextlib.contextmanager
def _measured(handler: str) -> Iterator[None]:
    metrics.RECONCILIATIONS.labels(handler=handler).inc()
    t0 = time.perf_counter()
    try:
        yield
    except Exception:
        metrics.ERRORS.labels(handler=handler).inc()
        raise
    finally:
        metrics.DURATION.labels(handler=handler).observe(time.perf_counter() - t0)


@kopf.on.startup(id="configure")
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    try:
        memo.settings = Settings.from_env()
    except SettingsError as exc:  # stop the operator: retrying cannot fix the environment
        raise kopf.PermanentError(str(exc)) from exc
    # Keep kopf's bookkeeping under our own prefix, visible as trafficdl.io annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="trafficdl.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="trafficdl.io")
    # Reconnect watches every 5 minutes: a silently dropped stream must not stall us.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Our Events are explicit (kopf.event); kopf's own log-to-Event posting only for problems.
    settings.posting.level = logging.WARNING
    # The resource is fixed and the namespaces come from the command line: no scanning of
    # CRDs/namespaces, which the chart's namespaced Role does not allow (kopf would retry
    # the forbidden lists for a minute before starting).
    settings.scanning.disabled = True
    # Sync handlers run in this pool; each reconciliation is short, a few jobs share it.
    settings.execution.max_workers = 8
    load_config()
    memo.kube = Kube()
    memo.tls_files = tls.ClientFiles()
    _register_reconcile(memo.settings.reconcile_interval)
    if memo.settings.metrics_port:
        memo.metrics_server = metrics.start_server(memo.settings.metrics_port,
                                                   addr=memo.settings.metrics_addr)


def _register_reconcile(interval: float) -> None:
    """Register the `reconcile` timer with the configured interval.

    kopf fixes a timer's interval when the timer is registered, and the interval is a
    setting read at startup: so the first startup of the process registers it (before any
    job is watched: kopf starts watching only once the startup handlers have returned).
    An operator started again in the same process (tests) keeps that interval; a
    different one is logged, not silently dropped.
    """
    global _timer_interval
    if _timer_interval is None:
        kopf.timer(c.GROUP, c.VERSION, c.PLURAL, id="reconcile", interval=interval)(reconcile)
        _timer_interval = interval
    elif interval != _timer_interval:
        log.warning("reconcile interval %g s ignored: this process registered the timer "
                    "with %g s (kopf fixes a timer's interval at registration)",
                    interval, _timer_interval)


@kopf.on.cleanup(id="cleanup")
async def cleanup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # async: it must not run in the executor it shuts down. Idle pool threads exit now,
    # so an embedded operator (tests, `kopf.run` in a thread) leaves nothing behind.
    settings.execution.executor.shutdown(wait=False)
    files = memo.get("tls_files")
    if files is not None:
        files.close()
    server = memo.get("metrics_server")
    if server is not None:
        server.shutdown()
        server.server_close()


def _fail_invalid(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, status: dict[str, Any],
                  uid: str, message: str, generation: int) -> None:
    now = datetime.now(UTC)
    conds = s.set_condition(list(status.get("conditions") or []), c.PHASE_FAILED, True,
                            c.REASON_INVALID_SPEC, message, now)
    failed = dict(phase=c.PHASE_FAILED, conditions=conds, completionTime=s.now_iso(now),
                  observedGeneration=generation)
    patch.status.update(failed)
    memo.status = {**status, **failed}
    kopf.event(body, type="Warning", reason=c.REASON_INVALID_SPEC, message=message)
    metrics.set_phase(uid, c.PHASE_FAILED)


def _token(kube: Kube, memo: kopf.Memo, namespace: str, name: str) -> str | None:
    if not memo.get("token"):
        memo.token = kube.read_token(namespace, name)
    return memo.get("token")


def _ensure_tls(body: kopf.Body, job: JobSpec, memo: kopf.Memo, namespace: str,
                name: str) -> dict[str, bytes] | None:
    """The job's TLS Secret data, issued or renewed first when needed; None if insecure.
    Raises tls.TlsError when it cannot be made (the job then fails as InvalidSpec)."""
    if job.security.insecure:
        return None
    kube: Kube = memo.kube
    now, renew = datetime.now(UTC), timedelta(hours=memo.settings.cert_renew_before_hours)
    data = memo.get("tls")
    if tls.needs_issue(data, now, renew):
        data = kube.read_secret(namespace, c.tls_secret_name(name))
    if not tls.needs_issue(data, now, renew):
        memo.tls = data
        return data
    ca_name = job.security.ca_secret_name
    authority = tls.load_authority(kube.read_secret(namespace, ca_name), ca_name) \
        if ca_name else None
    lifetime = timedelta(hours=memo.settings.cert_lifetime_hours)
    fresh = tls.issue(name, namespace, lifetime, authority)
    until = f"{tls.expires(fresh):%Y-%m-%d %H:%M} UTC"
    if tls.needs_issue(fresh, now, renew):
        raise tls.TlsError(f"the job's certificates would expire at {until}, within the "
                           f"{memo.settings.cert_renew_before_hours:g} h renewal window: the CA "
                           "expires too soon")
    secret = tls.build_secret(name, fresh)
    kopf.adopt(secret, owner=body)
    if data is None:
        kube.create(namespace, secret)  # a 409 (a concurrent create) is overwritten below
        if kube.read_secret(namespace, secret["metadata"]["name"]) != fresh:
            kube.replace_secret(namespace, secret)
    else:
        kube.replace_secret(namespace, secret)
        kopf.event(body, type="Normal", reason="CertificatesRenewed",
                   message=f"certificates re-issued (valid until {until}); pods are "
                   "restarted with them")
    memo.tls = fresh
    return fresh


def _poll_master(kube: Kube, memo: kopf.Memo, namespace: str, name: str,
                 status: dict[str, Any], pods: list[dict[str, Any]],
                 tls_data: dict[str, bytes] | None) -> dict[str, Any] | None:
    master = s.summarize(name, pods).master
    if master is None or s.pod_phase(master) != "Running" or status.get("phase") in \
            c.TERMINAL_PHASES:
        return None
    token = _token(kube, memo, namespace, name)
    if not token:
        return None
    addr = memo.settings.master_addr_override or c.master_addr(name, namespace)
    client = memo.tls_files.client_tls(namespace, name, tls_data) if tls_data else None
    fields = fetch_status(addr, str(status.get("runId")), token, memo.settings.status_timeout,
                          client)
    metrics.STATUS_POLLS.labels(outcome="ok" if fields else "unavailable").inc()
    return fields


def _reconcile(body: kopf.Body, job: JobSpec, status: dict[str, Any], memo: kopf.Memo,
               patch: kopf.Patch) -> None:
    kube: Kube = memo.kube
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    with memo.setdefault("lock", threading.Lock()):  # timer vs. create on one job
        # This process is the only writer of status: what it wrote last wins over a body
        # that may not reflect that patch yet (a stale read would undo restart counts).
        status = {**status, **copy.deepcopy(memo.get("status") or {})}
        generation = int(meta.get("generation") or 1)
        try:
            tls_data = None if status.get("phase") in c.TERMINAL_PHASES else \
                _ensure_tls(body, job, memo, namespace, name)
        except (tls.TlsError, CreateRejected) as exc:
            _fail_invalid(body, patch, memo, status, str(meta.get("uid")), str(exc), generation)
            return
        pods = kube.list_pods(namespace, name)
        obs = rec.Observed(name=name, namespace=namespace, generation=generation, spec=job,
                           status=status, pods=pods,
                           master=_poll_master(kube, memo, namespace, name, status, pods,
                                               tls_data),
                           now=datetime.now(UTC),
                           tls_id=tls.fingerprint(tls_data) if tls_data else None)
        plan = rec.plan(obs, memo.settings)
        kopf.adopt(plan.create, owner=body)
        try:
            for child in plan.create:
                kube.create(namespace, child)
        except CreateRejected as exc:  # permanent: Failed with the server's message
            _fail_invalid(body, patch, memo, {**status, **plan.status}, str(meta.get("uid")),
                          str(exc), obs.generation)
            return
        for pod in dict.fromkeys(plan.delete_pods):
            kube.delete_pod(namespace, pod, memo.settings.pod_grace_seconds)
        for kind, reason, message in plan.events:
            kopf.event(body, type=kind, reason=reason, message=message)
            if reason in ("MasterRestarted", "WorkerRestarted"):
                metrics.RESTARTS.labels(role=reason.removesuffix("Restarted").lower()).inc()
        patch.status.update(plan.status)
        memo.status = copy.deepcopy(plan.status)
        # A finished job with its pods cleaned up and no TTL needs no more API calls.
        memo.idle = plan.status.get("phase") in c.TERMINAL_PHASES and not plan.delete_pods \
            and job.run_policy.ttl_seconds_after_finished is None
        metrics.set_phase(str(meta.get("uid")), plan.status.get("phase"))
        if plan.delete_job:
            kube.delete_job(namespace, name)


@kopf.on.create(c.GROUP, c.VERSION, c.PLURAL, id="create")
def create(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, name: str, namespace: str,
           uid: str, meta: kopf.Meta, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with _measured("create"):
        current = copy.deepcopy(dict(status))
        if current.get("phase"):
            return  # already set up (e.g. the operator restarted): the timer carries on
        generation = int(meta.get("generation") or 1)
        try:
            problem = c.job_name_problem(name)  # where the schema's CEL rule is not enforced
            if problem:
                raise SpecError(problem)
            job = parse(copy.deepcopy(dict(spec)), allow_host_path=memo.settings.allow_host_path)
        except SpecError as exc:
            _fail_invalid(body, patch, memo, current, uid, str(exc), generation)
            return
        if job.security.insecure:
            log.warning("job %s/%s: spec.security.insecure is true: master, workers and the "
                        "operator talk in plaintext and the run token crosses the pod network "
                        "in clear", namespace, name)
            kopf.event(body, type="Warning", reason=c.REASON_INSECURE,
                       message="spec.security.insecure: no TLS, the run token travels in clear")
        kube: Kube = memo.kube
        token = builders.new_token()
        children = [builders.build_secret(name, token), builders.build_service(name)]
        kopf.adopt(children, owner=body)
        try:
            if not kube.create(namespace, children[0]):
                token = kube.read_token(namespace, name) or token  # from an earlier attempt
            kube.create(namespace, children[1])
        except CreateRejected as exc:
            _fail_invalid(body, patch, memo, current, uid, str(exc), generation)
            return
        memo.token = token
        now = datetime.now(UTC)
        current.update(
            phase=c.PHASE_CREATED, runId=rec.run_id(name, uid), worldSize=job.workers,
            security=c.SECURITY_INSECURE if job.security.insecure else c.SECURITY_MTLS,
            startTime=s.now_iso(now), masterEndpoint=c.master_addr(name, namespace),
            currency=job.dist.currency,
            selector=f"{c.LABEL_JOB}={name},{c.LABEL_ROLE}={c.ROLE_WORKER}",  # scale subresource
            conditions=s.set_condition([], c.PHASE_CREATED, True, "JobCreated",
                                       "secret, service and pods created", now),
        )
        kopf.event(body, type="Normal", reason="Created",
                   message=f"master and {job.workers} workers for {job.train.model}/"
                   f"{job.dist.algorithm}")
        _reconcile(body, job, current, memo, patch)


def reconcile(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, uid: str, meta: kopf.Meta,
              patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    current = {**copy.deepcopy(dict(status)), **copy.deepcopy(memo.get("status") or {})}
    if not current.get("phase") or memo.get("idle"):
        return  # `create` has not finished yet, or the job is finished and cleaned up
    with _measured("reconcile"):
        try:
            job = parse(copy.deepcopy(dict(spec)), allow_host_path=memo.settings.allow_host_path)
        except SpecError as exc:
            if current.get("phase") not in c.TERMINAL_PHASES:
                _fail_invalid(body, patch, memo, current, uid, str(exc),
                              int(meta.get("generation") or 1))
            return
        _reconcile(body, job, current, memo, patch)


@kopf.on.delete(c.GROUP, c.VERSION, c.PLURAL, id="forget", optional=True)
def forget(uid: str, name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    # optional: this handler alone would need no finalizer, but the `reconcile` timer
    # makes kopf put its finalizer on every job (kopf stops the timer before the job
    # goes). So a delete completes only while an operator runs; with none running the
    # job waits, Terminating, until one starts (docs/operator.md: how to release it).
    # Children go with the job through their ownerReferences (garbage collector).
    metrics.set_phase(uid, None)
    files = memo.get("tls_files")
    if files is not None:
        files.forget(namespace, name)
