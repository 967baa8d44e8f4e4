"""Pure builders: a parsed JobSpec -> the Secret, Service and Pod dicts of a run.

No I/O and no kopf here (as in dask-kubernetes' operator), so every child's
shape is unit-tested without an API server; the handlers adopt and create
what these return. Names are deterministic (`{job}-master`, `{job}-worker-{i}`)
so creation is idempotent: a 409 means "already done".
"""

from __future__ import annotations

import base64
import json
from typing import Any

from trafficdl.rpc.security import generate_token
from trafficdl_operator import contract as c
from trafficdl_operator.job_spec import JobSpec, PodTemplate
from trafficdl_operator.settings import Settings
from trafficdl_operator.tls import ROLE_FILES


def labels(job: str, role: str | None = None, rank: int | None = None) -> dict[str, str]:
    out = {c.LABEL_JOB: job}
    if role is not None:
        out[c.LABEL_ROLE] = role
    if rank is not None:
        out[c.LABEL_RANK] = str(rank)
    return out


def new_token() -> str:
    """A fresh per-run bearer token, as the master and workers validate it."""
    return generate_token()


def build_secret(job: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": c.secret_name(job), "labels": labels(job)},
        "type": "Opaque",
        "data": {c.TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def build_service(job: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": c.service_name(job), "labels": labels(job, c.ROLE_MASTER)},
        "spec": {
            "selector": labels(job, c.ROLE_MASTER),
            "ports": [
                {"name": c.GRPC_PORT_NAME, "port": c.GRPC_PORT, "targetPort": c.GRPC_PORT_NAME},
                {"name": c.METRICS_PORT_NAME, "port": c.METRICS_PORT,
                 "targetPort": c.METRICS_PORT_NAME},
            ],
        },
    }


def _env(job: str, namespace: str, run_id: str, spec: JobSpec, role: str, rank: int | None,
         world_size: int) -> list[dict[str, Any]]:
    plain = {
        c.ENV_ROLE: role,
        c.ENV_MASTER_ADDR: c.master_addr(job, namespace),
        c.ENV_WORLD_SIZE: str(world_size),
        c.ENV_RUN_ID: run_id,
        c.ENV_DATASET: spec.dataset_file(),
        c.ENV_OUT_DIR: spec.out_dir(job),
        c.ENV_METRICS_PORT: str(c.METRICS_PORT),
        c.ENV_RUN_CONFIG: json.dumps(spec.run_config(world_size), sort_keys=True),
    }
    plain.update(_tls_env(job, namespace, role, spec))
    if rank is not None:  # the master has no rank: ranks number the workers 0..N-1
        plain[c.ENV_RANK] = str(rank)
    # Bind the pod's own IP, not 0.0.0.0 ($(VAR) is expanded by the kubelet).
    if role == c.ROLE_MASTER:
        plain[c.ENV_BIND] = f"$({c.ENV_POD_IP}):{c.GRPC_PORT}"
    else:
        plain[c.ENV_METRICS_ADDR] = f"$({c.ENV_POD_IP})"
    env: list[dict[str, Any]] = [{"name": c.ENV_POD_IP, "valueFrom": {"fieldRef": {
        "fieldPath": "status.podIP"}}}]
    env += [{"name": k, "value": v} for k, v in plain.items()]
    env.append({"name": c.ENV_TOKEN, "valueFrom": {"secretKeyRef": {
        "name": c.secret_name(job), "key": c.TOKEN_KEY}}})
    return env


def _tls_env(job: str, namespace: str, role: str, spec: JobSpec) -> dict[str, str]:
    """mTLS files (the default), or the explicit plaintext opt-out of spec.security."""
    if spec.security.insecure:
        return {c.ENV_ALLOW_PLAINTEXT: "1"}
    ca, cert, key = (f"{c.TLS_MOUNT_PATH}/{f}" for f in ROLE_FILES[role])
    out = {c.ENV_TLS_CA: ca, c.ENV_TLS_CERT: cert, c.ENV_TLS_KEY: key}
    if role == c.ROLE_WORKER:  # the name in the master's certificate, whatever address is dialled
        out[c.ENV_TLS_SERVER_NAME] = c.master_dns_names(job, namespace)[0]
    return out


def _tls_volume(job: str, role: str) -> dict[str, Any]:
    """The job's TLS Secret, only this role's files, owner-readable only."""
    return {"name": c.TLS_VOLUME_NAME, "secret": {
        "secretName": c.tls_secret_name(job), "defaultMode": 0o440,
        "items": [{"key": k, "path": k} for k in ROLE_FILES[role]]}}


SCRATCH = "scratch"
RUN_AS = 10001


def _hardening_and_probes(role: str, tls: bool) -> dict[str, Any]:
    """Container security context and probes that mean something: the master serves
    the standard gRPC health service (readiness: accepting workers; liveness: the
    server answers), a worker's liveness is its metrics endpoint answering. The
    kubelet's gRPC probe speaks no TLS, so with mTLS the master's probes check that
    its gRPC port accepts connections (tcpSocket)."""
    out: dict[str, Any] = {
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    }
    if role == c.ROLE_MASTER:
        check = {"tcpSocket": {"port": c.GRPC_PORT}} if tls else {"grpc": {"port": c.GRPC_PORT}}
        probe = {**check, "periodSeconds": 10, "timeoutSeconds": 5}
        out["readinessProbe"] = {**probe, "initialDelaySeconds": 2}
        out["livenessProbe"] = {**probe, "initialDelaySeconds": 15, "failureThreshold": 6}
    else:
        out["livenessProbe"] = {
            "httpGet": {"path": "/metrics", "port": c.METRICS_PORT_NAME},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        }
    return out


def _resources(tpl: PodTemplate) -> dict[str, Any]:
    res = {k: dict(v) for k, v in tpl.resources.items()}
    if tpl.gpus:
        for key in ("limits", "requests"):
            res.setdefault(key, {})["nvidia.com/gpu"] = tpl.gpus
    return res


def _pod(job: str, name: str, role: str, rank: int | None, image: str, tpl: PodTemplate,
         env: list[dict[str, Any]], spec: JobSpec, tls_id: str | None) -> dict[str, Any]:
    tls = not spec.security.insecure
    ports = [{"name": c.METRICS_PORT_NAME, "containerPort": c.METRICS_PORT}]
    if role == c.ROLE_MASTER:
        ports.insert(0, {"name": c.GRPC_PORT_NAME, "containerPort": c.GRPC_PORT})
    container: dict[str, Any] = {
        "name": role,
        "image": image,
        "command": list(c.MASTER_COMMAND if role == c.ROLE_MASTER else c.WORKER_COMMAND),
        "env": env + list(tpl.env),
        "ports": ports,
        "volumeMounts": [
            {"name": c.VOLUME_NAME, "mountPath": spec.mount_path},
            # The root filesystem is read-only; HOME, TMPDIR and MPLCONFIGDIR point here.
            {"name": SCRATCH, "mountPath": "/tmp"},
        ],
        "resources": _resources(tpl),
    }
    if tpl.image_pull_policy:
        container["imagePullPolicy"] = tpl.image_pull_policy
    if tls:
        container["volumeMounts"].append({"name": c.TLS_VOLUME_NAME,
                                          "mountPath": c.TLS_MOUNT_PATH, "readOnly": True})
    container.update(_hardening_and_probes(role, tls))
    pod_spec: dict[str, Any] = {
        # The operator, not the kubelet, restarts replicas: it counts restarts
        # against backoffLimit and reports them in status.
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": c.VOLUME_NAME, **spec.volume}, {"name": SCRATCH, "emptyDir": {}}]
        + ([_tls_volume(job, role)] if tls else []),
        "hostname": name,
        # The images run as this numeric non-root user (Dockerfile.master/worker).
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if tpl.node_selector:
        pod_spec["nodeSelector"] = dict(tpl.node_selector)
    if tpl.tolerations:
        pod_spec["tolerations"] = list(tpl.tolerations)
    if tpl.service_account_name:
        pod_spec["serviceAccountName"] = tpl.service_account_name
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(c.METRICS_PORT)}
    if tls and tls_id:
        annotations[c.ANNOTATION_CA] = tls_id
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels(job, role, rank),
                     "annotations": annotations},
        "spec": pod_spec,
    }


def build_master_pod(job: str, namespace: str, run_id: str, spec: JobSpec, world_size: int,
                     settings: Settings, tls_id: str | None = None) -> dict[str, Any]:
    """`tls_id`: the fingerprint of the CA in the job's TLS Secret (tls.fingerprint)."""
    env = _env(job, namespace, run_id, spec, c.ROLE_MASTER, None, world_size)
    env.insert(-1, {"name": c.ENV_LINGER, "value": f"{settings.master_linger_seconds:g}"})
    image = spec.master.image or settings.master_image
    return _pod(job, c.master_name(job), c.ROLE_MASTER, None, image, spec.master, env, spec,
                tls_id)


def build_worker_pod(job: str, namespace: str, run_id: str, spec: JobSpec, rank: int,
                     world_size: int, settings: Settings,
                     tls_id: str | None = None) -> dict[str, Any]:
    env = _env(job, namespace, run_id, spec, c.ROLE_WORKER, rank, world_size)
    image = spec.worker.image or settings.worker_image
    return _pod(job, c.worker_name(job, rank), c.ROLE_WORKER, rank, image, spec.worker, env, spec,
                tls_id)
