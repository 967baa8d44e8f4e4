"""A worker's side of the exchange protocol: when to pull, what to commit, what to keep.

`Exchanger.exchange(local)` performs one window's exchange for the run's rule
and returns the vector the worker continues from:

* elastic (AEASGD/EASGD): pull x̃, commit E = α(x − x̃), continue from x − E;
* delta (DOWNPOUR/ADAG/DynSGD): commit Δ = x − x_pull against the counter of
  that pull, then pull and continue from the fresh centre.

It numbers commits (so a retried commit is not folded twice), tracks the
counter each contribution is based on (staleness), and meters every call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from trafficdl.optim import UpdateRule
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl_worker import metrics


@dataclass
class Progress:
    """Cumulative progress a commit reports (the master's view of this rank)."""

    batches_done: int = 0
    samples_done: int = 0
    epoch: float = 0.0
    loss: float = float("nan")
    accuracy: float = float("nan")
    window_batches: int = 1


class Exchanger:
    def __init__(
        self,
        client: ParameterServerClient,
        rule: UpdateRule,
        *,
        rank: int,
        alpha: float,
        center: torch.Tensor,
        counter: int,
    ) -> None:
        self.client = client
        self.rule = rule
        self.rank = rank
        self.alpha = alpha
        self.sequence = 0  # = batches covered by the last commit (see _commit)
        self.commits = 0
        self.counter = counter  # counter of the last pull
        self.last_pull = center.clone()  # x_pull for the delta rules
        self.run_done = False
        self.seconds = 0.0  # time spent exchanging (pulls + commits)

    def _pull(self) -> torch.Tensor:
        t0 = time.perf_counter()
        pulled = self.client.pull(self.rank)
        elapsed = time.perf_counter() - t0
        self.seconds += elapsed
        metrics.EXCHANGE_SECONDS.inc(elapsed)
        metrics.PULLS.inc()
        metrics.PULL_BYTES.inc(pulled.nbytes)
        self.counter = pulled.update_counter
        return pulled.center

    def _commit(self, contribution: torch.Tensor, progress: Progress, final: bool) -> None:
        # The sequence number is the rank's cumulative batch count: it grows with every
        # commit *across worker restarts* (a restarted worker resumes at its last
        # acknowledged batch), so the master's dedup of retried commits stays exact.
        self.sequence = max(progress.batches_done, self.sequence + 1)
        self.commits += 1
        header = pb.CommitHeader(
            rank=self.rank,
            based_on_counter=self.counter,
            sequence=self.sequence,
            batches_done=progress.batches_done,
            samples_done=progress.samples_done,
            epoch=progress.epoch,
            loss=progress.loss,
            accuracy=progress.accuracy,
            window_batches=max(progress.window_batches, 1),
            final=final,
        )
        t0 = time.perf_counter()
        response, nbytes = self.client.commit(contribution, header)
        elapsed = time.perf_counter() - t0
        self.seconds += elapsed
        metrics.EXCHANGE_SECONDS.inc(elapsed)
        metrics.COMMIT_LATENCY.observe(elapsed)
        metrics.COMMITS.inc()
        metrics.COMMIT_BYTES.inc(nbytes)
        metrics.STALENESS.observe(response.staleness)
        self.run_done = response.run_done

    def exchange(
        self, local: torch.Tensor, progress: Progress, *, final: bool = False
    ) -> torch.Tensor:
        """One window's pull + commit; returns the vector to continue from (in `local`)."""
        if self.rule.elastic:
            center = self._pull()
            contribution = self.rule.contribution(local, center, self.alpha)
            self._commit(contribution, progress, final)
            return self.rule.after_commit(local, contribution, None)
        contribution = self.rule.contribution(local, self.last_pull, self.alpha)
        self._commit(contribution, progress, final)
        if final:
            return local
        center = self._pull()
        self.last_pull = center
        return self.rule.after_commit(local, contribution, center)
