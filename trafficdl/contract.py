"""The contract between trafficdl's processes, in one torch-free module.

A master or worker process is configured the same way whoever starts it: the
local launcher (trafficdl.distributed.launch), the operator's pods
(trafficdl_operator.builders), a benchmark or a user's shell all set the
TRAFFICDL_* variables named here, and the entry points read them with `env()`.
The custom resource's identity (group, version, kind, plural, labels) and the
table between its spec keys and the TrainConfig/DistConfig fields live here
too, so the operator (CR -> config) and the study's Kubernetes runner
(config -> CR) read one table in opposite directions. Changing a name here is
a breaking change of the pod contract and of the v1alpha1 API.

Nothing here imports torch, numpy or kubernetes (import-linter checks it): the
operator image imports this module.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, Final

# --- the custom resource ---------------------------------------------------------
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

# spec.train key -> TrainConfig field; spec.distribution key -> DistConfig field.
TRAIN_FIELDS: Final[dict[str, str]] = {
    "model": "model",
    "epochs": "epochs",
    "batchSize": "batch_size",
    "optimizer": "optimizer",
    "lr": "lr",
    "weightDecay": "weight_decay",
    "dropout": "dropout",
    "seed": "seed",
    "testFraction": "test_fraction",
    "folds": "folds",
    "fold": "fold",
    "valFraction": "val_fraction",
    "patience": "patience",
    "averageEpochs": "average_epochs",
    "classWeighting": "class_weighting",
    "device": "device",
}
DIST_FIELDS: Final[dict[str, str]] = {
    "algorithm": "algorithm",
    "window": "window",
    "windowEpochs": "window_epochs",
    "rho": "rho",
    "elasticLr": "elastic_lr",
    "wireDtype": "wire_dtype",
    "syncTimeoutSeconds": "sync_timeout",
    "overlap": "overlap",
}


def crd_keys(fields: dict[str, str]) -> dict[str, str]:
    """The same table the other way: config field -> spec key."""
    return {py: k8s for k8s, py in fields.items()}


# --- the process contract: TRAFFICDL_* variables ----------------------------------
class Env:
    """Names of the variables master and worker processes read (flags win over them)."""

    ROLE: Final = "TRAFFICDL_ROLE"  # master | worker (informational; set on pods)
    MASTER_ADDR: Final = "TRAFFICDL_MASTER_ADDR"  # worker: host:port of the master
    RANK: Final = "TRAFFICDL_RANK"
    WORLD_SIZE: Final = "TRAFFICDL_WORLD_SIZE"
    RUN_ID: Final = "TRAFFICDL_RUN_ID"
    DATASET: Final = "TRAFFICDL_DATASET"
    OUT_DIR: Final = "TRAFFICDL_OUT_DIR"
    RUN_CONFIG: Final = "TRAFFICDL_RUN_CONFIG"  # JSON file or inline JSON
    THREADS: Final = "TRAFFICDL_THREADS"
    CONNECT_TIMEOUT: Final = "TRAFFICDL_CONNECT_TIMEOUT"
    METRICS_PORT: Final = "TRAFFICDL_METRICS_PORT"
    METRICS_ADDR: Final = "TRAFFICDL_METRICS_ADDR"
    # Master only: keep answering Status this long after the run, so the operator
    # (or a last Prometheus scrape) reads the final figures before the process exits.
    LINGER: Final = "TRAFFICDL_LINGER_SECONDS"
    BIND: Final = "TRAFFICDL_BIND"
    POD_IP: Final = "TRAFFICDL_POD_IP"  # downward API status.podIP
    RESUME: Final = "TRAFFICDL_RESUME"
    T1_SECONDS: Final = "TRAFFICDL_T1_SECONDS"
    READY_FILE: Final = "TRAFFICDL_READY_FILE"
    CHECKPOINT_DIR: Final = "TRAFFICDL_CHECKPOINT_DIR"
    INSECURE: Final = "TRAFFICDL_INSECURE"  # master: serve without a token
    # Master: no same-node data plane (trafficdl/rpc/dataplane.py); every tensor over gRPC.
    NO_DATA_PLANE: Final = "TRAFFICDL_NO_DATA_PLANE"
    # Credentials (trafficdl.rpc.credentials).
    TOKEN: Final = "TRAFFICDL_TOKEN"
    TOKEN_FILE: Final = "TRAFFICDL_TOKEN_FILE"
    ALLOW_PLAINTEXT: Final = "TRAFFICDL_ALLOW_PLAINTEXT"
    TLS_CERT: Final = "TRAFFICDL_TLS_CERT"
    TLS_KEY: Final = "TRAFFICDL_TLS_KEY"
    TLS_CA: Final = "TRAFFICDL_TLS_CA"
    TLS_SERVER_NAME: Final = "TRAFFICDL_TLS_SERVER_NAME"


def env(name: str, default: str = "") -> str:
    """The value of variable `name` (one of Env's), `default` when unset."""
    return os.environ.get(name, default)


def env_flag(name: str) -> bool:
    """A yes/no variable: only "1" means yes."""
    return os.environ.get(name, "") == "1"


def env_option(
    parser: argparse.ArgumentParser,
    flag: str,
    name: str,
    help: str,
    *,
    kind: Callable[[str], Any] = str,
    default: str = "",
) -> None:
    """A process flag whose default is variable `name`, else `default` when it is unset or
    empty (flags win over the environment); its help ends with the variable's name, so
    `--help` documents the pod contract. A `kind` of bool makes a switch whose variable
    means yes only when "1"."""
    if kind is bool:
        parser.add_argument(flag, action="store_true", default=env_flag(name),
                            help=f"{help} [{name}=1]")  # fmt: skip
        return
    parser.add_argument(flag, type=kind, default=kind(env(name) or default),
                        help=f"{help} [{name}]")  # fmt: skip
