"""The operator's contract with users, pods and other components, in one place.

The names shared with the master and worker processes and with the study's
Kubernetes runner (the resource's group/version/kind, labels, TRAFFICDL_*
variables) come from trafficdl.contract and are re-exported here under the
operator's names; what only the operator and its pods agree on is defined here.
Kubeflow's training operator keeps group/version, label keys, condition types
and the env vars injected into pods apart from the controller so that the
entry points, the Helm chart and the docs can rely on them; so do we. Changing
a value here is a breaking change of the v1alpha1 API.
"""

from __future__ import annotations

import re
from typing import Final

from trafficdl.contract import (  # noqa: F401  (re-exported: the operator's names for them)
    API_VERSION,
    GROUP,
    KIND,
    LABEL_JOB,
    LABEL_RANK,
    LABEL_ROLE,
    PLURAL,
    ROLE_MASTER,
    ROLE_WORKER,
    SHORT_NAME,
    VERSION,
    Env,
)

# Phases (status.phase) and condition types (status.conditions[].type).
PHASE_CREATED: Final = "Created"
PHASE_RUNNING: Final = "Running"
PHASE_RESTARTING: Final = "Restarting"
PHASE_SUSPENDED: Final = "Suspended"
PHASE_SUCCEEDED: Final = "Succeeded"
PHASE_FAILED: Final = "Failed"
PHASES: Final = (
    PHASE_CREATED,
    PHASE_RUNNING,
    PHASE_RESTARTING,
    PHASE_SUSPENDED,
    PHASE_SUCCEEDED,
    PHASE_FAILED,
)
CONDITION_TYPES: Final = PHASES
TERMINAL_PHASES: Final = (PHASE_SUCCEEDED, PHASE_FAILED)

# Failure reasons a user can act on (status.conditions[type=Failed].reason).
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_BACKOFF_LIMIT: Final = "BackoffLimitExceeded"
REASON_DEADLINE: Final = "DeadlineExceeded"
REASON_TRAINING_FAILED: Final = "TrainingFailed"

# Env vars injected into master and worker pods (read by their __main__).
ENV_MASTER_ADDR: Final = Env.MASTER_ADDR
ENV_RANK: Final = Env.RANK
ENV_WORLD_SIZE: Final = Env.WORLD_SIZE
ENV_RUN_ID: Final = Env.RUN_ID
ENV_DATASET: Final = Env.DATASET
ENV_OUT_DIR: Final = Env.OUT_DIR
ENV_TOKEN: Final = Env.TOKEN
ENV_RUN_CONFIG: Final = Env.RUN_CONFIG
ENV_ROLE: Final = Env.ROLE
ENV_METRICS_PORT: Final = Env.METRICS_PORT
# Master only: keep answering Status this long after the run, so the operator
# reads the final figures before the pod exits.
ENV_LINGER: Final = Env.LINGER

# Ports (named, so Services and ServiceMonitors refer to them by name).
GRPC_PORT: Final = 50051
GRPC_PORT_NAME: Final = "grpc"
METRICS_PORT: Final = 9090
METRICS_PORT_NAME: Final = "metrics"

# Container commands of the two roles.
MASTER_COMMAND: Final = ("python", "-m", "trafficdl_master")
WORKER_COMMAND: Final = ("python", "-m", "trafficdl_worker")

# The pod's own IP (downward API status.podIP): master gRPC, master and worker
# metrics bind it instead of 0.0.0.0, which also works where pods share one
# network namespace (the process kubelet of scripts/k8s).
ENV_POD_IP: Final = Env.POD_IP
ENV_BIND: Final = Env.BIND
ENV_METRICS_ADDR: Final = Env.METRICS_ADDR
# Master and workers refuse a bearer token over plaintext off loopback unless told
# the network is trusted. The operator sets it only for a job with
# spec.security.insecure: true (an explicit, logged, status-visible opt-out).
ENV_ALLOW_PLAINTEXT: Final = Env.ALLOW_PLAINTEXT
# Per-job mutual TLS (the default): the files of the job's TLS Secret, read by the
# master and worker entry points (trafficdl.rpc.credentials). On the master CERT/KEY
# are its server certificate and CA the CA client certificates must chain to; on a
# worker CA verifies the master and CERT/KEY are its client certificate.
ENV_TLS_CERT: Final = Env.TLS_CERT
ENV_TLS_KEY: Final = Env.TLS_KEY
ENV_TLS_CA: Final = Env.TLS_CA
ENV_TLS_SERVER_NAME: Final = Env.TLS_SERVER_NAME
TLS_VOLUME_NAME: Final = "tls"
TLS_MOUNT_PATH: Final = "/var/run/trafficdl/tls"
# Keys of the per-job TLS Secret. A pod mounts only its role's files (volume items);
# the operator's client key never leaves the Secret; a CA key is never stored.
TLS_CA_KEY: Final = "ca.crt"
TLS_MASTER_CERT: Final = "master.crt"
TLS_MASTER_KEY: Final = "master.key"
TLS_WORKER_CERT: Final = "worker.crt"
TLS_WORKER_KEY: Final = "worker.key"
TLS_OPERATOR_CERT: Final = "operator.crt"
TLS_OPERATOR_KEY: Final = "operator.key"
# Pods carry the fingerprint of the CA they were built for: after a re-issue
# (certificates near expiry) pods of the old CA are replaced.
ANNOTATION_CA: Final = "trafficdl.io/tls-ca"
# A user's own CA (spec.security.caSecretName): a kubernetes.io/tls-style Secret.
CA_SECRET_CERT: Final = "tls.crt"
CA_SECRET_KEY: Final = "tls.key"
# status.security: how the job's master, workers and operator talk.
SECURITY_MTLS: Final = "mTLS"
SECURITY_INSECURE: Final = "insecure"
REASON_INSECURE: Final = "Insecure"

# Longest job name whose children are valid: `{job}-worker-{rank}` is a pod
# hostname (a DNS-1123 label, <= 63 chars) for ranks up to 255 (the schema's
# maximum), `{job}-master` a Service name (DNS-1035 label), `{job}` a label value.
MAX_JOB_NAME: Final = 63 - len("-worker-255")
JOB_NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# Key of the run token inside the per-run Secret.
TOKEN_KEY: Final = "token"
# Where the data volume is mounted in every pod.
VOLUME_NAME: Final = "data"


def job_name_problem(job: str) -> str | None:
    """Why `job` cannot name a run's children (None when it can)."""
    if len(job) > MAX_JOB_NAME:
        return (f"metadata.name {job!r} is {len(job)} characters; at most {MAX_JOB_NAME} leave "
                "room for the pod hostnames {name}-worker-{rank} (63 characters)")
    if not re.match(JOB_NAME_PATTERN, job):
        return (f"metadata.name {job!r} must be a DNS-1035 label (lower-case letters, digits "
                "and '-', starting with a letter, no dots): it names the master Service")
    return None


def master_name(job: str) -> str:
    return f"{job}-master"


def worker_name(job: str, rank: int) -> str:
    return f"{job}-worker-{rank}"


def service_name(job: str) -> str:
    return f"{job}-master"


def secret_name(job: str) -> str:
    return f"{job}-token"


def tls_secret_name(job: str) -> str:
    return f"{job}-tls"


def master_dns_names(job: str, namespace: str) -> list[str]:
    """Names a client may dial the master by: the Service's DNS forms (the master
    pod's hostname is the same name). The first is what workers dial."""
    svc = service_name(job)
    return [f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local",
            f"{svc}.{namespace}", svc]


def master_addr(job: str, namespace: str) -> str:
    """host:port of the master Service as pods resolve it."""
    return f"{service_name(job)}.{namespace}.svc:{GRPC_PORT}"
