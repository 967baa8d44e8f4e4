"""TrafficTrainingJob spec -> a validated, defaulted JobSpec.

The CRD's schema rejects wrong types and out-of-range values at admission,
but (a) not every API server applies its defaults (mock servers, old
clusters) and (b) some rules span fields (the commit window must fit the
epochs, min <= workers <= max). So the operator re-applies the defaults and
checks those rules here; anything wrong raises SpecError, which the handlers
turn into a Failed condition with this message (never a crash loop).

The training/distribution fields map one-to-one onto trafficdl.config's
TrainConfig and DistConfig, which run their own validation: a ConfigError is
re-raised as a SpecError with the same message. A unit test checks the CRD's
defaults against the ones used here.

Inputs that reach the node are hardened here as well as in the schema (an API
server without the CRD's schema, or an old CRD, must not open a hole):
datasetPath/outputPath are relative and free of `..`, the data volume is one
of an allow-list of sources (hostPath only where the administrator allowed
it), and a user's extra env cannot override the contract's variables (the
token, the TLS files, the plaintext opt-out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from trafficdl.config import CONVERGING, ConfigError, DistConfig, TrainConfig, to_dict
from trafficdl.contract import DIST_FIELDS, TRAIN_FIELDS, Env
from trafficdl.cost import NODE_TYPES
from trafficdl_operator import contract as c

CLEAN_POD_POLICIES = ("All", "Running", "None")
DEFAULT_WORKERS = 2
DEFAULT_BACKOFF_LIMIT = 3
DEFAULT_CLEAN_POD_POLICY = "Running"
DEFAULT_MOUNT_PATH = "/data"
DEFAULT_OUTPUT_PATH = "runs"
# Volume sources a job may mount (keys of spec.data.volume); hostPath only when the
# operator's allowHostPath setting is on.
VOLUME_SOURCES = ("persistentVolumeClaim", "configMap", "secret", "emptyDir", "csi", "ephemeral")
HOST_PATH = "hostPath"
# The contract's variables: a user's extra env must not replace them (nor set the
# ones the operator leaves unset, e.g. TRAFFICDL_INSECURE, a master without a token).
RESERVED_ENV = frozenset(v for k, v in vars(c).items() if k.startswith("ENV_")) | frozenset(
    v for k, v in vars(Env).items() if not k.startswith("_") and isinstance(v, str))
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CA_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class SpecError(ValueError):
    """The spec cannot be run; the message tells the user what to change."""


@dataclass(frozen=True)
class PodTemplate:
    """The knobs of a master or worker pod a user may set."""

    image: str | None = None
    image_pull_policy: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    gpus: int = 0
    env: list[dict[str, Any]] = field(default_factory=list)
    service_account_name: str | None = None


@dataclass(frozen=True)
class RunPolicy:
    active_deadline_seconds: int | None = None
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    ttl_seconds_after_finished: int | None = None
    clean_pod_policy: str = DEFAULT_CLEAN_POD_POLICY
    suspend: bool = False


@dataclass(frozen=True)
class Security:
    """spec.security: per-job mTLS (default), with the operator's or the user's CA."""

    insecure: bool = False  # explicit opt-out: plaintext, the token in clear
    ca_secret_name: str | None = None  # a Secret with tls.crt/tls.key of the user's CA


@dataclass(frozen=True)
class JobSpec:
    train: TrainConfig
    dist: DistConfig
    volume: dict[str, Any]
    mount_path: str
    dataset_path: str
    output_path: str
    workers: int
    min_workers: int
    max_workers: int
    master: PodTemplate
    worker: PodTemplate
    run_policy: RunPolicy
    security: Security = field(default_factory=Security)

    @property
    def elastic(self) -> bool:
        """Workers may be added/removed mid-run (asynchronous algorithms only)."""
        return not self.dist.synchronous

    def dataset_file(self) -> str:
        return _join(self.mount_path, self.dataset_path)

    def out_dir(self, job: str) -> str:
        return _join(self.mount_path, self.output_path, job)

    def run_config(self, world_size: int) -> dict[str, Any]:
        """The TRAFFICDL_RUN_CONFIG payload for a run with this many workers."""
        dist = replace(self.dist, workers=world_size)
        return {"train": to_dict(self.train), "dist": to_dict(dist)}


def _join(*parts: str) -> str:
    head, *rest = parts
    out = head.rstrip("/") or "/"
    for part in rest:
        if part.startswith("/"):
            out = part.rstrip("/") or "/"
        elif part:
            out = f"{out.rstrip('/')}/{part.strip('/')}"
    return out


def _section(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise SpecError(f"spec.{key} must be an object")
    return value


def _mapped(section: dict[str, Any], mapping: dict[str, str], where: str) -> dict[str, Any]:
    unknown = sorted(set(section) - set(mapping))
    if unknown:
        raise SpecError(f"unknown field(s) in spec.{where}: {', '.join(unknown)}")
    return {mapping[k]: v for k, v in section.items() if v is not None}


def _template(raw: dict[str, Any]) -> PodTemplate:
    gpus = int(raw.get("gpus") or 0)
    if gpus < 0:
        raise SpecError("gpus must be >= 0")
    return PodTemplate(
        image=raw.get("image"),
        image_pull_policy=raw.get("imagePullPolicy"),
        resources=dict(raw.get("resources") or {}),
        node_selector=dict(raw.get("nodeSelector") or {}),
        tolerations=list(raw.get("tolerations") or []),
        gpus=gpus,
        env=list(raw.get("env") or []),
        service_account_name=raw.get("serviceAccountName"),
    )


def _relative(value: Any, where: str) -> str:
    """A path below the mount: relative, no `..` (it would escape the volume)."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"spec.data.{where} must be a non-empty relative path")
    path = PurePosixPath(value)
    if path.is_absolute():
        raise SpecError(f"spec.data.{where} {value!r} must be relative to mountPath, "
                        "not absolute")
    if ".." in path.parts:
        raise SpecError(f"spec.data.{where} {value!r} must not contain '..'")
    return value


def _volume(volume: Any, allow_host_path: bool) -> dict[str, Any]:
    if not isinstance(volume, dict) or not volume:
        raise SpecError("spec.data.volume is required (a pod volume source, e.g. "
                        "persistentVolumeClaim: {claimName: ...})")
    allowed = VOLUME_SOURCES + ((HOST_PATH,) if allow_host_path else ())
    refused = sorted(set(volume) - set(allowed))
    if refused:
        why = " (the operator's allowHostPath setting is off)" if HOST_PATH in refused else ""
        raise SpecError(f"spec.data.volume.{refused[0]} is not allowed{why}; use one of "
                        f"{', '.join(allowed)}")
    if len(volume) != 1:
        raise SpecError(f"spec.data.volume must have exactly one source, got "
                        f"{', '.join(sorted(volume))}")
    return dict(volume)


def _mount_path(value: Any) -> str:
    path = value or DEFAULT_MOUNT_PATH
    if not isinstance(path, str) or not path.startswith("/") or ".." in PurePosixPath(path).parts:
        raise SpecError(f"spec.data.mountPath {path!r} must be absolute, without '..'")
    for taken in ("/tmp", c.TLS_MOUNT_PATH):
        if PurePosixPath(path) == PurePosixPath(taken) or \
                PurePosixPath(taken) in PurePosixPath(path).parents:
            raise SpecError(f"spec.data.mountPath {path!r} overlaps {taken}, which the "
                            "operator mounts")
    return path


def _security(raw: dict[str, Any]) -> Security:
    unknown = sorted(set(raw) - {"insecure", "caSecretName"})
    if unknown:
        raise SpecError(f"unknown field(s) in spec.security: {', '.join(unknown)}")
    insecure, ca = raw.get("insecure", False), raw.get("caSecretName") or None
    if not isinstance(insecure, bool):
        raise SpecError("spec.security.insecure must be true or false")
    if ca is not None and (not isinstance(ca, str) or not _CA_SECRET_NAME.match(ca)):
        raise SpecError(f"spec.security.caSecretName {ca!r} is not a Secret name")
    if insecure and ca:
        raise SpecError("spec.security: insecure: true and caSecretName exclude each other")
    return Security(insecure=insecure, ca_secret_name=ca)


def _check_env(env: list[Any], role: str) -> None:
    for item in env:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise SpecError(f"spec.{role}.env: {name!r} is not a valid variable name")
        if name in RESERVED_ENV:
            raise SpecError(f"spec.{role}.env: {name} is set by the operator and cannot be "
                            "overridden")


def _pricing(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node_type = raw.get("nodeType")
    if node_type is not None:
        if node_type not in NODE_TYPES:
            raise SpecError(
                f"unknown pricing.nodeType {node_type!r}; choose from {', '.join(NODE_TYPES)} "
                "or set workerHourlyPrice/masterHourlyPrice"
            )
        node = NODE_TYPES[node_type]
        out.update(node_type=node_type, worker_price=node.hourly_price,
                   master_price=node.hourly_price, currency=node.currency)
    for key, name in (("workerHourlyPrice", "worker_price"), ("masterHourlyPrice", "master_price"),
                      ("currency", "currency")):
        if raw.get(key) is not None:
            out[name] = raw[key]
    return out


def parse(spec: dict[str, Any], *, allow_host_path: bool = False) -> JobSpec:
    """Default and validate a TrafficTrainingJob spec; raise SpecError with a clear message.

    `allow_host_path`: the operator's setting (chart value allowHostPath)."""
    if not isinstance(spec, dict) or not spec:
        raise SpecError("spec is missing")
    data = _section(spec, "data")
    scale = _section(spec, "scale")
    policy = _section(spec, "runPolicy")
    volume = _volume(data.get("volume"), allow_host_path)
    if not data.get("datasetPath"):
        raise SpecError("spec.data.datasetPath is required (the dataset on the volume, "
                        "relative to mountPath)")
    dataset_path = _relative(data["datasetPath"], "datasetPath")
    output_path = _relative(data.get("outputPath") or DEFAULT_OUTPUT_PATH, "outputPath")
    mount_path = _mount_path(data.get("mountPath"))
    security = _security(_section(spec, "security"))
    workers = int(scale.get("workers", DEFAULT_WORKERS))
    min_workers = int(scale.get("minWorkers") or 1)
    max_workers = int(scale.get("maxWorkers") or max(workers, min_workers))
    if workers < 1:
        raise SpecError("spec.scale.workers must be >= 1")
    if not min_workers <= workers <= max_workers:
        raise SpecError(f"need minWorkers <= workers <= maxWorkers, got "
                        f"{min_workers} <= {workers} <= {max_workers}")
    try:
        # Unset fields as the CRD defaults them: a run that converges (config.CONVERGING).
        train = TrainConfig(**{**CONVERGING,
                               **_mapped(_section(spec, "train"), TRAIN_FIELDS, "train")})
        dist_kwargs = _mapped(_section(spec, "distribution"), DIST_FIELDS, "distribution")
        dist_kwargs.update(_pricing(_section(spec, "pricing")))
        threads = int(scale.get("threadsPerWorker") or 0)
        dist = DistConfig(workers=workers, threads_per_worker=threads, **dist_kwargs)
    except ConfigError as exc:
        raise SpecError(str(exc)) from exc
    except TypeError as exc:  # a field of the wrong type that the schema did not catch
        raise SpecError(f"invalid value in spec: {exc}") from exc
    if dist.window == 0 and dist.window_epochs > train.epochs:
        raise SpecError(f"distribution.windowEpochs ({dist.window_epochs}) must not exceed "
                        f"train.epochs ({train.epochs}): no worker would ever commit")
    if dist.synchronous and (scale.get("minWorkers") or scale.get("maxWorkers")) \
            and min_workers != max_workers:
        raise SpecError(f"{dist.algorithm} is synchronous: elastic minWorkers/maxWorkers need an "
                        "asynchronous algorithm (aeasgd, downpour, adag, dynsgd)")
    master, worker = _template(_section(spec, "master")), _template(_section(spec, "worker"))
    _check_env(master.env, "master")
    _check_env(worker.env, "worker")
    if (master.gpus or worker.gpus) and train.device == "cpu":
        raise SpecError("gpus requested but train.device is cpu; set it to cuda or auto")
    clean = policy.get("cleanPodPolicy", DEFAULT_CLEAN_POD_POLICY)
    if clean not in CLEAN_POD_POLICIES:
        raise SpecError(f"runPolicy.cleanPodPolicy must be one of {', '.join(CLEAN_POD_POLICIES)}")
    run_policy = RunPolicy(
        active_deadline_seconds=policy.get("activeDeadlineSeconds"),
        backoff_limit=int(policy.get("backoffLimit", DEFAULT_BACKOFF_LIMIT)),
        ttl_seconds_after_finished=policy.get("ttlSecondsAfterFinished"),
        clean_pod_policy=clean,
        suspend=bool(policy.get("suspend", False)),
    )
    return JobSpec(
        train=train, dist=dist, volume=volume, mount_path=mount_path,
        dataset_path=dataset_path, output_path=output_path,
        workers=workers, min_workers=min_workers, max_workers=max_workers,
        master=master, worker=worker, run_policy=run_policy, security=security,
    )
