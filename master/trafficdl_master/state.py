"""The master's state as plain data: the run (`CenterState`) and its parts.

`CenterState` is everything a restarted master needs (flat centre vector,
update counter, per-rank progress, training time so far, history), with
`snapshot()`/`restore()` for the atomic checkpoints (recovery.py).
`WorkerProgress` is one rank's progress; `CommitInfo` and `CommitResult` are
what `Center` (center.py) takes and gives per commit, `Progress` what it reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from trafficdl import cost


@dataclass
class WorkerProgress:
    """What the master knows of one rank, from its registration, commits and heartbeats."""

    rank: int
    worker_id: str = ""
    registrations: int = 0
    connected: bool = False
    finished: bool = False
    lost: bool = False
    batches_done: int = 0
    samples_done: int = 0
    epoch: float = 0.0
    loss: float = float("nan")
    accuracy: float = float("nan")
    commits: int = 0
    last_sequence: int = 0
    acked_batches: int = 0  # batches covered by its last folded commit: where a restart resumes
    # The worker's clock, from its last commit: training-loop seconds, seconds of them
    # blocked on exchanges, batches trained while an overlapped exchange was in flight.
    elapsed_seconds: float = 0.0
    blocked_seconds: float = 0.0
    lag_batches: int = 0


@dataclass
class CommitInfo:
    """A commit's header in domain terms (see CommitHeader in the proto)."""

    rank: int
    based_on_counter: int
    sequence: int = 0
    batches_done: int = 0
    samples_done: int = 0
    epoch: float = 0.0
    loss: float = float("nan")
    accuracy: float = float("nan")
    window_batches: int = 1
    final: bool = False
    elapsed_seconds: float = 0.0
    blocked_seconds: float = 0.0
    lag_batches: int = 0


@dataclass
class CommitResult:
    update_counter: int
    staleness: int
    run_done: bool
    applied: bool = True


@dataclass(frozen=True)
class Progress:
    """The run's counts and progress at one moment (Center.progress): what the Status
    rpc, the Prometheus gauges, checkpoints and run.json read."""

    phase: str
    message: str
    connected: int
    finished: int
    lost: int
    epoch: float  # slowest rank's fractional epoch (the planned epochs once done)
    mean_epoch: float
    ratio: float  # 0..1, the ranks' mean share of their planned epochs
    done: bool
    epochs: int  # planned
    update_counter: int
    commits_total: int
    commits_rejected: int
    samples_done: int
    loss: float  # mean of the ranks' last reported training loss (NaN before any)
    accuracy: float
    restarts: int

    def wtpe(self, seconds: float) -> float:
        """Wallclock time per epoch: T / epochs at the end, T / epochs reached so far before."""
        if self.done:
            return cost.wtpe(seconds, self.epochs)
        return seconds / self.mean_epoch if self.mean_epoch > 0 else 0.0


@dataclass
class CenterState:
    """The snapshot-able state of a run on the master."""

    vector: torch.Tensor
    world_size: int
    update_counter: int = 0
    workers: dict[int, WorkerProgress] = field(default_factory=dict)
    elapsed_before: float = 0.0  # training seconds of earlier master lives (restore)
    commits_total: int = 0
    commits_rejected: int = 0
    restarts: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    rescales: list[dict[str, Any]] = field(default_factory=list)  # elastic.py: N changes

    def __post_init__(self) -> None:
        for r in range(self.world_size):
            self.workers.setdefault(r, WorkerProgress(rank=r))

    def snapshot(self) -> dict[str, Any]:
        """Plain data (plus one tensor) that `restore` turns back into this state."""
        return {
            "vector": self.vector.clone(),
            "world_size": self.world_size,
            "update_counter": self.update_counter,
            "workers": {r: asdict(w) for r, w in self.workers.items()},
            "elapsed_before": self.elapsed_before,
            "commits_total": self.commits_total,
            "commits_rejected": self.commits_rejected,
            "restarts": self.restarts,
            "history": list(self.history),
            "rescales": [dict(r) for r in self.rescales],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> CenterState:
        workers = {int(r): WorkerProgress(**w) for r, w in data["workers"].items()}
        for w in workers.values():
            w.connected = False  # every worker must register again with a new master
        return cls(
            vector=data["vector"].clone(),
            world_size=int(data["world_size"]),
            update_counter=int(data["update_counter"]),
            workers=workers,
            elapsed_before=float(data["elapsed_before"]),
            commits_total=int(data["commits_total"]),
            commits_rejected=int(data["commits_rejected"]),
            restarts=int(data["restarts"]),
            history=list(data["history"]),
            rescales=[dict(r) for r in data.get("rescales", [])],
        )


def exchange_waits(
    workers: dict[int, WorkerProgress], *, overlap: bool, commits: int
) -> dict[str, Any]:
    """run.json's "exchange" block: how much of its training loop each rank spent
    waiting on the master, from the clocks the workers' commits carry.

    `blocked_fraction` is over all ranks (Σ blocked / Σ elapsed); with overlap,
    `lag_batches_mean` is the extra staleness the update rule sees: the local
    mini-batches trained per commit while that commit was in flight."""
    ranks = sorted(workers)
    elapsed = sum(workers[r].elapsed_seconds for r in ranks)
    blocked = sum(workers[r].blocked_seconds for r in ranks)
    lag = sum(workers[r].lag_batches for r in ranks)
    return {
        "overlap": overlap,
        "blocked_seconds": round(blocked, 4),
        "blocked_fraction": round(blocked / elapsed, 4) if elapsed > 0 else None,
        "blocked_fraction_per_rank": [
            round(workers[r].blocked_seconds / workers[r].elapsed_seconds, 4)
            if workers[r].elapsed_seconds > 0
            else None
            for r in ranks
        ],
        "lag_batches_mean": round(lag / commits, 3) if commits else 0.0,
    }


def progress_of(state: CenterState, phase: str, message: str, done: bool, epochs: int) -> Progress:
    """A Progress of `state` (Center.progress, under the centre's lock)."""
    ws = list(state.workers.values())
    epoch_min = min((w.epoch for w in ws), default=0.0)
    mean = sum(min(w.epoch / epochs, 1.0) for w in ws) / max(len(ws), 1)
    return Progress(
        phase=phase,
        message=message,
        connected=sum(w.connected for w in ws),
        finished=sum(w.finished for w in ws),
        lost=sum(w.lost for w in ws),
        epoch=float(epochs) if done else epoch_min,
        mean_epoch=sum(w.epoch for w in ws) / max(len(ws), 1),
        ratio=1.0 if done else mean,
        done=done,
        epochs=epochs,
        update_counter=state.update_counter,
        commits_total=state.commits_total,
        commits_rejected=state.commits_rejected,
        samples_done=sum(w.samples_done for w in ws),
        loss=_mean(w.loss for w in ws),
        accuracy=_mean(w.accuracy for w in ws),
        restarts=state.restarts,
    )


def _mean(values: Any) -> float:
    real = [v for v in values if v == v]  # drop NaN (no commit yet)
    return sum(real) / len(real) if real else float("nan")
