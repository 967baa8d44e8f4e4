"""Run configuration: what to train (TrainConfig) and how to distribute it (DistConfig).

Frozen dataclasses shared by every entry point (CLI, master, worker, operator,
sweeps), so a run is described once and recorded whole in checkpoints and
run.json. Only the CLI and the process `__main__`s read flags, files and env;
everything else receives these objects. Each field says what it means here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from trafficdl.cost import NODE_TYPES
from trafficdl.errors import TrafficdlError

ModelName = Literal["cnn1d", "lstm"]
AlgorithmName = Literal["aeasgd", "easgd", "downpour", "adag", "dynsgd"]
WireDtype = Literal["float32", "float16", "bfloat16"]
MODELS: tuple[str, ...] = ("cnn1d", "lstm")
ALGORITHMS: tuple[str, ...] = ("aeasgd", "easgd", "downpour", "adag", "dynsgd")
SYNCHRONOUS_ALGORITHMS: tuple[str, ...] = ("easgd",)
WIRE_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


class ConfigError(TrafficdlError):
    """An invalid combination of settings."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how each replica learns (centralized or per worker)."""

    model: str = "cnn1d"  # "cnn1d" (784 payload bytes) or "lstm" (20 packets x 4 fields)
    # Passes over the (worker's) training data: exactly this many, or at most this many
    # with a validation split and patience (a plateau stop keeping the best weights).
    # The CLI's defaults are CONVERGING below; TrainConfig() itself trains a fixed epoch
    # count, which programmatic callers (the study's sweeps, tests counting commits) need.
    epochs: int = 10
    batch_size: int = 50  # the paper's mini-batch
    optimizer: str = "adam"  # any torch.optim class name, case-insensitive (adam, sgd, ...)
    lr: float = 1e-3  # local optimizer learning rate
    weight_decay: float = 0.0
    dropout: float = 0.5  # CNN's dropout before the softmax layer
    seed: int = 0  # drives split, partition, init and shuffling
    test_fraction: float = 0.2  # stratified hold-out for the final figures (when folds == 0)
    folds: int = 0  # >= 2: train on fold `fold`'s training rows of a stratified k-fold, test on it
    fold: int = 0  # which fold (0-based) when folds >= 2
    val_fraction: float = 0.0  # >0: a stratified validation share; the best weights are kept
    patience: int = 0  # epochs without validation improvement before stopping (0: off)
    class_weighting: bool = False  # weight the loss by inverse class frequency
    # >0: the run keeps (validates, stops on, tests) an exponential average of the
    # weights over about this many epochs instead of the last weights (optim/averaging.py;
    # distributed: of the master's centre); 0: off.
    average_epochs: float = 0.0
    device: str = "cpu"  # "cpu", "cuda", or "auto" (CUDA when present)
    threads: int = 0  # torch intra-op threads (0: leave torch's default)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be >= 1")
        if self.lr <= 0:
            raise ConfigError("learning rate must be > 0")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError("test fraction must be in (0, 1)")
        if self.folds == 1 or self.folds < 0:
            raise ConfigError("folds must be 0 (hold-out split) or >= 2 (k-fold)")
        if self.folds >= 2 and not 0 <= self.fold < self.folds:
            raise ConfigError(f"fold must be in [0, {self.folds}) for {self.folds} folds")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError("validation fraction must be in [0, 1)")
        if self.patience < 0:
            raise ConfigError("patience must be >= 0 (0: train every epoch of the budget)")
        if self.average_epochs < 0:
            raise ConfigError("averaging horizon must be >= 0 epochs (0: off)")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError("device must be cpu, cuda or auto")


# What a user's run does unless told otherwise (`trafficdl train`/`evaluate` defaults):
# an epoch budget, a 10% validation split, and a stop after 20 epochs without a better
# validation loss, restoring the best weights (centralized: training/trainer.py;
# distributed: master/trafficdl_master/plateau.py). 10 fixed epochs under-trained even
# the centralized model on real captures (macro F 0.33 where 30 epochs gave 0.53), and so
# did a patience of 5: the validation loss of a small split is noisy, and 5 epochs without
# a new best stopped the centralized LSTM at 12-19 epochs with macro F 0.75-0.83 on 4 of 5
# seeds, where patience 20 trained 70-117 epochs to 0.88-0.92 on all 5 (6 synthetic apps
# x 200 biflows; docs/study.md, "Training that converges by default").
# The model kept is the weights' exponential average over ~2.5 epochs (optim/averaging.py:
# it halved the spread of macro F between two initializations of one centralized run).
CONVERGING: dict[str, Any] = {
    "epochs": 150,
    "val_fraction": 0.1,
    "patience": 20,
    "average_epochs": 2.5,
}


@dataclass(frozen=True)
class DistConfig:
    """How training is distributed over a master and N workers (N=0: centralized)."""

    workers: int = 0  # N; 0 is the centralized baseline, 1 the paper's T1 through the master
    algorithm: str = "aeasgd"  # dist-keras' set; easgd is the synchronous (barrier) mode
    window: int = 0  # commit every this many mini-batches (0: use window_epochs)
    window_epochs: float = 1.0  # commit every this many (fractional) epochs, when window == 0
    rho: float = 5.0  # elastic force ρ (dist-keras default)
    elastic_lr: float = 0.1  # η of the elastic update; α = ρ·η
    wire_dtype: str = "float32"  # tensors on the wire: float32, float16 or bfloat16
    threads_per_worker: int = 0  # torch threads per worker (0: cores // N, at least 1)
    sync_timeout: float = 60.0  # synchronous barrier waits this long for a missing worker
    worker_price: float = NODE_TYPES["DS4v2"].hourly_price  # ρ, per worker node and hour
    master_price: float = NODE_TYPES["DS4v2"].hourly_price  # ρ_M: the master node's
    node_type: str = "DS4v2"  # a name from trafficdl.cost.NODE_TYPES, informational
    currency: str = "EUR"
    chunk_bytes: int = 1 << 20  # streaming chunk size for tensors on the wire
    # Overlap: a worker's exchange runs on a thread of its own while the next mini-batches
    # train; its answer is folded in when it lands (one exchange in flight at most). The
    # asynchronous rules only: EASGD's barrier is the algorithm (docs/distributed.md).
    overlap: bool = False
    # Faults (docs/faults.md): workers send a heartbeat this often; the master marks a
    # rank lost after `lost_after` seconds without hearing from it. Durability:
    # 1 = no acknowledged commit is lost (asynchronous rules: an fsync'd commit log
    # with group commit plus background snapshots; EASGD: a snapshot before the ack),
    # K > 1 = a snapshot every K updates, 0 = a snapshot per epoch only.
    heartbeat_seconds: float = 5.0
    lost_after: float = 30.0
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError("workers must be >= 0")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"unknown algorithm {self.algorithm!r}; choose from {', '.join(ALGORITHMS)}"
            )
        if self.window < 0 or (self.window == 0 and self.window_epochs <= 0):
            raise ConfigError("set a window >= 1 mini-batch or window epochs > 0")
        if self.wire_dtype not in WIRE_DTYPES:
            raise ConfigError(f"wire dtype must be one of {', '.join(WIRE_DTYPES)}")
        if self.rho < 0 or self.elastic_lr < 0 or self.rho * self.elastic_lr > 1:
            raise ConfigError("need rho >= 0, elastic lr >= 0 and rho * elastic lr <= 1")
        if self.worker_price < 0 or self.master_price < 0:
            raise ConfigError("prices must be >= 0")
        if self.heartbeat_seconds <= 0 or self.lost_after <= self.heartbeat_seconds:
            raise ConfigError("need heartbeat seconds > 0 and lost_after > heartbeat seconds")
        if self.checkpoint_every < 0:
            raise ConfigError("checkpoint_every must be >= 0 (0: at epoch boundaries only)")
        if self.chunk_bytes < 1024 or self.chunk_bytes > 3 << 20:
            raise ConfigError("chunk bytes must be between 1 KiB and 3 MiB")

    @property
    def synchronous(self) -> bool:
        return self.algorithm in SYNCHRONOUS_ALGORITHMS

    @property
    def overlaps(self) -> bool:
        """Whether workers really overlap: asked for, and the rule has no barrier."""
        return self.overlap and not self.synchronous

    @property
    def alpha(self) -> float:
        return self.rho * self.elastic_lr

    def window_batches(self, batches_per_epoch: int) -> int:
        """The commit window in mini-batches for a worker with this many batches per epoch."""
        if self.window:
            return self.window
        return max(1, round(self.window_epochs * batches_per_epoch))


def to_dict(cfg: TrainConfig | DistConfig) -> dict[str, Any]:
    return asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config from a dict, ignoring unknown keys (forward compatible)."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


__all__ = [
    "ALGORITHMS",
    "CONVERGING",
    "MODELS",
    "ConfigError",
    "DistConfig",
    "TrainConfig",
    "from_dict",
    "replace",
    "to_dict",
]
