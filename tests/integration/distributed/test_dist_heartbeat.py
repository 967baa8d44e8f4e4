"""A worker's heartbeat over real gRPC: `heartbeat()` sends one, `report_progress()` only
records what the heartbeat thread sends every `heartbeat_seconds`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import torch
from support.specs import toy_spec
from trafficdl_master.center import Center
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.state import CenterState
from trafficdl_worker.resilience import ResilientClient

from trafficdl.optim import get_rule


@pytest.fixture()
def served() -> Iterator[tuple[ResilientClient, Center]]:
    spec = toy_spec()
    center = Center(CenterState(vector=torch.zeros(100), world_size=1), get_rule("aeasgd"))
    server, port, _ = make_master_server(ParameterServerServicer(spec, center), "127.0.0.1:0")
    server.start()
    client = ResilientClient(f"127.0.0.1:{port}", "r1", worker_id="h0")
    try:
        yield client, center
    finally:
        client.stop_heartbeats()
        client.close()
        server.stop(None).wait()


def test_heartbeat_sends_and_report_progress_only_records(
    served: tuple[ResilientClient, Center],
) -> None:
    client, center = served
    rank = client.register(-1).rank
    reply = client.heartbeat(rank, 0.25, 3)
    assert reply.update_counter == 0 and not reply.run_done
    worker = center.state.workers[rank]
    assert (worker.epoch, worker.batches_done) == (0.25, 3)  # the master heard it
    client.report_progress(0.5, 6)
    time.sleep(0.2)
    assert (worker.epoch, worker.batches_done) == (0.25, 3)  # recorded, not sent


def test_the_heartbeat_thread_sends_the_reported_progress(
    served: tuple[ResilientClient, Center],
) -> None:
    client, center = served
    rank = client.register(-1).rank
    client.report_progress(0.5, 6)
    client.start_heartbeats(0.05)
    worker = center.state.workers[rank]
    deadline = time.monotonic() + 10
    while worker.batches_done < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (worker.epoch, worker.batches_done) == (0.5, 6)
    client.report_progress(1.0, 12)
    deadline = time.monotonic() + 10
    while worker.batches_done < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (worker.epoch, worker.batches_done) == (1.0, 12)


def test_a_heartbeat_from_an_unknown_rank_is_refused(
    served: tuple[ResilientClient, Center],
) -> None:
    client, _ = served
    client.register(-1)
    with pytest.raises(grpc.RpcError) as err:
        client.heartbeat(5, 0.1, 1)  # outside the world of 1
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
