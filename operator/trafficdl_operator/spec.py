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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from trafficdl.config import ConfigError, DistConfig, TrainConfig, to_dict
from trafficdl.cost import NODE_TYPES

_TRAIN_FIELDS = {  # CRD spec.train key -> TrainConfig field
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
    "classWeighting": "class_weighting",
    "device": "device",
}
_DIST_FIELDS = {  # CRD spec.distribution key -> DistConfig field
    "algorithm": "algorithm",
    "window": "window",
    "windowEpochs": "window_epochs",
    "rho": "rho",
    "elasticLr": "elastic_lr",
    "wireDtype": "wire_dtype",
    "syncTimeoutSeconds": "sync_timeout",
}
CLEAN_POD_POLICIES = ("All", "Running", "None")
DEFAULT_WORKERS = 2
DEFAULT_BACKOFF_LIMIT = 3
DEFAULT_CLEAN_POD_POLICY = "Running"
DEFAULT_MOUNT_PATH = "/data"
DEFAULT_OUTPUT_PATH = "runs"


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


def parse(spec: dict[str, Any]) -> JobSpec:
    """Default and validate a TrafficTrainingJob spec; raise SpecError with a clear message."""
    if not isinstance(spec, dict) or not spec:
        raise SpecError("spec is missing")
    data = _section(spec, "data")
    scale = _section(spec, "scale")
    policy = _section(spec, "runPolicy")
    volume = data.get("volume")
    if not isinstance(volume, dict) or not volume:
        raise SpecError("spec.data.volume is required (a pod volume source, e.g. "
                        "persistentVolumeClaim: {claimName: ...})")
    if not data.get("datasetPath"):
        raise SpecError("spec.data.datasetPath is required (the dataset on the volume, "
                        "relative to mountPath)")
    workers = int(scale.get("workers", DEFAULT_WORKERS))
    min_workers = int(scale.get("minWorkers") or 1)
    max_workers = int(scale.get("maxWorkers") or max(workers, min_workers))
    if workers < 1:
        raise SpecError("spec.scale.workers must be >= 1")
    if not min_workers <= workers <= max_workers:
        raise SpecError(f"need minWorkers <= workers <= maxWorkers, got "
                        f"{min_workers} <= {workers} <= {max_workers}")
    try:
        train = TrainConfig(**_mapped(_section(spec, "train"), _TRAIN_FIELDS, "train"))
        dist_kwargs = _mapped(_section(spec, "distribution"), _DIST_FIELDS, "distribution")
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
        train=train, dist=dist, volume=dict(volume),
        mount_path=data.get("mountPath") or DEFAULT_MOUNT_PATH,
        dataset_path=data["datasetPath"],
        output_path=data.get("outputPath") or DEFAULT_OUTPUT_PATH,
        workers=workers, min_workers=min_workers, max_workers=max_workers,
        master=master, worker=worker, run_policy=run_policy,
    )
