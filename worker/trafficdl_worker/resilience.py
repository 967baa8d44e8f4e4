"""A worker's link to the master that survives master restarts, cut links and lost status.

`ResilientClient` is a `ParameterServerClient` whose calls
- retry transient errors (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED) with
  exponential backoff and full jitter (`trafficdl.rpc.retry`), each attempt
  with its own deadline, so a restarting master or a flapping link costs time,
  not the run;
- register again when the master says it does not know this rank
  (FAILED_PRECONDITION "... register again": the master restarted from a
  checkpoint, or marked the rank lost after a silence), then resend the call;
- heartbeat from a thread of their own every `heartbeat_seconds` (the run's
  DistConfig), carrying the progress the trainer reports (`report_progress`),
  so the master can tell a slow worker from a dead one.

After registering again the master says where this rank resumes
(`resume_batches`, its last acknowledged commit). With checkpoint-before-ack
that is where this worker already is, and training simply goes on. When it is
behind (a master that checkpoints every K > 1 updates lost acknowledged ones),
`Rewind` is raised: the worker's `__main__` rebuilds its trainer from the new
registration and redoes the batches after `resume_batches`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import grpc
import torch

from trafficdl.rpc import retry, security
from trafficdl.rpc.client import (
    Exchanged,
    ExchangeFailed,
    ParameterServerClient,
    Pulled,
    Registration,
)
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl_worker import metrics

log = logging.getLogger("trafficdl.worker")
T = TypeVar("T")
REGISTER_AGAIN = "register again"  # the master's phrase for a rank it does not count as connected
CALL_TIMEOUT_S = 120.0  # one attempt of register/pull/commit (a barrier wait included)


class Rewind(Exception):
    """The master resumed this rank behind where the worker is: restart from `registration`."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(f"master resumes rank {registration.rank} at batch "
                         f"{registration.resume_batches}")  # fmt: skip
        self.registration = registration


def needs_register(exc: BaseException) -> bool:
    return (
        isinstance(exc, grpc.RpcError)
        and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
        and REGISTER_AGAIN in (exc.details() or "")
    )


class ResilientClient(ParameterServerClient):
    """ParameterServerClient + retries, re-registration and a heartbeat thread."""

    def __init__(
        self,
        target: str,
        run_id: str = "",
        *,
        token: str | None = None,
        tls: security.ClientTls | None = None,
        worker_id: str = "",
        policy: retry.RetryPolicy = retry.MASTER_RESTART_POLICY,
        allow_plaintext: bool = False,
    ) -> None:
        super().__init__(target, run_id, token=token, tls=tls, allow_plaintext=allow_plaintext)
        self.worker_id = worker_id
        self.policy = policy
        self.rank = -1
        self.acked_batches = 0  # batches covered by this worker's last acknowledged commit
        self.world_size = 0  # the master's N at the last registration (elastic rescale)
        self._progress = (0.0, 0)  # (epoch, batches) for the next heartbeat
        self._lock = threading.Lock()
        self._rewind: Rewind | None = None
        # Held by the training thread for a whole call (all its attempts): the heartbeat
        # thread only registers again while no call is in flight (see _beat_loop).
        self._in_call = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # ------------------------------------------------------------ calls
    def _retrying(self, fn: Callable[[], T], what: str) -> T:
        def count(_attempt: int, _sleep: float, _exc: BaseException) -> None:
            metrics.RETRIES.inc()

        return retry.call_with_retry(fn, self.policy, what=what, on_retry=count)

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """`fn` with retries; registers again (once per refusal) when the master forgot us."""
        with self._in_call:
            while True:
                self._raise_rewind()
                try:
                    return self._retrying(fn, what)
                except grpc.RpcError as exc:
                    if not needs_register(exc):
                        raise
                log.warning("master does not know rank %d any more: registering again", self.rank)
                self._rejoin()

    def register(self, rank: int = -1, worker_id: str = "") -> Registration:
        reg = self._retrying(
            lambda: ParameterServerClient.register(self, rank, worker_id or self.worker_id),
            "register",
        )
        with self._lock:
            self.rank = reg.rank
            self.acked_batches = max(self.acked_batches, reg.resume_batches)
            self.world_size = reg.world_size
        return reg

    def _rejoin(self) -> None:
        with self._lock:
            rank, acked = self.rank, self.acked_batches
        reg = self._retrying(
            lambda: ParameterServerClient.register(self, rank, self.worker_id), "register"
        )
        metrics.REJOINS.inc()
        log.warning("rank %d registered again; master resumes it at batch %d (worker at %d)",
                    rank, reg.resume_batches, acked)  # fmt: skip
        # A master resumed with another world size (elastic rescale) re-partitioned the
        # rows: this rank's partition and batch count changed, so it restarts from there too.
        rescaled = bool(self.world_size) and reg.world_size != self.world_size
        if rescaled or reg.resume_batches < acked:
            with self._lock:
                self.acked_batches = reg.resume_batches
                self.world_size = reg.world_size
                self._rewind = Rewind(reg)

    def _raise_rewind(self) -> None:
        with self._lock:
            rewind, self._rewind = self._rewind, None
        if rewind is not None:
            raise rewind

    def pull(self, rank: int) -> Pulled:
        return self._call(lambda: ParameterServerClient.pull(self, rank), "pull")

    def commit(
        self, vector: torch.Tensor, header: pb.CommitHeader
    ) -> tuple[pb.CommitResponse, int]:
        def attempt() -> tuple[pb.CommitResponse, int]:
            reply = ParameterServerClient.commit(self, vector, header)
            # Still inside the call (_in_call held): a rejoin from the heartbeat thread
            # never compares the master's resume point with a stale acked_batches.
            with self._lock:
                self.acked_batches = max(self.acked_batches, int(header.batches_done))
            return reply

        return self._call(attempt, "commit")

    def pull_and_commit(
        self,
        rank: int,
        header: pb.CommitHeader,
        contribution_of: Callable[[torch.Tensor], torch.Tensor],
        *,
        one_chunk: bool = False,
    ) -> Exchanged:
        return self._exchange_once(
            lambda: ParameterServerClient.pull_and_commit(
                self, rank, header, contribution_of, one_chunk=one_chunk
            ),
            header,
        )

    def commit_and_pull(
        self, vector: torch.Tensor, header: pb.CommitHeader, *, one_chunk: bool = False
    ) -> Exchanged:
        return self._exchange_once(
            lambda: ParameterServerClient.commit_and_pull(
                self, vector, header, one_chunk=one_chunk
            ),
            header,
        )

    def _exchange_once(self, fn: Callable[[], Exchanged], header: pb.CommitHeader) -> Exchanged:
        """One Exchange attempt, without retries: when it breaks off (ExchangeFailed), the
        Exchanger finishes the window with pull() and commit(), which retry and register
        again. An acknowledged commit moves `acked_batches` as commit() does."""
        ack = None
        with self._in_call:
            self._raise_rewind()
            try:
                done = fn()
                ack = done.ack
                return done
            except ExchangeFailed as exc:
                ack = exc.ack
                raise
            finally:
                if ack is not None:
                    with self._lock:
                        self.acked_batches = max(self.acked_batches, int(header.batches_done))

    def report_progress(self, epoch: float, batches_done: int) -> None:
        """Progress for the heartbeat thread's next beat (no call: training never waits)."""
        self._progress = (epoch, batches_done)

    def leave(self, rank: int, reason: str = "") -> None:
        """Best effort: a finished run's master may already be gone."""
        self.stop_heartbeats()
        try:
            ParameterServerClient.leave(self, rank, reason)
        except grpc.RpcError as exc:
            log.info("leave not acknowledged (%s): the run is over anyway", exc.code().name)

    # -------------------------------------------------------- heartbeats
    def start_heartbeats(self, interval: float) -> None:
        self._beat = threading.Thread(
            target=self._beat_loop, args=(interval,), name="heartbeat", daemon=True
        )
        self._beat.start()

    def stop_heartbeats(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=5)

    def _beat_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            epoch, batches = self._progress
            try:
                self.heartbeat(self.rank, epoch, batches, timeout=max(interval, 1.0))
            except grpc.RpcError as exc:
                metrics.HEARTBEAT_FAILURES.inc()
                if needs_register(exc) and not self._stop.is_set():
                    # Never while a call is in flight: a commit retried across a master
                    # restart would reach the master right after this registration and be
                    # folded *before* a Rewind (set here) could stop it; its sequence would
                    # then make the master drop the redone, acknowledged-but-lost commits
                    # as duplicates. The call itself registers again and rewinds instead.
                    if not self._in_call.acquire(blocking=False):
                        continue
                    try:
                        self._rejoin()  # back in the run without waiting for the next commit
                    except Exception as err:  # the main thread's next call retries it
                        log.info("re-registration from the heartbeat thread failed: %s", err)
                    finally:
                        self._in_call.release()
                else:
                    log.debug("heartbeat failed: %s", exc.code().name)
