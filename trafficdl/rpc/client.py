"""A typed client of the ParameterServer service: domain values in, domain values out.

Used by workers (register, pull, commit, heartbeat, leave), by the launcher's
progress view and by the operator (status). Tensors are streamed in chunks of
the run's size and wire dtype; byte counts are returned so callers can meter
them. Retries (issue 5, trafficdl.rpc.retry) wrap these methods from outside.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import torch

from trafficdl.errors import TrafficdlError
from trafficdl.rpc import security, transport
from trafficdl.rpc.tensors import DEFAULT_CHUNK_BYTES, assemble, chunks, encode
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc


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
    ) -> None:
        self.target = target
        self.run_id = run_id
        self.wire_dtype = wire_dtype
        self.chunk_bytes = chunk_bytes
        self.model_version = ""
        self.channel = channel or transport.make_channel(target, token=token, tls=tls)
        self.stub = pb_grpc.ParameterServerStub(self.channel)

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
        stream = self.stub.Register(
            pb.RegisterRequest(run_id=self.run_id, rank=rank, worker_id=worker_id)
        )
        first = next(stream)
        info = first.info
        parts = (m.chunk for m in stream)
        center = assemble(info.tensor, parts)
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
        stream = self.stub.Pull(pb.PullRequest(run_id=self.run_id, rank=rank))
        header = next(stream).header
        center = assemble(header.tensor, (m.chunk for m in stream), self.model_version)
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

        def messages() -> Iterator[pb.CommitRequest]:
            yield pb.CommitRequest(header=header)
            for part in chunks(enc.data, self.chunk_bytes):
                yield pb.CommitRequest(chunk=part)

        return self.stub.Commit(messages()), enc.num_bytes

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
