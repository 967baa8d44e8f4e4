"""Validation at the master: stop a distributed run on a plateau, keep the best centre.

A fixed epoch count either under-trains (10 epochs: centralized macro F
0.33 where 30 epochs gave 0.53) or wastes time; and the centre an
asynchronous run ends with is whatever the last commits left, not the best one
it passed through. So the master holds out the run's validation rows
(TrainConfig.val_fraction, carved from the training rows exactly as the
centralized trainer carves them; workers never train on them) and, every time
the workers' mean epoch crosses an integer, evaluates a copy of the centre on
them (its loss, as the centralized trainer's early stopping does) — the
centre's exponential average when the run averages (TrainConfig.average_epochs,
Center.set_averaging), the centre itself otherwise:

- the best centre (lowest validation loss) is kept;
- after `patience` checks without improvement the run is asked to stop
  (`Center.request_stop`): workers stop at their next exchange and make their
  final commit, and the run ends by the usual end rule;
- at the end the final centre is validated too, and if an earlier centre
  validated better it replaces the final one before the test evaluation.

The checks run in a thread of their own on a copy of the vector, so a commit
waits on the lock only for the copy (~2 ms for the CNN). A restarted master
starts its best-centre record afresh (the checkpointed centre is its start).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

from trafficdl.models.adapters import InputAdapter
from trafficdl.training.data import TensorSplit
from trafficdl.training.loop import evaluate_loss
from trafficdl_master.center import Center

log = logging.getLogger("trafficdl.master")
POLL_SECONDS = 0.05


@dataclass
class PlateauMonitor:
    """Validates the centre once per (mean) epoch; asks the run to stop on a plateau."""

    center: Center
    model: nn.Module  # a spare model of the run's architecture (loaded from the centre)
    val: TensorSplit
    adapter: InputAdapter
    epochs: int
    patience: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best: tuple[float, float, torch.Tensor] | None = None  # (val loss, epoch, centre)
    _checked: int = 0
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> PlateauMonitor:
        self._thread = threading.Thread(target=self._loop, name="plateau", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.center.done.is_set():
            due = int(self.center.mean_epoch())
            if self._checked < due < self.epochs:
                self._checked = due
                self.check(float(due))
            self._stop.wait(POLL_SECONDS)

    def check(self, epoch: float, vector: torch.Tensor | None = None) -> dict[str, Any]:
        """Validate the centre (or `vector`) as of `epoch`; track the best; maybe stop."""
        vec = self.center.model_copy() if vector is None else vector.clone()
        vector_to_parameters(vec, self.model.parameters())
        stats = evaluate_loss(self.model, self.val.x, self.val.y, adapter=self.adapter)
        record = {
            "epoch": round(epoch, 4),
            "val_loss": stats.loss,
            "val_accuracy": stats.accuracy,
            "seconds": round(self.center.training_seconds(), 4),
        }
        self.history.append(record)
        if self.best is None or stats.loss < self.best[0]:
            self.best = (stats.loss, epoch, vec)
        elif self.patience > 0 and epoch - self.best[1] >= self.patience:
            self.center.request_stop(
                f"validation loss did not improve for {self.patience} epochs "
                f"(best {self.best[0]:.4f} at epoch {self.best[1]:g})"
            )
        return record

    def finish(self) -> dict[str, Any]:
        """After the run: validate the final centre, restore the best one; the summary
        run.json carries (epochs run, best epoch, why it stopped, validation history)."""
        self.stop()
        epochs_run = self.center.mean_epoch()
        self.check(epochs_run, self.center.model_copy())
        assert self.best is not None
        restored = self.best[1] != epochs_run  # an earlier centre validated better
        # a stop asked for in the last epoch may find the workers at their budget anyway
        early = bool(self.center.stop_reason) and epochs_run < self.epochs - 1e-6
        if restored or self.center.average is not None:  # the kept model becomes the centre
            self.center.state.vector.copy_(self.best[2])
        if restored:
            log.info("centre of epoch %g restored (validation loss %.4f)", self.best[1],
                     self.best[0])  # fmt: skip
        return {
            "epochs_run": round(epochs_run, 4),
            "best_epoch": round(self.best[1], 4),
            "best_val_loss": self.best[0],
            "restored_best": restored,
            "stopped_early": early,
            "stop_reason": self.center.stop_reason
            if early
            else f"epoch budget of {self.epochs} reached",
        }


def no_validation(center: Center, epochs: int) -> dict[str, Any]:
    """The same summary keys for a run without a validation split (fixed epoch count)."""
    return {
        "epochs_run": round(center.mean_epoch(), 4),
        "best_epoch": None,
        "best_val_loss": None,
        "restored_best": False,
        "stopped_early": False,
        "stop_reason": f"epoch budget of {epochs} reached (no validation split)",
    }
