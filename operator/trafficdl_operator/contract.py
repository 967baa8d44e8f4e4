"""The operator's contract with users, pods and other components, in one place.

Kubeflow's training operator keeps group/version, label keys, condition types
and the env vars injected into pods apart from the controller so that the
entry points, the Helm chart and the docs can rely on them; so do we. Changing
a value here is a breaking change of the v1alpha1 API.
"""

from __future__ import annotations

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

# Key of the run token inside the per-run Secret.
TOKEN_KEY: Final = "token"
# Where the data volume is mounted in every pod.
VOLUME_NAME: Final = "data"


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
