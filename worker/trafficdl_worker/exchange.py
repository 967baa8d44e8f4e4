"""A worker's side of the exchange protocol: when to pull, what to commit, what to keep.

`Exchanger.exchange(local)` performs one window's exchange for the run's rule
and returns the vector the worker continues from:

* elastic (AEASGD/EASGD): pull x̃, commit E = α(x − x̃), continue from x − E;
* delta (DOWNPOUR/ADAG/DynSGD): commit Δ = x − x_pull against the counter of
  that pull, then pull and continue from the fresh centre.

It numbers commits (so a retried commit is not folded twice), tracks the
counter each contribution is based on (staleness), and meters every call.

A worker on the master's node, told of its data plane at registration, does
each window there (trafficdl/rpc/dataplane.py: shared memory and a Unix socket,
no gRPC); a refusal or break finishes that window with Pull and Commit, below.
Otherwise each window of a model that fits in one chunk is done with unary calls:
PullOne then CommitOne for the elastic rules, one CommitOne that returns the
centre after the fold for the delta rules; larger models use Pull and Commit
(the streaming Exchange call up to `exchange_max_bytes`). When a call breaks
off, the window is finished with Pull and Commit (which retry, register again
and are deduplicated by sequence). Master and workers run one release of the
v1 protocol, which has every one of these rpcs: one the master does not offer
(UNIMPLEMENTED) is an error, not a reason to switch paths.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from trafficdl.optim import UpdateRule
from trafficdl.rpc.client import Exchanged, ExchangeFailed, ParameterServerClient, Pulled
from trafficdl.rpc.dataplane import DataPlaneClient, DataPlaneError, DataPlaneLink
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl_worker import metrics

log = logging.getLogger("trafficdl.worker")


@dataclass
class CommitProgress:
    """Cumulative progress a commit reports (the master's view of this rank)."""

    batches_done: int = 0
    samples_done: int = 0
    epoch: float = 0.0
    loss: float = float("nan")
    accuracy: float = float("nan")
    window_batches: int = 1
    # The worker's clock (cumulative): loop seconds, seconds waiting on exchanges,
    # batches trained while overlapped exchanges were in flight.
    elapsed_seconds: float = 0.0
    blocked_seconds: float = 0.0
    lag_batches: int = 0


@dataclass
class Shortcut:
    """How far a window through the data plane got before it broke off."""

    contribution: torch.Tensor | None = None


class Exchanger:
    """One rank's exchanges with the master, window after window."""

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
        # The one-call paths (PullOne + CommitOne, or Exchange) for a model up to
        # `exchange_max_bytes`; False: Pull and Commit always (bench_exchange compares).
        self.combined = True
        # ...for tensors up to this many wire bytes (None: the client's chunk size). A
        # one-chunk model (the LSTM's 0.2 MB) is bound by per-call costs, which one call
        # instead of two cuts; for a many-chunk model (the CNN's 23 MB) the two streaming
        # calls measured faster here (bench/bench_exchange.py), so it keeps Pull + Commit.
        self.exchange_max_bytes: int | None = None
        # The same-node data plane (trafficdl/rpc/dataplane.py) when the master offers
        # one this process can reach; the rpcs otherwise, and for what it leaves undone.
        self.link: DataPlaneLink | None = None
        if client.data_plane:
            self.link = DataPlaneLink(
                lambda: client.data_plane, token=client.token, run_id=client.run_id,
                numel=center.numel(), wire_dtype=client.wire_dtype,
            )  # fmt: skip

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

    def _header(self, progress: CommitProgress, final: bool) -> pb.CommitHeader:
        # The sequence number is the rank's cumulative batch count: it grows with every
        # commit *across worker restarts* (a restarted worker resumes at its last
        # acknowledged batch), so the master's dedup of retried commits stays exact.
        self.sequence = max(progress.batches_done, self.sequence + 1)
        self.commits += 1
        return pb.CommitHeader(
            rank=self.rank,
            sequence=self.sequence,
            batches_done=progress.batches_done,
            samples_done=progress.samples_done,
            epoch=progress.epoch,
            loss=progress.loss,
            accuracy=progress.accuracy,
            window_batches=max(progress.window_batches, 1),
            final=final,
            elapsed_seconds=progress.elapsed_seconds,
            blocked_seconds=progress.blocked_seconds,
            lag_batches=progress.lag_batches,
        )

    def _commit(self, contribution: torch.Tensor, header: pb.CommitHeader) -> None:
        header.based_on_counter = self.counter
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
        self, local: torch.Tensor, progress: CommitProgress, *, final: bool = False
    ) -> torch.Tensor:
        """One window's pull + commit; returns the vector to continue from (in `local`)."""
        header = self._header(progress, final)
        contribution: torch.Tensor | None = None
        acked = False
        limit = self.exchange_max_bytes
        itemsize = 4 if self.client.wire_dtype == "float32" else 2
        fast = self.link.get(self.rank) if self.link is not None else None
        if fast is not None:
            t0 = time.perf_counter()
            got = Shortcut()
            try:
                return self._exchange_fast(fast, local, header, final, got)
            except DataPlaneError as exc:
                log.warning("%s: finishing the window with Pull and Commit", exc)
                self.link.drop()  # type: ignore[union-attr]
                contribution = got.contribution
            finally:
                self._spent(time.perf_counter() - t0)
        elif self.combined and local.numel() * itemsize <= (limit or self.client.chunk_bytes):
            t0 = time.perf_counter()
            try:
                one = local.numel() * itemsize <= self.client.chunk_bytes  # unary calls
                if self.rule.elastic:
                    done = self.client.pull_and_commit(
                        self.rank,
                        header,
                        lambda c: self.rule.contribution(local, c, self.alpha),
                        one_chunk=one,
                    )
                else:
                    contribution = self.rule.contribution(local, self.last_pull, self.alpha)
                    done = self.client.commit_and_pull(contribution, header, one_chunk=one)
            except ExchangeFailed as exc:
                self._spent(time.perf_counter() - t0)
                if not exc.finishable:
                    raise exc.cause from None  # as a refused Commit or Pull would
                log.warning("%s: finishing the window with Pull and Commit", exc)
                if exc.pulled is not None:
                    self.counter = exc.pulled.update_counter
                contribution = exc.contribution
                acked = exc.ack is not None
                if acked:
                    self._acked(exc.ack, header)
            else:
                self._spent(time.perf_counter() - t0)
                self._acked(done.ack, header, done)
                if done.pulled is not None:
                    self._pulled(done.pulled)
                if self.rule.elastic:
                    return self.rule.after_commit(local, done.contribution, None)
                if final:
                    return local
                self.last_pull = done.pulled.center  # type: ignore[union-attr]
                return self.rule.after_commit(local, done.contribution, self.last_pull)
        # Pull and Commit: a many-chunk model, or what a broken-off exchange left to do.
        if self.rule.elastic:
            if contribution is None:
                center = self._pull()
                contribution = self.rule.contribution(local, center, self.alpha)
            self._commit(contribution, header)
            return self.rule.after_commit(local, contribution, None)
        if contribution is None:
            contribution = self.rule.contribution(local, self.last_pull, self.alpha)
        if not acked:
            self._commit(contribution, header)
        if final:
            return local
        center = self._pull()
        self.last_pull = center
        return self.rule.after_commit(local, contribution, center)

    def _exchange_fast(
        self, fast: DataPlaneClient, local: torch.Tensor, header: pb.CommitHeader,
        final: bool, done: Shortcut,
    ) -> torch.Tensor:  # fmt: skip
        """The window through the same-node data plane; on DataPlaneError, `done` holds
        the contribution for the rpcs to commit (one sent but not acknowledged goes again
        with its sequence: folded at most once)."""
        if self.rule.elastic:
            counter, centre = fast.pull()
            self._pulled(Pulled(counter, centre, 4 * centre.numel()))
            done.contribution = self.rule.contribution(local, centre, self.alpha)
        else:
            done.contribution = self.rule.contribution(local, self.last_pull, self.alpha)
        header.based_on_counter = self.counter
        ack, counter, centre = fast.commit(done.contribution, header, pull=not self.rule.elastic)
        self._acked(ack, header)
        metrics.COMMIT_BYTES.inc(4 * done.contribution.numel())
        if self.rule.elastic:
            return self.rule.after_commit(local, done.contribution, None)
        if final or centre is None:
            return local
        self._pulled(Pulled(counter, centre, 4 * centre.numel()))
        self.last_pull = centre
        return self.rule.after_commit(local, done.contribution, centre)

    def _spent(self, elapsed: float) -> None:
        self.seconds += elapsed
        metrics.EXCHANGE_SECONDS.inc(elapsed)

    def _pulled(self, pulled: Pulled) -> None:
        metrics.PULLS.inc()
        metrics.PULL_BYTES.inc(pulled.nbytes)
        self.counter = pulled.update_counter

    def _acked(
        self, response: pb.CommitResponse, header: pb.CommitHeader, done: Exchanged | None = None
    ) -> None:
        metrics.COMMITS.inc()
        if done is not None:
            metrics.COMMIT_LATENCY.observe(done.commit_seconds)
            metrics.COMMIT_BYTES.inc(done.nbytes)
        metrics.STALENESS.observe(response.staleness)
        self.run_done = response.run_done
