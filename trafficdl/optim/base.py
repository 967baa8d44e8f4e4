"""What every distributed update rule is: a worker side and a master side, as plain math.

Two families cover dist-keras' set:

* elastic (AEASGD, EASGD): at a window the worker pulls the centre x̃, commits
  E = α(x − x̃) and keeps training from x − E; the master adds E to x̃.
* delta (DOWNPOUR, ADAG, DynSGD): the worker commits Δ = x − x_pull (its
  progress since the last pull), then continues from the fresh centre; the
  master adds Δ scaled by a rule-specific weight (1, 1/window, 1/(staleness+1)).

Rules work on flat float32 tensors in place (a 23 MB CNN is folded in ~2 ms)
and know nothing of gRPC, threads or models, so each is unit-tested against
hand-computed steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class UpdateRule:
    """Base rule: subclasses set `name`, `elastic`, `synchronous` and `fold_weight`."""

    name: str = ""
    elastic: bool = False  # commit E = α(x − x̃) (True) or Δ = x − x_pull (False)
    synchronous: bool = False  # the master folds a whole round of N commits at once

    # ------------------------------------------------------------ worker side
    def contribution(
        self, local: torch.Tensor, reference: torch.Tensor, alpha: float
    ) -> torch.Tensor:
        """What a worker commits: E = α(local − centre) or Δ = local − last pull."""
        diff = local - reference
        if self.elastic:
            diff.mul_(alpha)
        return diff

    def after_commit(
        self, local: torch.Tensor, contribution: torch.Tensor, center: torch.Tensor | None
    ) -> torch.Tensor:
        """The worker's new local vector: x − E (elastic), or the fresh centre (delta)."""
        if self.elastic:
            return local.sub_(contribution)
        if center is None:
            raise ValueError(f"{self.name} needs the pulled centre after a commit")
        return local.copy_(center)

    # ------------------------------------------------------------ master side
    def fold_weight(self, staleness: int, window_batches: int) -> float:
        """Scale applied to one commit when it is added to the centre."""
        return 1.0

    def fold(
        self,
        center: torch.Tensor,
        contribution: torch.Tensor,
        *,
        staleness: int = 0,
        window_batches: int = 1,
    ) -> torch.Tensor:
        """x̃ ← x̃ + w·c for one commit (asynchronous rules), in place."""
        return center.add_(contribution, alpha=self.fold_weight(staleness, window_batches))

    def fold_round(
        self, center: torch.Tensor, contributions: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """x̃ ← x̃ + Σ c_i: a synchronous round folded at once, in place."""
        for c in contributions:
            center.add_(c)
        return center
