"""One worker's training: its partition, local steps, and an exchange every window.

The worker learns on its stratified partition D_rank (deterministic from seed,
rank and N: every process computes the same split without talking) read from
the memory-mapped dataset, with the run's local optimizer (Adam by default),
and exchanges with the master every `window` mini-batches. Whatever happens,
it ends with a final commit of the work since its last exchange, so a window
longer than its whole training still moves the centre (dist-keras' bug).
When the master answers a commit with `run_done` (it stopped the run on a
plateau of the centre's validation loss, master/trafficdl_master/plateau.py),
the worker stops before its epoch budget and makes that final commit at once.
With `DistConfig.overlap` (asynchronous rules) a window's exchange runs in the
background while the next mini-batches train (overlap.py); the final commit
always waits. Either way the loop meters the time it waits on the master, and
every commit carries it, so run.json reports the fraction spent blocked.

The per-batch step is the centralized trainer's (`trafficdl.training.loop`),
so the only difference between T1 through the master and the centralized
baseline is the exchange itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from trafficdl.dataset import Dataset, partition
from trafficdl.distributed.spec import RunSpec
from trafficdl.models import build_model, fingerprint
from trafficdl.models.adapters import InputAdapter
from trafficdl.optim import get_rule
from trafficdl.rpc.client import Registration
from trafficdl.training.data import batches, fit_val_test, load_split, num_batches
from trafficdl.training.loop import train_step
from trafficdl.training.runtime import make_optimizer, seed_everything, select_device
from trafficdl_worker import metrics
from trafficdl_worker.exchange import CommitProgress, Exchanger
from trafficdl_worker.overlap import BackgroundExchange, Stopwatch
from trafficdl_worker.resilience import ResilientClient


class WorkerError(RuntimeError):
    """The worker cannot run (model mismatch, empty partition)."""


@dataclass
class WorkerResult:
    rank: int
    batches: int
    samples: int
    commits: int
    seconds: float
    exchange_seconds: float
    blocked_seconds: float = 0.0


# With overlap, training runs at most this many windows (and never fewer than this many
# mini-batches: a window of one batch is a few ms, less than a master's fsync hiccup)
# ahead of an exchange in flight before it waits for it.
MAX_LAG_WINDOWS = 4
MIN_LAG_BATCHES = 16


class _Window:
    """Training figures of the current commit window (and the rank's sample count)."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.hits = torch.zeros((), dtype=torch.int64, device=device)
        self.samples = 0  # cumulative over the run
        self.window_samples = 0
        self.batches = 0

    def add(self, loss: torch.Tensor, hit: torch.Tensor, n: int) -> None:
        self.loss_sum += loss * n
        self.hits += hit
        self.samples += n
        self.window_samples += n
        self.batches += 1

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.hits.zero_()
        self.window_samples = self.batches = 0


def flatten_parameters(model: nn.Module) -> torch.Tensor:
    """Make every parameter of `model` a view of one flat vector, and return it.

    An exchange then reads the parameters with one copy and moves them with one
    in-place add or copy, instead of gathering and scattering them tensor by tensor
    (`parameters_to_vector` / `vector_to_parameters`, which also re-points them).
    The order is `model.parameters()`'s, the master's vector order."""
    params = list(model.parameters())
    flat = parameters_to_vector(params).detach().clone()
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        offset += n
    return flat


def partition_rows(dataset: Dataset, spec: RunSpec, rank: int, world: int) -> np.ndarray:
    """D_rank: this rank's stratified share of the run's training rows (less the
    validation rows the master keeps to itself)."""
    fit, _, _ = fit_val_test(dataset.labels, spec.train)
    return partition(fit, dataset.labels, world, rank, spec.train.seed)


class WorkerTrainer:
    """Local training of one rank with exchanges through `client`."""

    def __init__(
        self, client: ResilientClient, reg: Registration, spec: RunSpec, dataset: Dataset
    ) -> None:
        self.client = client
        self.reg = reg
        self.spec = spec
        self.rank = reg.rank
        seed_everything(spec.train.seed + 7919 * (reg.rank + 1))  # dropout differs per replica
        self.model: nn.Module = build_model(
            spec.train.model, spec.num_classes, **spec.model_overrides
        )
        if spec.model_version and fingerprint(self.model) != spec.model_version:
            raise WorkerError("this worker's model differs from the master's (version mismatch)")
        # CUDA when the run asks for it: the model and the partition live on the device;
        # only the exchanged vectors cross to the host (the wire and the rule are CPU-side).
        self.device = select_device(spec.train.device)
        self.model.to(self.device)
        self.flat = flatten_parameters(self.model)  # before the optimizer sees the parameters
        with torch.no_grad():
            self.flat.copy_(reg.center)  # start from the master's centre
        self.adapter = InputAdapter.from_dict(spec.adapter)
        self.rows = partition_rows(dataset, spec, reg.rank, reg.world_size)
        if len(self.rows) == 0:
            raise WorkerError(f"rank {reg.rank} has an empty partition")
        self.split = load_split(dataset, self.rows, self.adapter).to(self.device)
        self.optimizer = make_optimizer(spec.train, self.model.parameters())
        self.loss_fn = nn.CrossEntropyLoss()
        self.per_epoch = num_batches(len(self.split), spec.train.batch_size)
        self.window = spec.dist.window_batches(self.per_epoch)
        self.exchanger = Exchanger(
            client,
            get_rule(spec.dist.algorithm),
            rank=reg.rank,
            alpha=spec.dist.alpha,
            center=reg.center,
            counter=reg.update_counter,
        )
        self.background = BackgroundExchange(self.exchanger) if spec.dist.overlaps else None
        self.clock = Stopwatch()

    def _local(self) -> torch.Tensor:
        """A copy of the parameters, one flat vector (the exchange may keep it)."""
        return self.flat.detach().clone()

    def _exchange(self, progress: CommitProgress, final: bool) -> None:
        """One window's exchange, waited for (no overlap, or the final commit)."""

        def call() -> None:
            new = self.exchanger.exchange(self._local().cpu(), progress, final=final)
            with torch.no_grad():
                self.flat.copy_(new)

        self.clock.timed(call)

    def _land(self, step: int) -> None:
        """Fold the exchange in flight into the model (waiting for it if it has not landed)."""
        bg = self.background
        if bg is None or not bg.in_flight:
            return

        def call() -> None:
            with torch.no_grad():
                bg.land(self.flat, step)  # in place: the parameters are views of it

        self.clock.timed(call)

    def _deferred(self, step: int) -> bool:
        """With overlap, a window whose predecessor is still on its way grows by a batch
        instead of waiting for it, up to MAX_LAG_WINDOWS windows (MIN_LAG_BATCHES at
        least) behind: then it waits."""
        bg = self.background
        most = max(MAX_LAG_WINDOWS * self.window, MIN_LAG_BATCHES)
        return bg is not None and bg.in_flight and bg.lag(step) < most

    def _window(self, progress: CommitProgress, step: int) -> None:
        """The exchange at the end of a window: blocking, or handed to the background."""
        bg = self.background
        if bg is None:
            self._exchange(progress, final=False)
            return
        self._land(step)  # the previous window's, if it is still on its way
        if self.exchanger.run_done:
            return
        self.clock.timed(lambda: bg.start(self._local().cpu(), progress, step))

    def train(self) -> WorkerResult:
        cfg = self.spec.train
        total = cfg.epochs * self.per_epoch
        done = min(self.reg.resume_batches, total)  # batches the master already has
        w = _Window(self.device)
        step = done
        try:
            for epoch in range(cfg.epochs):
                if self.exchanger.run_done:
                    break
                step = self._epoch(epoch, w, step, done, total)
            self._land(step)  # the last overlapped window lands before the final commit
        finally:
            if self.background is not None:
                self.background.close()
        # The final commit, always: the work since the last exchange (possibly all of it).
        end = step if self.exchanger.run_done else total
        self._exchange(self._progress(end, w), final=True)
        seconds = self.clock.elapsed()
        self._time_metrics(seconds)
        return WorkerResult(
            rank=self.rank,
            batches=max(end - done, 0),
            samples=w.samples,
            commits=self.exchanger.commits,
            seconds=seconds,
            exchange_seconds=self.exchanger.seconds,
            blocked_seconds=self.clock.blocked,
        )

    def _epoch(self, epoch: int, w: _Window, step: int, done: int, total: int) -> int:
        """One local epoch (less the batches a resumed run already has); returns the step."""
        cfg = self.spec.train
        t_epoch = time.monotonic()
        seed = cfg.seed * 1009 + self.rank
        for b, (x, y) in enumerate(
            batches(self.split, cfg.batch_size, shuffle=True, seed=seed, epoch=epoch)
        ):
            if epoch * self.per_epoch + b < done:
                continue  # resumed: these batches were committed before a restart
            loss, hit = train_step(
                self.model, self.optimizer, x, y, adapter=self.adapter, loss_fn=self.loss_fn
            )
            w.add(loss, hit, len(y))
            step = epoch * self.per_epoch + b + 1
            metrics.BATCHES.inc()
            metrics.SAMPLES.inc(len(y))
            metrics.EPOCH.set(step / self.per_epoch)
            if self.background is not None and self.background.ready():
                self._land(step)  # landed meanwhile: fold it in now, the lag stays short
            if w.batches >= self.window and step < total and not self._deferred(step):
                self._window(self._progress(step, w), step)
                w.reset()
                if self.exchanger.run_done:  # the master stopped the run (plateau)
                    break
            # The heartbeat thread sends it every DistConfig.heartbeat_seconds.
            self.client.report_progress(step / self.per_epoch, step)
            self._time_metrics(self.clock.elapsed())
        metrics.EPOCH_DURATION.observe(time.monotonic() - t_epoch)
        return step

    def _progress(self, step: int, w: _Window) -> CommitProgress:
        loss = float(w.loss_sum) / w.window_samples if w.window_samples else float("nan")
        acc = int(w.hits) / w.window_samples if w.window_samples else float("nan")
        metrics.LOSS.set(loss)
        metrics.ACCURACY.set(acc)
        return CommitProgress(
            batches_done=step,
            samples_done=w.samples,
            epoch=step / self.per_epoch,
            loss=loss,
            accuracy=acc,
            window_batches=max(w.batches, 1),
            elapsed_seconds=self.clock.elapsed(),
            blocked_seconds=self.clock.blocked,
            lag_batches=self.background.lag_batches if self.background is not None else 0,
        )

    def _time_metrics(self, seconds: float) -> None:
        metrics.TRAINING_SECONDS.set(seconds)
        metrics.NODE_HOURS.set(seconds / 3600.0)
        metrics.COST.labels(self.spec.dist.currency).set(
            self.spec.dist.worker_price * seconds / 3600.0
        )
