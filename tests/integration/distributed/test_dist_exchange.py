"""The Exchange rpc over real gRPC: one call per window, same guarantees as Pull + Commit;
and, for a model that fits one chunk, the unary PullOne + CommitOne calls. A master that
lacks one of them (UNIMPLEMENTED) is an error: no fallback path."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import torch
from support.specs import toy_spec
from trafficdl_master.center import Center
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.state import CenterState
from trafficdl_worker.exchange import CommitProgress, Exchanger

from trafficdl.config import DistConfig
from trafficdl.optim import get_rule
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

N = 10_000  # 40 KB of float32 in 4 KiB chunks: ten chunks, the first beside its header


def serve(algorithm: str, servicer_cls: type = ParameterServerServicer, chunk: int = 4096) -> tuple:
    spec = toy_spec(DistConfig(workers=1, chunk_bytes=chunk, algorithm=algorithm))
    center = Center(
        CenterState(vector=torch.arange(N, dtype=torch.float32), world_size=1), get_rule(algorithm)
    )
    servicer = servicer_cls(spec, center)
    server, port, _ = make_master_server(servicer, "127.0.0.1:0")
    server.start()
    client = ParameterServerClient(f"127.0.0.1:{port}", "r1", chunk_bytes=chunk)
    reg = client.register(-1, "h0")
    ex = Exchanger(client, get_rule(algorithm), rank=0, alpha=0.5, center=reg.center, counter=0)
    ex.exchange_max_bytes = 1 << 30  # Exchange for this ten-chunk model too
    return server, servicer, client, ex


@pytest.fixture()
def stop() -> Iterator[list]:
    started: list = []
    yield started
    for server, client in started:
        client.close()
        server.stop(None).wait()


def test_pull_first_exchange_folds_once_against_the_pulled_centre(stop: list) -> None:
    server, servicer, client, ex = serve("aeasgd")
    stop.append((server, client))
    start = torch.arange(N, dtype=torch.float32)
    after = ex.exchange(start + 2.0, CommitProgress(batches_done=1))
    # E = 0.5 * (x - centre) = 1: the worker keeps x - E, the centre gains E.
    assert torch.equal(after, start + 1.0)
    assert torch.equal(servicer.center.state.vector, start + 1.0)
    assert ex.counter == 0 and ex.combined  # based on the pulled centre, one Exchange call
    assert servicer.center.state.update_counter == 1
    assert servicer.center.state.workers[0].acked_batches == 1


def test_commit_first_exchange_returns_the_centre_after_the_fold(stop: list) -> None:
    server, servicer, client, ex = serve("downpour")
    stop.append((server, client))
    start = torch.arange(N, dtype=torch.float32)
    after = ex.exchange(start + 3.0, CommitProgress(batches_done=1))
    assert torch.equal(servicer.center.state.vector, start + 3.0)  # Δ = 3 folded once
    assert torch.equal(after, start + 3.0) and ex.counter == 1  # the centre after the fold
    final = ex.exchange(after + 1.0, CommitProgress(batches_done=2), final=True)
    assert torch.equal(final, after + 1.0)  # no centre after a final commit
    assert ex.run_done and servicer.center.state.update_counter == 2


def test_a_retried_sequence_is_acknowledged_not_folded_again(stop: list) -> None:
    server, servicer, client, _ = serve("downpour")
    stop.append((server, client))
    for _ in range(2):
        header = pb.CommitHeader(rank=0, sequence=5, batches_done=5, window_batches=1)
        done = client.commit_and_pull(torch.ones(N), header)
    assert done.ack.update_counter == 1 and servicer.center.state.update_counter == 1
    assert torch.equal(done.pulled.center, torch.arange(N, dtype=torch.float32) + 1.0)


def test_a_refused_commit_is_not_resent_through_commit(stop: list) -> None:
    server, servicer, client, ex = serve("aeasgd")
    stop.append((server, client))
    bad = torch.full((N,), float("nan"))
    with pytest.raises(grpc.RpcError) as err:
        ex.exchange(bad, CommitProgress(batches_done=1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert servicer.center.state.commits_rejected == 1  # refused once, not twice
    assert servicer.center.state.update_counter == 0


class OlderMaster(ParameterServerServicer):
    """A master from before the Exchange rpc: answers it UNIMPLEMENTED."""

    Exchange = pb_grpc.ParameterServerServicer.Exchange


def test_a_master_without_exchange_is_an_error_not_a_switch(stop: list) -> None:
    # Master and workers run one release of v1, which has Exchange: no fallback path.
    server, servicer, client, ex = serve("aeasgd", OlderMaster)
    stop.append((server, client))
    with pytest.raises(grpc.RpcError) as err:
        ex.exchange(torch.arange(N, dtype=torch.float32) + 2.0, CommitProgress(batches_done=1))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert ex.combined  # no silent switch to Pull + Commit
    assert servicer.center.state.update_counter == 0
    assert servicer.center.state.commits_total == 0


def test_generated_stubs_read_the_hand_framed_chunks(stop: list) -> None:
    server, _, client, _ = serve("aeasgd")
    stop.append((server, client))
    stub = pb_grpc.ParameterServerStub(client.channel)
    parts = list(stub.Pull(pb.PullRequest(run_id="r1", rank=0)))
    data = b"".join(p.chunk for p in parts[1:])
    assert parts[0].header.tensor.num_bytes == len(data) == 4 * N
    assert torch.equal(
        torch.frombuffer(bytearray(data), dtype=torch.float32), torch.arange(N).float()
    )


def test_a_many_chunk_model_keeps_pull_and_commit_by_default(stop: list) -> None:
    server, servicer, client, ex = serve("aeasgd", OlderMaster)
    stop.append((server, client))
    ex.exchange_max_bytes = None  # the default: Exchange only up to one chunk (4 KiB here)
    ex.exchange(torch.arange(N, dtype=torch.float32) + 2.0, CommitProgress(batches_done=1))
    assert ex.combined  # Exchange was never tried
    assert servicer.center.state.update_counter == 1


ONE_CHUNK = 1 << 16  # the 40 KB model in one chunk: PullOne + CommitOne


def test_one_chunk_pull_first_uses_the_unary_calls(stop: list) -> None:
    server, servicer, client, ex = serve("aeasgd", chunk=ONE_CHUNK)
    stop.append((server, client))
    ex.exchange_max_bytes = None  # what workers do
    start = torch.arange(N, dtype=torch.float32)
    after = ex.exchange(start + 2.0, CommitProgress(batches_done=1))
    assert torch.equal(after, start + 1.0)
    assert torch.equal(servicer.center.state.vector, start + 1.0)
    assert ex.combined and client.one_calls and ex.counter == 0
    assert servicer.center.state.workers[0].acked_batches == 1
    ex.exchange(after, CommitProgress(batches_done=2))
    assert servicer.center.state.update_counter == 2 and ex.counter == 1


def test_one_chunk_commit_first_returns_the_centre_unless_final(stop: list) -> None:
    server, servicer, client, ex = serve("downpour", chunk=ONE_CHUNK)
    stop.append((server, client))
    ex.exchange_max_bytes = None
    start = torch.arange(N, dtype=torch.float32)
    after = ex.exchange(start + 3.0, CommitProgress(batches_done=1))
    assert torch.equal(after, start + 3.0) and ex.counter == 1  # the centre after the fold
    final = ex.exchange(after + 1.0, CommitProgress(batches_done=2), final=True)
    assert torch.equal(final, after + 1.0) and ex.run_done and client.one_calls
    # A retried final commit is acknowledged, not folded twice.
    header = pb.CommitHeader(rank=0, sequence=2, batches_done=2, window_batches=1, final=True)
    done = client.commit_and_pull(torch.ones(N), header, one_chunk=True)
    assert done.ack.update_counter == 2 and done.pulled is None
    assert torch.equal(servicer.center.state.vector, start + 4.0)


def test_one_chunk_refused_commit_and_a_many_chunk_centre(stop: list) -> None:
    server, servicer, client, ex = serve("aeasgd", chunk=ONE_CHUNK)
    stop.append((server, client))
    ex.exchange_max_bytes = None
    with pytest.raises(grpc.RpcError) as err:
        ex.exchange(torch.full((N,), float("inf")), CommitProgress(batches_done=1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert servicer.center.state.commits_rejected == 1  # refused once, not resent
    assert servicer.center.state.update_counter == 0
    server2, _, client2, _ = serve("aeasgd")  # 4 KiB chunks: PullOne cannot carry it
    stop.append((server2, client2))
    with pytest.raises(grpc.RpcError) as err:
        client2._pull_one(pb.PullOneRequest(run_id="r1", rank=0))
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE


class ExchangeOnlyMaster(ParameterServerServicer):
    """A master from before PullOne and CommitOne: answers them UNIMPLEMENTED."""

    PullOne = pb_grpc.ParameterServerServicer.PullOne
    CommitOne = pb_grpc.ParameterServerServicer.CommitOne


@pytest.mark.parametrize("algorithm", ["aeasgd", "downpour"])
def test_a_master_without_unary_calls_is_an_error_not_a_switch(stop: list, algorithm: str) -> None:
    server, servicer, client, ex = serve(algorithm, ExchangeOnlyMaster, chunk=ONE_CHUNK)
    stop.append((server, client))
    ex.exchange_max_bytes = None
    with pytest.raises(grpc.RpcError) as err:
        ex.exchange(torch.arange(N, dtype=torch.float32) + 2.0, CommitProgress(batches_done=1))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert client.one_calls and ex.combined  # no silent switch to Exchange
    assert servicer.center.state.update_counter == 0
    assert servicer.center.state.commits_total == 0


@pytest.mark.parametrize("algorithm", ["aeasgd", "downpour"])
def test_the_streaming_exchange_still_serves_a_one_chunk_model(stop: list, algorithm: str) -> None:
    server, servicer, client, ex = serve(algorithm, ExchangeOnlyMaster, chunk=ONE_CHUNK)
    stop.append((server, client))
    ex.exchange_max_bytes = None
    client.one_calls = False  # the setting bench_exchange's "stream" mode uses
    start = torch.arange(N, dtype=torch.float32)
    ex.exchange(start + 2.0, CommitProgress(batches_done=1))
    assert servicer.center.state.update_counter == 1
    assert servicer.center.state.commits_total == 1
