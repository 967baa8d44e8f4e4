"""The gRPC servicer: wire <-> domain only; the centre's math lives in center.py.

Each RPC converts its messages (headers, streamed chunks) to domain calls on
`Center` and back, maps domain refusals to gRPC status codes, and counts bytes
and calls for Prometheus. `make_master_server` is the one place the server is
assembled (servicer + standard health service + transport options), so TLS and
auth interceptors are passed through without touching the servicer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from trafficdl.distributed.spec import RunSpec
from trafficdl.rpc import security
from trafficdl.rpc.framing import (
    FrameCache,
    Frames,
    chunk_or,
    head_and_chunks,
    one_message,
    receive,
    serialize,
)
from trafficdl.rpc.tensors import TensorWireError
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc
from trafficdl_master import metrics
from trafficdl_master.center import Center, CenterError, NotRegistered
from trafficdl_master.snapshot_store import CheckpointError
from trafficdl_master.state import CommitInfo, Progress
from trafficdl_master.validation import CommitRefused, check_header, check_values

log = logging.getLogger("trafficdl.master")
SERVICE_NAME = "trafficdl.rpc.v1.ParameterServer"


class Refusal(Exception):
    """A commit the master does not acknowledge: the gRPC status and message it answers."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


PHASE_ENUM = {
    "waiting": pb.RUN_PHASE_WAITING,
    "running": pb.RUN_PHASE_RUNNING,
    "evaluating": pb.RUN_PHASE_EVALUATING,
    "succeeded": pb.RUN_PHASE_SUCCEEDED,
    "failed": pb.RUN_PHASE_FAILED,
}
ALGORITHM_ENUM = {
    "aeasgd": pb.ALGORITHM_AEASGD,
    "easgd": pb.ALGORITHM_EASGD,
    "downpour": pb.ALGORITHM_DOWNPOUR,
    "adag": pb.ALGORITHM_ADAG,
    "dynsgd": pb.ALGORITHM_DYNSGD,
}


class ParameterServerServicer(pb_grpc.ParameterServerServicer):
    """Serves one run: `spec` says what it is, `center` holds its state."""

    def __init__(self, spec: RunSpec, center: Center) -> None:
        self.spec = spec
        self.center = center
        self.frames = FrameCache()
        self.figures: dict[str, Any] | None = None
        # Called with the update counter before a commit is acknowledged (recovery.py).
        self.on_committed: Callable[[int], None] | None = None
        # Or, folding and logging each commit before its ack (recovery.Checkpointer.attach).
        self.durable: Any = None
        # "unix:<path>" of the same-node data plane (dataplane.py), told to registering workers.
        self.data_plane = ""

    # ------------------------------------------------------------ helpers
    def _check_run(self, run_id: str, context: grpc.ServicerContext) -> None:
        if run_id and run_id != self.spec.run_id:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this master serves run {self.spec.run_id!r}, not {run_id!r}",
            )

    def _centre(self) -> Frames:
        """The centre's counter, header and chunk messages (cut once per counter under
        the centre's lock, then shared by every pull: framing.FrameCache)."""
        dist, version = self.spec.dist, self.spec.model_version
        frames = self.center.read(
            lambda counter, vector: self.frames.frames(
                counter,
                vector,
                dtype=dist.wire_dtype,
                chunk_bytes=dist.chunk_bytes,
                model_version=version,
            )
        )
        metrics.PULLS.inc()
        metrics.PULL_BYTES.inc(frames.info.num_bytes)
        return frames

    # --------------------------------------------------------------- rpcs
    def Register(
        self, request: pb.RegisterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RegisterResponse]:
        self._check_run(request.run_id, context)
        try:
            rank = self.center.register(request.rank, request.worker_id, wait=context.is_active)
        except CenterError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        frames = self._centre()
        w = self.center.state.workers[rank]
        yield pb.RegisterResponse(
            info=pb.RegisterInfo(
                rank=rank,
                world_size=self.center.state.world_size,
                run_config_json=self.spec.to_json(),
                update_counter=frames.version,
                resume_batches=w.acked_batches,  # last acknowledged commit, not heartbeats
                tensor=frames.info,
                data_plane=self.data_plane,
            )
        )
        yield from frames.messages  # serialized RegisterResponse{chunk} messages

    def Pull(
        self, request: pb.PullRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.PullResponse]:
        self._check_run(request.run_id, context)
        frames = self._centre()
        yield pb.PullResponse(
            header=pb.PullHeader(update_counter=frames.version, tensor=frames.info)
        )
        yield from frames.messages  # serialized PullResponse{chunk} messages

    def Commit(
        self, request_iterator: Iterator[pb.CommitRequest], context: grpc.ServicerContext
    ) -> pb.CommitResponse:
        t0 = time.perf_counter()
        first = next(request_iterator, None)
        if not isinstance(first, pb.CommitRequest) or first.WhichOneof("part") != "header":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a commit starts with its header")
        return self._commit(first.header, request_iterator, context, t0)

    def Exchange(
        self,
        request_iterator: Iterator[pb.ExchangeRequest | memoryview],
        context: grpc.ServicerContext,
    ) -> Iterator[bytes]:
        """Pull then commit (elastic rules) or commit then pull (delta rules), one call.

        Headers travel with their tensor's first chunk, and a commit-first ack with
        the centre's header and first chunk (serialized messages concatenated: a
        protobuf parser merges them into one message)."""
        t0 = time.perf_counter()
        first = next(request_iterator, None)
        pull_first = isinstance(first, pb.ExchangeRequest) and first.HasField("pull")
        if pull_first:
            self._check_run(first.pull.run_id, context)
            yield from self._centre_messages(pb.ExchangeResponse())
            first = next(request_iterator, None)
            t0 = time.perf_counter()
        if not isinstance(first, pb.ExchangeRequest) or not first.HasField("header"):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "an exchange is a pull then a commit header, or a commit header first",
            )
        ack = pb.ExchangeResponse(
            ack=self._commit(first.header, request_iterator, context, t0, first.chunk)
        )
        if pull_first or first.header.final:
            yield ack.SerializeToString()
        else:
            yield from self._centre_messages(ack)

    def PullOne(self, request: pb.PullOneRequest, context: grpc.ServicerContext) -> bytes:
        """The centre's header and its one chunk in one message (a one-chunk model)."""
        self._check_run(request.run_id, context)
        return self._centre_one(pb.PullOneResponse(), context)

    def CommitOne(
        self, request: pb.CommitOneRequest, context: grpc.ServicerContext
    ) -> pb.CommitOneResponse | bytes:
        """A commit's header and its one chunk in one message; the ack, with the centre
        after the fold when `pull` is set and the commit is not final."""
        t0 = time.perf_counter()
        if not request.HasField("header"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a commit needs its header")
        ack = self._commit(request.header, iter(()), context, t0, request.chunk)
        if request.HasField("pull") and not request.header.final:
            return self._centre_one(pb.CommitOneResponse(ack=ack), context)
        return pb.CommitOneResponse(ack=ack)

    def _centre_one(
        self, head: pb.PullOneResponse | pb.CommitOneResponse, context: grpc.ServicerContext
    ) -> bytes:
        frames = self._centre()
        if len(frames.messages) > 1:
            context.abort(grpc.StatusCode.OUT_OF_RANGE, "the centre is more than one chunk")
        head.header.CopyFrom(pb.PullHeader(update_counter=frames.version, tensor=frames.info))
        return one_message(head, frames.messages)

    def _centre_messages(self, head: pb.ExchangeResponse) -> Iterator[bytes]:
        """`head` with the centre's header and first chunk, then its other chunks."""
        frames = self._centre()
        head.header.CopyFrom(pb.PullHeader(update_counter=frames.version, tensor=frames.info))
        return head_and_chunks(head, frames.messages)

    def _commit(
        self,
        h: pb.CommitHeader,
        parts: Iterator[pb.CommitRequest | pb.ExchangeRequest | memoryview],
        context: grpc.ServicerContext,
        t0: float,
        first_chunk: bytes = b"",
    ) -> pb.CommitResponse:
        """Receive, validate, fold and (checkpoint before) acknowledge one commit."""
        self._check_run(h.run_id, context)
        try:
            contribution = self._receive(h, parts, first_chunk)
        except CommitRefused as exc:
            self.refused(h.rank, exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"commit refused: {exc}")
        try:
            return self.fold(h, contribution, t0)
        except Refusal as exc:
            context.abort(exc.code, exc.message)

    def refused(self, rank: int, exc: CommitRefused) -> None:
        """Count a commit refused for its contents (header or values)."""
        metrics.COMMITS_REJECTED.inc()
        metrics.COMMITS_INVALID.labels(exc.reason).inc()
        self.center.reject()
        log.warning("refused a commit of rank %d: %s", rank, exc)

    def fold(self, h: pb.CommitHeader, contribution: torch.Tensor, t0: float) -> pb.CommitResponse:
        """Fold (and log, or checkpoint, before acknowledging) a validated commit; the
        ack. Both transports call it (this servicer and the same-node data plane).
        Raises Refusal with the gRPC status the refusal maps to."""
        metrics.COMMIT_BYTES.inc(h.tensor.num_bytes or 4 * contribution.numel())
        info = CommitInfo(
            rank=h.rank,
            based_on_counter=h.based_on_counter,
            sequence=h.sequence,
            batches_done=h.batches_done,
            samples_done=h.samples_done,
            epoch=h.epoch,
            loss=h.loss,
            accuracy=h.accuracy,
            window_batches=max(h.window_batches, 1),
            final=h.final,
            elapsed_seconds=h.elapsed_seconds,
            blocked_seconds=h.blocked_seconds,
            lag_batches=h.lag_batches,
        )
        fold = self.center.commit if self.durable is None else self.durable.commit
        try:
            result = fold(info, contribution)  # with `durable`: folded, logged, fsynced
        except NotRegistered as exc:  # not a bad commit: the worker registers again and resends
            raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except CenterError as exc:
            metrics.COMMITS_REJECTED.inc()
            raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except CheckpointError as exc:  # folded, not durable: no ack (as below)
            log.error("commit of rank %d folded but not logged: %s", h.rank, exc)
            raise Refusal(grpc.StatusCode.UNAVAILABLE, f"commit log failed: {exc}") from None
        if self.on_committed is not None:
            try:
                self.on_committed(result.update_counter)  # checkpoint before acknowledging
            except CheckpointError as exc:
                # Folded but not durable: no ack. The worker retries the same sequence,
                # which is deduplicated and saved again once the disk lets us.
                log.error("commit of rank %d folded but not checkpointed: %s", h.rank, exc)
                raise Refusal(grpc.StatusCode.UNAVAILABLE, f"checkpoint failed: {exc}") from None
        if result.applied:
            metrics.COMMITS.inc()
            metrics.STALENESS.observe(result.staleness)
            metrics.COMMIT_LATENCY.observe(time.perf_counter() - t0)
        return pb.CommitResponse(
            update_counter=result.update_counter,
            staleness=result.staleness,
            run_done=result.run_done,
        )

    def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.ServicerContext
    ) -> pb.HeartbeatResponse:
        self._check_run(request.run_id, context)
        try:
            counter = self.center.heartbeat(request.rank, request.epoch, request.batches_done)
        except NotRegistered as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except CenterError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.HeartbeatResponse(update_counter=counter, run_done=self.center.done.is_set())

    def Leave(self, request: pb.LeaveRequest, context: grpc.ServicerContext) -> pb.LeaveResponse:
        self._check_run(request.run_id, context)
        try:
            self.center.leave(request.rank, request.reason)
        except CenterError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.LeaveResponse()

    def _receive(
        self,
        h: pb.CommitHeader,
        parts: Iterator[pb.CommitRequest | pb.ExchangeRequest | memoryview],
        first_chunk: bytes = b"",
    ) -> torch.Tensor:
        """The commit's tensor, validated (validation.py) before and after it is read."""
        check_header(
            h.tensor,
            model_version=self.spec.model_version,
            wire_dtype=self.spec.dist.wire_dtype,
            num_elements=self.center.state.vector.numel(),
        )
        try:
            contribution = receive(
                h.tensor, parts, expected_version=self.spec.model_version, first=first_chunk
            )
        except TensorWireError as exc:
            raise CommitRefused("stream", str(exc)) from None
        check_values(contribution)
        return contribution

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        self._check_run(request.run_id, context)
        return status_message(self.spec, self.center, self.figures)


def status_message(
    spec: RunSpec, center: Center, figures: dict[str, Any] | None
) -> pb.StatusResponse:
    """Every StatusResponse field from the run's live state."""
    p: Progress = center.progress(spec.train.epochs)
    seconds = center.training_seconds()
    msg = pb.StatusResponse(
        run_id=spec.run_id,
        phase=PHASE_ENUM[p.phase],
        message=p.message,
        model=spec.train.model,
        algorithm=ALGORITHM_ENUM[spec.dist.algorithm],
        world_size=spec.dist.workers,
        workers_connected=p.connected,
        workers_finished=p.finished,
        workers_lost=p.lost,
        epoch=p.epoch,
        epochs=spec.train.epochs,
        progress=p.ratio,
        update_counter=p.update_counter,
        commits_total=p.commits_total,
        commits_rejected=p.commits_rejected,
        training_seconds=seconds,
        wtpe_seconds=p.wtpe(seconds),
        node_hours=spec.node_hours_of(seconds),
        cost=spec.cost_of(seconds),
        currency=spec.dist.currency,
        restarts=p.restarts,
    )
    if figures:
        msg.figures.CopyFrom(
            pb.ClassificationFigures(
                accuracy=figures["accuracy"],
                macro_recall=figures["macro_recall"],
                macro_precision=figures.get("macro_precision", 0.0),
                macro_f1=figures["macro_f1"],
                labels=list(figures.get("labels", spec.label_names)),
                confusion=[int(v) for row in figures["confusion"] for v in row],
            )
        )
    return msg


def add_to_server(servicer: ParameterServerServicer, server: grpc.Server) -> None:
    """Register the servicer like the generated `add_ParameterServerServicer_to_server`,
    except for the tensors: Register, Pull, Exchange and PullOne send pre-serialized
    chunk messages, and Commit's and Exchange's chunks reach the servicer as views of
    the received bytes. The bytes on the wire are the proto's, so generated clients
    work unchanged."""
    service = pb.DESCRIPTOR.services_by_name["ParameterServer"]
    handlers = {}
    for method in service.methods:
        request = getattr(pb, method.input_type.name)
        streamed = method.name in ("Commit", "Exchange")
        deserialize = chunk_or(request) if streamed else request.FromString
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)


def make_master_server(
    servicer: ParameterServerServicer,
    address: str,
    *,
    token: str | None = None,
    tls: security.ServerTls | None = None,
    allow_plaintext: bool = False,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """The master's server: parameter service + grpc.health.v1 (for Kubernetes probes).

    With `token`, every call but the health service's needs it (UNAUTHENTICATED
    otherwise, counted in trafficdl_master_auth_rejected_total); `tls` adds TLS,
    mutual when it names a client CA. A token without TLS needs a loopback
    `address` or `allow_plaintext` (security.SecurityError otherwise).
    """
    world = servicer.center.state.world_size
    # Threads: a synchronous barrier holds one per waiting worker.
    server, port = security.make_server(
        address,
        token,
        max_workers=max(16, 2 * world + 8),
        tls=tls,
        on_reject=lambda reason, _method: metrics.AUTH_REJECTED.labels(reason).inc(),
        allow_plaintext=allow_plaintext,
    )
    add_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer
