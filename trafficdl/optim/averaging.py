"""An exponential average of the weights over the last epochs: the model a run keeps.

Why: the weights at the end of any one epoch are a noisy sample of where the
optimizer wanders near its minimum. Measured on the centralized LSTM (6
synthetic apps, 2,400 imbalanced biflows, 480 test rows, seeds 0-2, each seed
trained from two initializations): over the last 20 epochs the raw weights'
test macro F moved with a standard deviation of 0.010-0.10 from one epoch to
the next, so the best-validation epoch that early stopping keeps landed 1.4-3.2%
apart between two initializations of the same seed, wider than the 2% by which
a distributed run is to match a centralized one. An exponential average of the
weights over the last ~2.6 epochs (Polyak averaging) moved with 0.004-0.06, kept
F within 0.2-1.0% across initializations and raised it (mean 0.929 against
0.918). The same average is taken of the master's centre, so the centralized
and the distributed run report the same kind of model (docs/study.md).

The horizon is in epochs, not in steps, so one setting means the same thing
for the centralized trainer (updated after every mini-batch by 1/batches-per-
epoch) and for the master (updated after every fold by the workers' mean
epoch progress since the previous one), at any N, window or batch size: an
update of `d` epochs moves the average a share 1 - exp(-d / horizon) toward
the current weights. Early in a run the horizon is shorter: at most a fifth of
the epochs seen so far (WARM_UP_SHARE), so the average of a short or young run
follows its fast-moving weights instead of mixing in the untrained start (with a
plain mean over the first 2.5 epochs, an 8-epoch LSTM run kept near-initial,
near-uniform outputs: macro F 0.37 where the last weights had 0.56). From
horizon / WARM_UP_SHARE epochs on (12.5 at the default) the horizon is the full
one; the runs of bench_convergence stop after 50-150 epochs, where the two
warm-ups' difference has decayed by a factor below e^-10.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

WARM_UP_SHARE = 0.2  # the horizon is at most this share of the epochs seen so far


class WeightAverage:
    """The exponential average of a list of tensors, advanced by epochs of progress."""

    def __init__(self, tensors: Iterable[torch.Tensor], horizon_epochs: float) -> None:
        if horizon_epochs <= 0:
            raise ValueError("the averaging horizon must be > 0 epochs")
        self.horizon = float(horizon_epochs)
        self.average = [t.detach().clone() for t in tensors]
        self.seen = 0.0  # epochs of progress folded in so far

    def share(self, epochs: float) -> float:
        """How far an update of `epochs` of progress moves the average (0..1)."""
        if epochs <= 0:
            return 0.0
        self.seen += epochs
        horizon = min(self.horizon, WARM_UP_SHARE * self.seen)
        return 1.0 - math.exp(-epochs / horizon)

    @torch.no_grad()
    def update(self, tensors: Iterable[torch.Tensor], epochs: float) -> None:
        """Fold in the current `tensors` after `epochs` of progress since the last update."""
        weight = self.share(epochs)
        if weight > 0:
            for avg, cur in zip(self.average, tensors, strict=True):
                avg.lerp_(cur.detach(), weight)

    @torch.no_grad()
    def copy_to(self, tensors: Iterable[torch.Tensor]) -> None:
        """Write the average into `tensors` (a model's parameters, the centre vector)."""
        for dst, avg in zip(tensors, self.average, strict=True):
            dst.copy_(avg)


class EpochAverage(WeightAverage):
    """A WeightAverage advanced to the readings of an epoch clock (the master's: the
    workers' mean epoch), each update by the progress since the previous reading."""

    def __init__(self, tensors: Iterable[torch.Tensor], horizon_epochs: float,
                 epoch: float = 0.0) -> None:  # fmt: skip
        super().__init__(tensors, horizon_epochs)
        self.epoch = epoch

    def advance_to(self, tensors: Iterable[torch.Tensor], epoch: float) -> None:
        self.update(tensors, epoch - self.epoch)
        self.epoch = max(self.epoch, epoch)
