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
from trafficdl.rpc.retry import RETRYABLE_CODES
from trafficdl.rpc.tensors import (
    DEFAULT_CHUNK_BYTES,
    Assembler,
    chunk_messages,
    chunk_payload,
    encode,
)
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

SERVICE = "/trafficdl.rpc.v1.ParameterServer/"


def _serialize(message: bytes | Any) -> bytes:
    """Pre-serialized chunk messages pass through; protobuf messages are serialized."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def _receive(
    stream: Iterator[bytes],
    info: pb.TensorInfo,
    expected_version: str,
    message: Any,
) -> torch.Tensor:
    """The tensor announced by `info` from a stream of serialized `message` chunks."""
    asm = Assembler(info, expected_version)
    for raw in stream:
        payload = chunk_payload(raw)
        if payload is None:  # not the plain framing: let protobuf read it
            payload = memoryview(message.FromString(raw).chunk)
        asm.add(payload)
    return asm.tensor()


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


def _head_and_chunks(head: Any, data: bytes | memoryview, chunk_bytes: int) -> Iterator[bytes]:
    """`head` serialized with the first chunk of `data` in the same message, then the
    other chunks (serialized messages concatenated merge into one message)."""
    parts = chunk_messages(data, chunk_bytes)
    yield b"".join((head.SerializeToString(), next(parts, b"")))
    yield from parts


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
    def unimplemented(self) -> bool:
        """The master predates the Exchange rpc: use Pull and Commit from now on."""
        return self.cause.code() == grpc.StatusCode.UNIMPLEMENTED

    @property
    def finishable(self) -> bool:
        """Worth finishing with Pull and Commit: no Exchange rpc, a transient error, or
        a master that asks the rank to register again. Anything else (a refused
        commit, a wrong run) would be refused again: the caller raises `cause`."""
        code = self.cause.code()
        return (
            self.unimplemented
            or code in RETRYABLE_CODES
            or (
                code == grpc.StatusCode.FAILED_PRECONDITION
                and "register again" in (self.cause.details() or "")
            )
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
        self.channel = channel or security.make_channel(
            target, token, tls=tls, allow_plaintext=allow_plaintext
        )
        self.stub = pb_grpc.ParameterServerStub(self.channel)
        # The tensor-carrying calls read and write chunk messages as raw bytes
        # (tensors.chunk_messages / chunk_payload): same wire bytes, fewer copies.
        self._register = self.channel.unary_stream(
            SERVICE + "Register", request_serializer=_serialize, response_deserializer=None
        )
        self._pull = self.channel.unary_stream(
            SERVICE + "Pull", request_serializer=_serialize, response_deserializer=None
        )
        self._commit = self.channel.stream_unary(
            SERVICE + "Commit",
            request_serializer=_serialize,
            response_deserializer=pb.CommitResponse.FromString,
        )
        self._exchange = self.channel.stream_stream(
            SERVICE + "Exchange", request_serializer=_serialize, response_deserializer=None
        )
        # One-chunk models: the exchange as unary calls, while the master offers them.
        self.one_calls = True
        self._pull_one, self._commit_one = (
            self.channel.unary_unary(
                SERVICE + name,
                request_serializer=_serialize,
                response_deserializer=pb.ExchangeResponse.FromString,
            )
            for name in ("PullOne", "CommitOne")
        )

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
        center = _receive(stream, info.tensor, "", pb.RegisterResponse)
        self.model_version = info.tensor.model_version
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
        center = _receive(stream, header.tensor, self.model_version, pb.PullResponse)
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
        """One Exchange call, pull first (elastic rules): receive the centre, commit
        `contribution_of(centre)` against its counter, return the ack. Raises
        ExchangeFailed when the call breaks off (after it, nothing is pending).
        `one_chunk`: the vector fits one chunk, so PullOne + CommitOne do it (an
        Exchange call when the master answers them UNIMPLEMENTED)."""
        header.run_id = self.run_id
        if one_chunk and self.one_calls:
            pulled = contribution = None
            try:
                first = self._pull_one(pb.PullRequest(run_id=self.run_id, rank=rank))
                center = self._centre(first, iter(()))
                pulled = Pulled(first.header.update_counter, center, first.header.tensor.num_bytes)
                contribution = contribution_of(center)
                header.based_on_counter = pulled.update_counter
                return self._commit_once(contribution, header, pulled, pull=False)
            except grpc.RpcError as exc:
                if pulled is not None or exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise ExchangeFailed(exc, pulled=pulled, contribution=contribution) from exc
                self.one_calls = False  # an older master: its Exchange rpc from now on
        # The request stream is fed as the exchange goes (grpc reads it from a thread).
        requests: SimpleQueue[Iterable[Any] | None] = SimpleQueue()
        requests.put([pb.ExchangeRequest(pull=pb.PullRequest(run_id=self.run_id, rank=rank))])
        call = self._exchange(itertools.chain.from_iterable(iter(requests.get, None)))
        pulled = contribution = None
        try:
            first = _next(call, "header")
            center = self._centre(first, call, exact=True)
            pulled = Pulled(first.header.update_counter, center, first.header.tensor.num_bytes)
            contribution = contribution_of(center)
            enc = encode(contribution, self.wire_dtype, copy=False)
            header.based_on_counter = first.header.update_counter
            header.tensor.CopyFrom(enc.info(self.model_version))
            t0 = time.perf_counter()
            head = pb.ExchangeRequest(header=header)
            requests.put(_head_and_chunks(head, enc.data, self.chunk_bytes))
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
        head = pb.ExchangeRequest(header=header)
        if pull:
            head.pull.CopyFrom(pb.PullRequest(run_id=self.run_id, rank=header.rank))
        first = self._commit_one(next(_head_and_chunks(head, enc.data, self.chunk_bytes)))
        seconds = time.perf_counter() - t0
        if not first.HasField("ack"):
            raise MasterUnavailable("CommitOne answered without an ack")
        if pull and not header.final:
            if not first.HasField("header"):
                raise MasterUnavailable("exchange ack came without the centre")
            center = self._centre(first, iter(()))
            pulled = Pulled(first.header.update_counter, center, first.header.tensor.num_bytes)
        return Exchanged(first.ack, pulled, vector, enc.num_bytes, seconds)

    def commit_and_pull(
        self, vector: torch.Tensor, header: pb.CommitHeader, *, one_chunk: bool = False
    ) -> Exchanged:
        """One Exchange call, commit first (delta rules): send `vector` with `header`,
        receive the ack and then (unless `header.final`) the centre after the fold.
        Raises ExchangeFailed when the call breaks off. `one_chunk`: one CommitOne
        call instead (as pull_and_commit)."""
        if one_chunk and self.one_calls:
            try:
                return self._commit_once(vector, header, None, pull=True)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise ExchangeFailed(exc, contribution=vector) from exc
                self.one_calls = False  # nothing was committed: the Exchange rpc
        enc = encode(vector, self.wire_dtype, copy=False)
        header.run_id = self.run_id
        header.tensor.CopyFrom(enc.info(self.model_version))
        t0 = time.perf_counter()
        head = pb.ExchangeRequest(header=header)
        call = self._exchange(_head_and_chunks(head, enc.data, self.chunk_bytes))
        ack = None
        try:
            first = _next(call, "ack")
            ack = first.ack
            seconds = time.perf_counter() - t0
            pulled = None
            if not header.final:
                if not first.HasField("header"):
                    raise MasterUnavailable("exchange ack came without the centre")
                center = self._centre(first, call)
                pulled = Pulled(first.header.update_counter, center, first.header.tensor.num_bytes)
            _drain(call)
            return Exchanged(ack, pulled, vector, enc.num_bytes, seconds)
        except grpc.RpcError as exc:
            raise ExchangeFailed(exc, contribution=vector, ack=ack) from exc
        except BaseException:
            call.cancel()
            raise

    def _centre(
        self, first: pb.ExchangeResponse, stream: Iterator[bytes], *, exact: bool = False
    ) -> torch.Tensor:
        """The centre whose header and first chunk came in `first`; the rest from `stream`."""
        asm = Assembler(first.header.tensor, self.model_version)
        asm.add(first.chunk)
        if not exact or asm.filled < len(asm.buffer):
            for raw in stream:
                payload = chunk_payload(raw)
                if payload is None:  # not the plain framing: let protobuf read it
                    payload = memoryview(pb.ExchangeResponse.FromString(raw).chunk)
                asm.add(payload)
                if exact and asm.filled == len(asm.buffer):
                    break
        return asm.tensor()

    def heartbeat(self, rank: int, epoch: float, batches_done: int) -> pb.HeartbeatResponse:
        return self.stub.Heartbeat(
            pb.HeartbeatRequest(
                run_id=self.run_id, rank=rank, epoch=epoch, batches_done=batches_done
            ),
            timeout=30,
        )

    def leave(self, rank: int, reason: str = "") -> None:
        self.stub.Leave(pb.LeaveRequest(run_id=self.run_id, rank=rank, reason=reason), timeout=30)

    def status(self, timeout: float = 10.0) -> pb.StatusResponse:
        return self.stub.Status(pb.StatusRequest(run_id=self.run_id), timeout=timeout)
