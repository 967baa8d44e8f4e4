"""The centralized Trainer: the paper's single-machine baseline (workers = 0).

A small class in the minGPT/torchtitan mould — `_run_batch`, `_run_epoch`,
`save_checkpoint`, `load_checkpoint`, `train` — over in-memory tensor splits.
It receives frozen config and ready data; reading files and flags is the
CLI's job. Each epoch's record carries its wallclock (the paper's WTPE) and
throughput; with a validation split it keeps the best weights and stops after
`patience` epochs without improvement.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.models.adapters import InputAdapter
from trafficdl.optim.averaging import WeightAverage
from trafficdl.training.checkpoint import Checkpoint, load_resumable, save_checkpoint
from trafficdl.training.data import TensorSplit, batches, class_weights
from trafficdl.training.loop import StepStats, evaluate_loss, train_step
from trafficdl.training.progress_bar import NullReporter, Reporter
from trafficdl.training.runtime import make_optimizer, select_device


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint records of the run besides the model and its training: the
    extraction settings and the dataset the rows came from (training.run.checkpoint_info)."""

    extract_config: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None  # path and number of objects
    dist_config: DistConfig | None = None


class Trainer:
    """Trains one model on one device over a training split (and optional validation)."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        train: TensorSplit,
        *,
        model_name: str,
        adapter: InputAdapter,
        label_names: list[str],
        val: TensorSplit | None = None,
        device: torch.device | None = None,
        reporter: Reporter | None = None,
        checkpoint_path: str | Path | None = None,
        checkpoint_info: CheckpointInfo | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = device or select_device(cfg.device)
        self.model = model.to(self.device)
        self.model_name = model_name
        self.adapter = adapter
        self.label_names = list(label_names)
        self.train_split = train.to(self.device)
        self.val = val.to(self.device) if val is not None and len(val) else None
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        weight = None
        if cfg.class_weighting:
            weight = class_weights(train.y, len(self.label_names)).to(self.device)
        self.loss_fn = nn.CrossEntropyLoss(weight=weight)
        self.reporter = reporter or NullReporter()
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_info = checkpoint_info or CheckpointInfo()
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # epochs completed
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.stopped_early = False
        self.stop_reason = ""  # why training ended: a plateau or the epoch budget
        # The model validated, kept and returned: the weights' exponential average over
        # the last cfg.average_epochs epochs (optim/averaging.py), or the raw weights.
        self.average = self._new_average()

    def _new_average(self) -> WeightAverage | None:
        if self.cfg.average_epochs <= 0:
            return None
        return WeightAverage(self.model.parameters(), self.cfg.average_epochs)

    @contextmanager
    def _evaluated_weights(self) -> Iterator[None]:
        """Within: the model holds the weights a run evaluates (the average, if any)."""
        if self.average is None:
            yield
            return
        params = list(self.model.parameters())
        raw = [p.detach().clone() for p in params]
        self.average.copy_to(params)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(params, raw, strict=True):
                    p.copy_(r)

    # ------------------------------------------------------------------ steps

    def _run_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return train_step(
            self.model, self.optimizer, x, y, adapter=self.adapter, loss_fn=self.loss_fn
        )

    def _run_epoch(self, epoch: int) -> dict[str, Any]:
        self.model.train()
        n = len(self.train_split)
        self.reporter.epoch_start(epoch, self.cfg.epochs, n)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        step = 1.0 / max(math.ceil(n / self.cfg.batch_size), 1)  # of an epoch, per batch
        t0 = time.perf_counter()
        for x, y in batches(
            self.train_split, self.cfg.batch_size, shuffle=True, seed=self.cfg.seed, epoch=epoch
        ):
            loss, hits = self._run_batch(x, y)
            if self.average is not None:
                self.average.update(self.model.parameters(), step)
            loss_sum += loss * len(y)
            correct += hits
            self.reporter.advance(len(y))
        stats = StepStats(float(loss_sum), int(correct), n)
        seconds = time.perf_counter() - t0  # WTPE: the training pass only, as the paper
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": stats.loss,
            "accuracy": stats.accuracy,
            "seconds": seconds,
            "samples_per_s": n / seconds if seconds > 0 else float("inf"),
            "val_loss": None,
            "val_accuracy": None,
        }
        if self.val is not None:
            with self._evaluated_weights():
                v = evaluate_loss(
                    self.model, self.val.x, self.val.y, adapter=self.adapter, loss_fn=self.loss_fn
                )
            record["val_loss"], record["val_accuracy"] = v.loss, v.accuracy
        return record

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        info = self.checkpoint_info
        return save_checkpoint(
            path,
            self.model,
            model_name=self.model_name,
            label_names=self.label_names,
            adapter=self.adapter,
            train_config=self.cfg,
            dist_config=info.dist_config,
            extract_config=info.extract_config,
            history=self.history,
            epoch=self.epoch,
            optimizer=self.optimizer,
            dataset=info.dataset,
            extra={"stopped_early": self.stopped_early, **(extra or {})},
        )

    def load_checkpoint(self, path: str | Path) -> Checkpoint:
        """Resume: weights, optimizer state, history and epoch count from a checkpoint
        (its previous version when it is torn: `load_resumable`)."""
        ckpt = load_resumable(path)
        self.model.load_state_dict(ckpt.state_dict)
        if ckpt.optimizer is not None:
            self.optimizer.load_state_dict(ckpt.optimizer)
        self.history = list(ckpt.history)
        self.epoch = ckpt.epoch
        self.adapter = ckpt.adapter
        self.average = self._new_average()  # restarts from the resumed weights
        return ckpt

    # ------------------------------------------------------------------ train

    def _track_best(self, record: dict[str, Any]) -> bool:
        """Remember the best weights by validation loss; True when it is time to stop."""
        if record["val_loss"] is None:
            return False
        if self.best is None or record["val_loss"] < self.best[0]:
            with self._evaluated_weights():
                state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best = (record["val_loss"], record["epoch"], state)
            return False
        return self.cfg.patience > 0 and record["epoch"] - self.best[1] >= self.cfg.patience

    def train(self) -> list[dict[str, Any]]:
        """Run the remaining epochs; returns the history (one record per epoch)."""
        try:
            for epoch in range(self.epoch + 1, self.cfg.epochs + 1):
                record = self._run_epoch(epoch)
                self.history.append(record)
                self.epoch = epoch
                self.reporter.epoch_end(record)
                stop = self._track_best(record)
                if self.checkpoint_path is not None:
                    self.save_checkpoint(self.checkpoint_path)
                if stop:
                    self.stopped_early = True
                    assert self.best is not None
                    self.stop_reason = (
                        f"validation loss did not improve for {self.cfg.patience} epochs "
                        f"(best {self.best[0]:.4f} at epoch {self.best[1]})"
                    )
                    break
        finally:
            self.reporter.close()
        if not self.stop_reason:
            self.stop_reason = f"epoch budget of {self.cfg.epochs} reached" + (
                "" if self.val is not None else " (no validation split)"
            )
        if self.best is not None:  # keep the weights that validated best
            self.model.load_state_dict(copy.deepcopy(self.best[2]))
        elif self.average is not None:  # no validation: the average at the end
            self.average.copy_to(self.model.parameters())
        return self.history

    @property
    def best_epoch(self) -> int | None:
        return self.best[1] if self.best is not None else None
