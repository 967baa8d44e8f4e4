"""The parameter service over real gRPC on loopback: streaming, refusals, status, health."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.specs import toy_spec
from trafficdl_master.center import Center
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.state import CenterState
from trafficdl_worker.exchange import CommitProgress, Exchanger

from trafficdl.config import DistConfig
from trafficdl.cost import cost
from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

N_ELEMENTS = 6_000_000  # 24 MB of float32: far above gRPC's 4 MiB message limit


@pytest.fixture()
def master() -> Iterator[tuple[str, ParameterServerServicer]]:
    spec = toy_spec(DistConfig(workers=2, chunk_bytes=1 << 20))
    vec = torch.arange(N_ELEMENTS, dtype=torch.float32)
    center = Center(CenterState(vector=vec, world_size=2), get_rule("aeasgd"))
    servicer = ParameterServerServicer(spec, center)
    server, port, _ = make_master_server(servicer, "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None).wait()


def test_register_pull_commit_status_and_health(
    master: tuple[str, ParameterServerServicer],
) -> None:
    target, _ = master
    clients = [ParameterServerClient(target, "r1") for _ in range(2)]
    regs: dict[int, object] = {}
    threads = [
        threading.Thread(target=lambda i=i: regs.__setitem__(i, clients[i].register(-1, f"h{i}")))
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.rank for r in regs.values()) == [0, 1]
    reg = regs[0]
    assert torch.equal(reg.center, torch.arange(N_ELEMENTS, dtype=torch.float32))
    assert RunSpec.from_json(reg.run_config_json).dist.workers == 2

    # One AEASGD exchange over the wire: the centre moves by exactly E.
    ex = Exchanger(
        clients[0],
        get_rule("aeasgd"),
        rank=reg.rank,
        alpha=0.5,
        center=reg.center,
        counter=reg.update_counter,
    )
    local = reg.center + 2.0
    after = ex.exchange(local.clone(), CommitProgress(batches_done=3, samples_done=150, epoch=0.5))
    assert torch.allclose(after, reg.center + 1.0)
    pulled = clients[1].pull(1)
    assert pulled.update_counter == 1
    assert torch.allclose(pulled.center, reg.center + 1.0)

    st = clients[1].status()
    assert st.phase == pb.RUN_PHASE_RUNNING and st.world_size == 2
    assert st.workers_connected == 2 and st.commits_total == 1 and st.update_counter == 1
    assert st.training_seconds > 0 and st.epochs == 2 and st.currency == "EUR"
    assert st.cost == pytest.approx(cost(2, st.training_seconds, 0.698, 0.698), rel=0.05)

    health = health_pb2_grpc.HealthStub(clients[0].channel)
    for service in ("", "trafficdl.rpc.v1.ParameterServer"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    for c in clients:
        c.close()


def test_refusals_carry_clear_codes(master: tuple[str, ParameterServerServicer]) -> None:
    target, servicer = master
    wrong_run = ParameterServerClient(target, "other")
    with pytest.raises(grpc.RpcError) as err:
        wrong_run.status()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "serves run 'r1'" in err.value.details()

    bad_version = ParameterServerClient(target, "r1")
    bad_version.model_version = "v2"
    with pytest.raises(grpc.RpcError) as err:
        bad_version.commit(torch.zeros(N_ELEMENTS), pb.CommitHeader(rank=0))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model version" in err.value.details()

    bad_size = ParameterServerClient(target, "r1")
    bad_size.model_version = "v1"
    with pytest.raises(grpc.RpcError) as err:
        bad_size.commit(torch.zeros(10), pb.CommitHeader(rank=0))
    # Refused from its header, before its bytes are read (trafficdl_master.validation).
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert servicer.center.state.commits_rejected == 2
    assert servicer.center.state.update_counter == 0
    for c in (wrong_run, bad_version, bad_size):
        c.close()


def test_half_precision_on_the_wire(master: tuple[str, ParameterServerServicer]) -> None:
    target, servicer = master
    servicer.center.state.vector = torch.linspace(-1, 1, N_ELEMENTS)
    object.__setattr__(servicer.spec, "dist", DistConfig(workers=2, wire_dtype="bfloat16"))
    client = ParameterServerClient(target, "r1")
    pulled = client.pull(0)
    assert pulled.nbytes == 2 * N_ELEMENTS
    assert torch.allclose(pulled.center, servicer.center.state.vector, atol=1e-2)
    client.close()
