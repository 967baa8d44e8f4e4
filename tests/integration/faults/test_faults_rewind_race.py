"""A worker that must rewind never gets a commit past the batches the master lost.

The race behind a rare `commits_total` 299 != 300 in
test_faults_master_loss.py::test_corrupt_newest_checkpoint_falls_back_to_the_previous:
the master restarts from an older checkpoint than the worker's last acknowledged
commit (a torn newest file), while the worker's next commit is being retried
across the outage. If the heartbeat thread registered the rank again first, the
retried commit (sequence 6) was folded before the Rewind could stop it; the
worker then redid batches 3..4 from the resume point (batch 2), and the master
dropped that redone commit (sequence 4 <= 6) as a duplicate: an acknowledged
commit lost, one commit short. Now only the call itself registers again while
it is in flight, so it rewinds instead of committing past the gap.

In-process master (real gRPC on loopback) restored as after such a restart; its
Commit handler holds the retried commit until the heartbeat thread has had
several chances to register again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
import torch
from support.specs import toy_spec
from trafficdl_master.center import Center
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.state import CenterState
from trafficdl_worker.resilience import ResilientClient, Rewind

from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule
from trafficdl.rpc import retry
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

HEARTBEAT_S = 0.05
POLICY = retry.RetryPolicy(initial_backoff_s=0.02, max_backoff_s=0.1, max_attempts=20,
                           deadline_s=10)  # fmt: skip


class GatedServicer(ParameterServerServicer):
    """Holds each Commit until three heartbeats (or a registration) came in after it."""

    def __init__(self, spec: RunSpec, center: Center) -> None:
        super().__init__(spec, center)
        self.cond = threading.Condition()
        self.heartbeats = self.registers = 0

    def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.ServicerContext
    ) -> pb.HeartbeatResponse:
        with self.cond:
            self.heartbeats += 1
            self.cond.notify_all()
        return super().Heartbeat(request, context)

    def Register(
        self, request: pb.RegisterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RegisterResponse]:
        with self.cond:
            self.registers += 1
            self.cond.notify_all()
        yield from super().Register(request, context)

    def Commit(
        self, request_iterator: Iterator[pb.CommitRequest], context: grpc.ServicerContext
    ) -> pb.CommitResponse:
        with self.cond:
            beats, regs = self.heartbeats, self.registers
            self.cond.wait_for(
                lambda: self.heartbeats >= beats + 3 or self.registers > regs, timeout=10
            )
        return super().Commit(request_iterator, context)


@pytest.fixture()
def restored() -> Iterator[tuple[str, Center]]:
    """A master restored from the checkpoint *before* rank 0's commit at batch 4."""
    spec = toy_spec()
    state = CenterState(vector=torch.zeros(64), world_size=1, update_counter=1,
                        commits_total=1, restarts=1)  # fmt: skip
    w = state.workers[0]
    w.registrations, w.commits, w.acked_batches, w.last_sequence = 1, 1, 2, 2
    center = Center(state, get_rule("aeasgd"))
    center.resume()
    server, port, _ = make_master_server(GatedServicer(spec, center), "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", center
    finally:
        server.stop(None).wait()


def _header(batches: int) -> pb.CommitHeader:
    return pb.CommitHeader(rank=0, based_on_counter=1, sequence=batches, batches_done=batches,
                           epoch=batches / 10, window_batches=2)  # fmt: skip


def test_retried_commit_is_not_folded_past_a_rewind(restored: tuple[str, Center]) -> None:
    target, center = restored
    client = ResilientClient(target, "r1", worker_id="h0", policy=POLICY)
    # What the worker knew before the master died: rank 0, commit at batch 4 acknowledged.
    client.rank, client.acked_batches, client.model_version = 0, 4, "v1"
    client.start_heartbeats(HEARTBEAT_S)
    try:
        with pytest.raises(Rewind) as rewind:
            client.commit(torch.ones(64), _header(6))  # the commit in flight at the crash
        assert rewind.value.registration.resume_batches == 2
        w = center.state.workers[0]
        assert (center.state.commits_total, center.state.update_counter, w.last_sequence) == (
            1, 1, 2), "a commit past the lost batches was folded"  # fmt: skip
        # The worker redoes batches 3..4 from the resume point: folded, not dropped.
        reply, _ = client.commit(torch.ones(64), _header(4))
        assert reply.update_counter == 2
        assert (center.state.commits_total, w.last_sequence, w.acked_batches) == (2, 4, 4)
    finally:
        client.stop_heartbeats()
        client.close()
