"""The operator's contract with users, pods and other components, in one place.

Kubeflow's training operator keeps group/version, label keys, condition types
and the env vars injected into pods apart from the controller so that the
entry points, the Helm chart and the docs can rely on them; so do we. Changing
a value here is a breaking change of the v1alpha1 API.
"""

from __future__ import annotations

import re
from typing import Final

GROUP: Final = "trafficdl.io"
VERSION: Final = "v1alpha1"
PLURAL: Final = "traffictrainingjobs"
KIND: Final = "TrafficTrainingJob"
SHORT_NAME: Final = "ttj"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Labels every child carries; selectors and `kubectl get -l` use them.
LABEL_JOB: Final = "trafficdl.io/job-name"
LABEL_ROLE: Final = "trafficdl.io/role"
LABEL_RANK: Final = "trafficdl.io/rank"
ROLE_MASTER: Final = "master"
ROLE_WORKER: Final = "worker"

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
ENV_MASTER_ADDR: Final = "TRAFFICDL_MASTER_ADDR"
ENV_RANK: Final = "TRAFFICDL_RANK"
ENV_WORLD_SIZE: Final = "TRAFFICDL_WORLD_SIZE"
ENV_RUN_ID: Final = "TRAFFICDL_RUN_ID"
ENV_DATASET: Final = "TRAFFICDL_DATASET"
ENV_OUT_DIR: Final = "TRAFFICDL_OUT_DIR"
ENV_TOKEN: Final = "TRAFFICDL_TOKEN"
ENV_RUN_CONFIG: Final = "TRAFFICDL_RUN_CONFIG"
ENV_ROLE: Final = "TRAFFICDL_ROLE"
ENV_METRICS_PORT: Final = "TRAFFICDL_METRICS_PORT"
# Master only: keep answering Status this long after the run, so the operator
# reads the final figures before the pod exits.
ENV_LINGER: Final = "TRAFFICDL_LINGER_SECONDS"

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
ENV_POD_IP: Final = "TRAFFICDL_POD_IP"
ENV_BIND: Final = "TRAFFICDL_BIND"
ENV_METRICS_ADDR: Final = "TRAFFICDL_METRICS_ADDR"
# Master and workers refuse a bearer token over plaintext off loopback unless told
# the network is trusted. Until the operator issues per-job certificates (mTLS),
# it says so explicitly for every job: the token crosses the pod network in clear
# (docs/faults.md, threat table). The local test cluster's pods are on 127.77.x.y.
ENV_ALLOW_PLAINTEXT: Final = "TRAFFICDL_ALLOW_PLAINTEXT"

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


def master_addr(job: str, namespace: str) -> str:
    """host:port of the master Service as pods resolve it."""
    return f"{service_name(job)}.{namespace}.svc:{GRPC_PORT}"
