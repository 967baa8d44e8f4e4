"""A typed client of the ParameterServer service: domain values in, domain values out.

Used by workers (register, pull, commit, heartbeat, leave), by the launcher's
progress view and by the operator (status). Tensors are streamed in chunks of
the run's size and wire dtype; byte counts are returned so callers can meter
them. Retries (trafficdl.rpc.retry) wrap these methods from outside.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any

import grpc
import torch

from trafficdl.errors import TrafficdlError
from trafficdl.rpc import security
from trafficdl.rpc.framing import (
    SERVICE,
    chunk_messages,
    head_and_chunks,
    one_message,
    receive,
    serialize,
)
from trafficdl.rpc.retry import RETRYABLE_CODES
from trafficdl.rpc.tensors import DEFAULT_CHUNK_BYTES, encode
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

CentreHead = pb.ExchangeResponse | pb.PullOneResponse | pb.CommitOneResponse


def _drain(stream: Iterator[bytes]) -> None:
    """Read an exchange to its end (its status); nothing may follow what was read."""
    if next(stream, None) is not None:
        raise MasterUnavailable("exchange stream sent more than its parts")


def _next(stream: Iterator[bytes], part: str) -> pb.ExchangeResponse:
    """The next ExchangeResponse, which must carry `part`."""
    raw = next(stream, None)
    msg = None if raw is None else pb.ExchangeResponse.FromString(raw)
    if msg is None or not msg.HasField(part):
        raise MasterUnavailable(f"exchange stream broke its order: expected {part}")
    return msg


class MasterUnavailable(TrafficdlError):
    """The master cannot be reached or refused a call."""


@dataclass
class Registration:
    rank: int
    world_size: int
    run_config_json: str
    update_counter: int
    resume_batches: int
    center: torch.Tensor
    model_version: str
    nbytes: int


@dataclass
class Pulled:
    update_counter: int
    center: torch.Tensor
    nbytes: int


@dataclass
class Exchanged:
    """One Exchange call: the ack, the centre (pull first: the one the contribution
    was computed against; commit first: the one after the fold, None after a final
    commit), the contribution sent, its bytes and the commit's latency (header sent
    to ack received)."""

    ack: pb.CommitResponse
    pulled: Pulled | None
    contribution: torch.Tensor
    nbytes: int
    commit_seconds: float


class ExchangeFailed(TrafficdlError):
    """An Exchange call broke off. Says how far it got (the centre pulled, the
    contribution computed, the ack received) so the caller can finish the window
    with Pull and Commit, whose retries and deduplication by sequence apply."""

    def __init__(
        self,
        cause: grpc.RpcError,
        *,
        pulled: Pulled | None = None,
        contribution: torch.Tensor | None = None,
        ack: pb.CommitResponse | None = None,
    ) -> None:
        super().__init__(f"exchange failed: {cause.code()}: {cause.details()}")
        self.cause = cause
        self.pulled = pulled
        self.contribution = contribution
        self.ack = ack

    @property
    def finishable(self) -> bool:
        """Worth finishing with Pull and Commit: a transient error, or a master that asks
        the rank to register again. Anything else (a refused commit, a wrong run, an rpc
        the master lacks) would fail again: the caller raises `cause`."""
        code = self.cause.code()
        return code in RETRYABLE_CODES or (
            code == grpc.StatusCode.FAILED_PRECONDITION
            and "register again" in (self.cause.details() or "")
        )


class ParameterServerClient:
    """One channel to the master; methods map 1:1 to the service's rpcs."""

    def __init__(
        self,
        target: str,
        run_id: str = "",
        *,
        wire_dtype: str = "float32",
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        channel: grpc.Channel | None = None,
        token: str | None = None,
        tls: security.ClientTls | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        self.target = target
        self.run_id = run_id
        self.wire_dtype = wire_dtype
        self.chunk_bytes = chunk_bytes
        self.model_version = ""
        self.token = token  # also the data plane's (dataplane.py)
        self.data_plane = ""  # the latest registration's same-node data plane, if any
        self.channel = channel or security.make_channel(
            target, token, tls=tls, allow_plaintext=allow_plaintext
        )
        self.stub = pb_grpc.ParameterServerStub(self.channel)
        # The tensor-carrying calls read and write chunk messages as raw bytes
        # (framing.py): same wire bytes, fewer copies.
        self._register = self.channel.unary_stream(
            SERVICE + "Register", request_serializer=serialize, response_deserializer=None
        )
        self._pull = self.channel.unary_stream(
            SERVICE + "Pull", request_serializer=serialize, response_deserializer=None
        )
        self._commit = self.channel.stream_unary(
            SERVICE + "Commit",
            request_serializer=serialize,
            response_deserializer=pb.CommitResponse.FromString,
        )
        self._exchange = self.channel.stream_stream(
            SERVICE + "Exchange", request_serializer=serialize, response_deserializer=None
        )
        self._pull_one, self._commit_one = (
            self.channel.unary_unary(
                SERVICE + name, request_serializer=serialize, response_deserializer=reply.FromString
            )
            for name, reply in (
                ("PullOne", pb.PullOneResponse),
                ("CommitOne", pb.CommitOneResponse),
            )
        )
        # A one-chunk model's window as the unary PullOne/CommitOne calls (cheaper on
        # both ends); False: the streaming Exchange call instead (bench_exchange compares).
        self.one_calls = True

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self, timeout: float) -> None:
        """Block until the channel connects (the master is listening)."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise MasterUnavailable(
                f"master {self.target} not reachable in {timeout:.0f} s"
            ) from None

    def register(self, rank: int = -1, worker_id: str = "") -> Registration:
        stream = self._register(
            pb.RegisterRequest(run_id=self.run_id, rank=rank, worker_id=worker_id)
        )
        info = pb.RegisterResponse.FromString(next(stream)).info
        center = receive(info.tensor, stream, message=pb.RegisterResponse)
        self.model_version = info.tensor.model_version
        self.data_plane = info.data_plane
        return Registration(
            rank=info.rank,
            world_size=info.world_size,
            run_config_json=info.run_config_json,
            update_counter=info.update_counter,
            resume_batches=info.resume_batches,
            center=center,
            model_version=info.tensor.model_version,
            nbytes=info.tensor.num_bytes,
        )

    def pull(self, rank: int) -> Pulled:
        stream = self._pull(pb.PullRequest(run_id=self.run_id, rank=rank))
        header = pb.PullResponse.FromString(next(stream)).header
        center = receive(
            header.tensor, stream, message=pb.PullResponse, expected_version=self.model_version
        )
        return Pulled(header.update_counter, center, header.tensor.num_bytes)

    def commit(
        self, vector: torch.Tensor, header: pb.CommitHeader
    ) -> tuple[pb.CommitResponse, int]:
        """Stream `vector` with `header` (run id, tensor info filled here); returns bytes sent."""
        # A view of `vector` (no copy for float32): chunks copy it once, and the
        # caller leaves `vector` alone until commit() returns.
        enc = encode(vector, self.wire_dtype, copy=False)
        header.run_id = self.run_id
        header.tensor.CopyFrom(enc.info(self.model_version))

        def messages() -> Iterator[bytes | pb.CommitRequest]:
            yield pb.CommitRequest(header=header)
            yield from chunk_messages(enc.data, self.chunk_bytes)

        return self._commit(messages()), enc.num_bytes

    def pull_and_commit(
        self,
        rank: int,
        header: pb.CommitHeader,
        contribution_of: Callable[[torch.Tensor], torch.Tensor],
        *,
        one_chunk: bool = False,
    ) -> Exchanged:
        """One window, pull first (elastic rules): receive the centre, commit
        `contribution_of(centre)` against its counter, return the ack. Raises
        ExchangeFailed when a call breaks off (after it, nothing is pending).
        `one_chunk`: the vector fits one chunk, so PullOne + CommitOne do it;
        otherwise one streaming Exchange call."""
        header.run_id = self.run_id
        if one_chunk and self.one_calls:
            pulled = contribution = None
            try:
                first = self._pull_one(pb.PullOneRequest(run_id=self.run_id, rank=rank))
                pulled = self._pulled(first, ())
                contribution = contribution_of(pulled.center)
                header.based_on_counter = pulled.update_counter
                return self._commit_once(contribution, header, pulled, pull=False)
            except grpc.RpcError as exc:
                raise ExchangeFailed(exc, pulled=pulled, contribution=contribution) from exc
        # The request stream is fed as the exchange goes (grpc reads it from a thread).
        requests: SimpleQueue[Iterable[Any] | None] = SimpleQueue()
        requests.put([pb.ExchangeRequest(pull=pb.PullRequest(run_id=self.run_id, rank=rank))])
        call = self._exchange(itertools.chain.from_iterable(iter(requests.get, None)))
        pulled = contribution = None
        try:
            pulled = self._pulled(_next(call, "header"), call, exact=True)
            contribution = contribution_of(pulled.center)
            enc = encode(contribution, self.wire_dtype, copy=False)
            header.based_on_counter = pulled.update_counter
            header.tensor.CopyFrom(enc.info(self.model_version))
            t0 = time.perf_counter()
            head = pb.ExchangeRequest(header=header)
            requests.put(head_and_chunks(head, chunk_messages(enc.data, self.chunk_bytes)))
            requests.put(None)
            ack = _next(call, "ack").ack
            seconds = time.perf_counter() - t0
            _drain(call)
            return Exchanged(ack, pulled, contribution, enc.num_bytes, seconds)
        except grpc.RpcError as exc:
            raise ExchangeFailed(exc, pulled=pulled, contribution=contribution) from exc
        except BaseException:
            call.cancel()
            raise
        finally:
            requests.put(None)  # whatever happened, the request stream ends

    def _commit_once(
        self, vector: torch.Tensor, header: pb.CommitHeader, pulled: Pulled | None, pull: bool
    ) -> Exchanged:
        """One CommitOne call (header and the one chunk in one message)."""
        enc = encode(vector, self.wire_dtype, copy=False)
        header.run_id = self.run_id
        header.tensor.CopyFrom(enc.info(self.model_version))
        t0 = time.perf_counter()
        head = pb.CommitOneRequest(header=header)
        if pull:
            head.pull.CopyFrom(pb.PullRequest(run_id=self.run_id, rank=header.rank))
        first = self._commit_one(one_message(head, chunk_messages(enc.data, self.chunk_bytes)))
        seconds = time.perf_counter() - t0
        if not first.HasField("ack"):
            raise MasterUnavailable("CommitOne answered without an ack")
        if pull and not header.final:
            if not first.HasField("header"):
                raise MasterUnavailable("exchange ack came without the centre")
            pulled = self._pulled(first, ())
        return Exchanged(first.ack, pulled, vector, enc.num_bytes, seconds)

    def commit_and_pull(
        self, vector: torch.Tensor, header: pb.CommitHeader, *, one_chunk: bool = False
    ) -> Exchanged:
        """One window, commit first (delta rules): send `vector` with `header`, receive
        the ack and then (unless `header.final`) the centre after the fold. Raises
        ExchangeFailed when the call breaks off. `one_chunk`: one CommitOne call,
        otherwise one streaming Exchange call."""
        if one_chunk and self.one_calls:
            try:
                return self._commit_once(vector, header, None, pull=True)
            except grpc.RpcError as exc:
                raise ExchangeFailed(exc, contribution=vector) from exc
        enc = encode(vector, self.wire_dtype, copy=False)
        header.run_id = self.run_id
        header.tensor.CopyFrom(enc.info(self.model_version))
        t0 = time.perf_counter()
        head = pb.ExchangeRequest(header=header)
        call = self._exchange(head_and_chunks(head, chunk_messages(enc.data, self.chunk_bytes)))
        ack = None
        try:
            first = _next(call, "ack")
            ack = first.ack
            seconds = time.perf_counter() - t0
            pulled = None
            if not header.final:
                if not first.HasField("header"):
                    raise MasterUnavailable("exchange ack came without the centre")
                pulled = self._pulled(first, call)
            _drain(call)
            return Exchanged(ack, pulled, vector, enc.num_bytes, seconds)
        except grpc.RpcError as exc:
            raise ExchangeFailed(exc, contribution=vector, ack=ack) from exc
        except BaseException:
            call.cancel()
            raise

    def _pulled(self, first: CentreHead, stream: Iterable[bytes], *, exact: bool = False) -> Pulled:
        """The centre whose header and first chunk came in `first`; the rest from `stream`."""
        center = receive(
            first.header.tensor,
            stream,
            message=pb.ExchangeResponse,
            expected_version=self.model_version,
            first=first.chunk,
            exact=exact,
        )
        return Pulled(first.header.update_counter, center, first.header.tensor.num_bytes)

    def heartbeat(
        self, rank: int, epoch: float, batches_done: int, *, timeout: float = 30.0
    ) -> pb.HeartbeatResponse:
        """Tell the master this rank is alive and how far it got (between commits)."""
        return self.stub.Heartbeat(
            pb.HeartbeatRequest(
                run_id=self.run_id, rank=rank, epoch=epoch, batches_done=batches_done
            ),
            timeout=timeout,
        )

    def leave(self, rank: int, reason: str = "") -> None:
        self.stub.Leave(pb.LeaveRequest(run_id=self.run_id, rank=rank, reason=reason), timeout=30)

    def status(self, timeout: float = 10.0) -> pb.StatusResponse:
        return self.stub.Status(pb.StatusRequest(run_id=self.run_id), timeout=timeout)
