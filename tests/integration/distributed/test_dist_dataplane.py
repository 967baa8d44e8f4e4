"""The same-node data plane (trafficdl/rpc/dataplane.py) against a real master servicer.

A worker told of the plane at registration exchanges through shared memory and a Unix
socket; the centre it builds is the one the gRPC rpcs build from the same commits. Every
refusal or break sends the window to the rpcs, where a commit is folded once (by its
sequence) and a bad one is refused and counted once.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import torch
from support.specs import toy_spec
from trafficdl_master.center import Center
from trafficdl_master.dataplane import DataPlaneServer
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.state import CenterState
from trafficdl_worker.exchange import CommitProgress, Exchanger

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.optim import get_rule
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.dataplane import DataPlaneClient, DataPlaneError

N = 10_000
TOKEN = "t" * 43


class Master:
    """A real gRPC master with (or without) its data plane, and one registered worker."""

    def __init__(self, algorithm: str, *, plane: bool = True, wire: str = "float32",
                 token: str = TOKEN) -> None:  # fmt: skip
        spec = toy_spec(DistConfig(workers=1, algorithm=algorithm, wire_dtype=wire))
        start = torch.linspace(-1.0, 1.0, N)
        self.center = Center(CenterState(vector=start, world_size=1), get_rule(algorithm))
        self.servicer = ParameterServerServicer(spec, self.center)
        self.server, port, _ = make_master_server(self.servicer, "127.0.0.1:0", token=TOKEN)
        self.plane = DataPlaneServer(self.servicer, token).start() if plane else None
        if self.plane is not None:
            self.servicer.data_plane = self.plane.address
        self.server.start()
        self.client = ParameterServerClient(f"127.0.0.1:{port}", "r1", token=TOKEN,
                                            wire_dtype=wire)  # fmt: skip
        reg = self.client.register(-1, "h0")
        self.ex = Exchanger(self.client, get_rule(algorithm), rank=0, alpha=0.5,
                            center=reg.center, counter=0)  # fmt: skip

    def run(self, windows: int, *, final: bool = True) -> torch.Tensor:
        """`windows` exchanges of a worker whose local steps are a fixed function."""
        local = self.ex.last_pull.clone()
        for k in range(1, windows + 1):
            local = local + torch.sin(local * k) * 0.1  # "training", deterministic
            local = self.ex.exchange(local, CommitProgress(batches_done=k),
                                     final=final and k == windows)  # fmt: skip
        return local

    def close(self) -> None:
        if self.ex.link is not None:
            self.ex.link.close()
        if self.plane is not None:
            self.plane.stop()
        self.client.close()
        self.server.stop(None).wait()


@pytest.fixture()
def masters() -> Iterator[list[Master]]:
    made: list[Master] = []
    yield made
    for m in made:
        m.close()


def _master(masters: list[Master], *args: object, **kwargs: object) -> Master:
    m = Master(*args, **kwargs)  # type: ignore[arg-type]
    masters.append(m)
    return m


@pytest.mark.parametrize("algorithm", ["aeasgd", "downpour", "adag"])
@pytest.mark.parametrize("wire", ["float32", "float16"])
def test_the_plane_builds_the_centre_the_rpcs_build(
    masters: list[Master], algorithm: str, wire: str
) -> None:
    fast = _master(masters, algorithm, wire=wire)
    slow = _master(masters, algorithm, plane=False, wire=wire)
    assert fast.ex.link is not None and slow.ex.link is None
    local_fast, local_slow = fast.run(6), slow.run(6)
    assert fast.ex.link.client is not None and fast.ex.link.breaks == 0  # it was used
    assert fast.center.state.update_counter == slow.center.state.update_counter == 6
    assert torch.equal(fast.center.state.vector, slow.center.state.vector)
    assert torch.equal(local_fast, local_slow)
    assert fast.ex.run_done and slow.ex.run_done
    w = fast.center.state.workers[0]
    assert (w.commits, w.acked_batches, w.last_sequence) == (6, 6, 6)


def test_a_wrong_token_is_refused_and_the_rpcs_carry_on(masters: list[Master]) -> None:
    m = _master(masters, "aeasgd", token="another-token-" + "x" * 30)
    m.run(2)
    assert m.ex.link is not None and m.ex.link.client is None  # never connected
    assert m.ex.link.refused == m.servicer.data_plane  # and not asked again
    assert m.center.state.update_counter == 2  # both windows folded, over gRPC
    with pytest.raises(DataPlaneError, match="wrong token"):
        DataPlaneClient.connect(m.servicer.data_plane, run_id="r1", rank=0, numel=N,
                                token=TOKEN)  # fmt: skip
    with pytest.raises(DataPlaneError, match="values"):
        DataPlaneClient.connect(m.servicer.data_plane, run_id="r1", rank=0, numel=N + 1,
                                token="another-token-" + "x" * 30)  # fmt: skip


def test_a_broken_plane_sends_the_window_to_the_rpcs_folded_once(masters: list[Master]) -> None:
    m = _master(masters, "downpour")
    m.run(2, final=False)
    assert m.center.state.update_counter == 2
    assert m.plane is not None
    m.plane.stop()  # the master's plane goes away between windows (a restart does that)
    before = m.center.state.vector.clone()
    local = m.ex.last_pull.clone() + 1.0
    m.ex.exchange(local, CommitProgress(batches_done=3))
    assert m.ex.link is not None and m.ex.link.breaks == 1
    assert m.center.state.update_counter == 3  # folded once, through Commit
    assert torch.allclose(m.center.state.vector, before + 1.0)
    m.ex.exchange(m.ex.last_pull.clone(), CommitProgress(batches_done=4))  # no plane: rpcs
    assert m.center.state.update_counter == 4


def test_a_commit_folded_before_the_break_is_not_folded_again(masters: list[Master]) -> None:
    """The plane folds the commit, then the worker's socket breaks before the ack: the
    same sequence goes again over gRPC and is acknowledged without a second fold."""
    m = _master(masters, "downpour")
    m.run(1, final=False)
    fast = m.ex.link.client  # type: ignore[union-attr]
    assert fast is not None
    real_call = fast._call

    def call_then_break(kind: int, body: bytes = b"") -> bytes:
        real_call(kind, body)  # the master folds it and answers
        fast.sock.shutdown(socket.SHUT_RDWR)
        raise DataPlaneError("data plane: connection reset (test)")

    fast._call = call_then_break  # type: ignore[method-assign]
    before = m.center.state.vector.clone()
    m.ex.exchange(m.ex.last_pull.clone() + 2.0, CommitProgress(batches_done=2))
    assert m.center.state.update_counter == 2  # one fold, not two
    assert torch.allclose(m.center.state.vector, before + 2.0)
    assert m.center.state.workers[0].last_sequence == 2


def test_a_non_finite_commit_is_refused_once_by_the_rpcs(masters: list[Master]) -> None:
    m = _master(masters, "downpour")
    m.run(1, final=False)
    bad = m.ex.last_pull.clone()
    bad[7] = float("nan")
    with pytest.raises(grpc.RpcError) as err:
        m.ex.exchange(bad, CommitProgress(batches_done=2))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert m.center.state.commits_rejected == 1  # counted by the rpc, not twice
    assert m.center.state.update_counter == 1


def test_no_plane_is_offered_with_the_master_flag() -> None:
    from trafficdl_master.__main__ import options, parse_args

    base = ["--dataset", "/nowhere", "--insecure", "--world-size", "1"]
    assert options(parse_args(base)).data_plane is True
    assert options(parse_args([*base, "--no-data-plane"])).data_plane is False


@pytest.mark.parametrize("plane", [True, False])
def test_the_launchers_workers_use_the_plane_unless_it_is_off(
    dist_dataset: Path, tmp_path: Path, plane: bool
) -> None:
    """Real processes: `run_local`'s workers sit on the master's node, so they exchange
    through its plane (every rank, no window sent back to the rpcs); with the master's
    switch off they use gRPC, and the run makes the same commits."""
    from trafficdl.distributed.launch import run_local

    train = TrainConfig(model="lstm", epochs=2, batch_size=50, lr=0.003)
    env = {} if plane else {"TRAFFICDL_NO_DATA_PLANE": "1"}
    dist = DistConfig(workers=2, threads_per_worker=1, window=2)
    result = run_local(dist_dataset, train, dist, tmp_path / "run", progress=False,
                       extra_env=env)  # fmt: skip
    logs = result.out_dir / "logs"
    master = (logs / "master.log").read_text()
    on_plane = sorted(int(r) for r in re.findall(r"rank (\d) exchanges through the same-node",
                                                 master))  # fmt: skip
    assert on_plane == ([0, 1] if plane else [])
    workers = "".join((logs / f"worker-{r}.log").read_text() for r in (0, 1))
    assert "finishing the window with Pull and Commit" not in workers
    run = result.run  # every window of every worker committed and folded once
    batches = [train.epochs * math.ceil(rows / train.batch_size)
               for rows in run["split"]["partitions"]]  # fmt: skip
    assert run["commits_total"] == run["update_counter"] == sum((b - 1) // 2 + 1 for b in batches)
    assert run["commits_rejected"] == 0
    assert run["exchange"]["data_plane_ranks"] == ([0, 1] if plane else None)


def test_garbage_on_the_socket_drops_that_connection_only(masters: list[Master]) -> None:
    m = _master(masters, "aeasgd")
    path = m.servicer.data_plane.removeprefix("unix:")
    for junk in (b"\xff" * 64, b"\x05\x00\x00\x00\x01{not json"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(junk)
            assert s.recv(64) == b""  # closed by the master, nothing folded
    assert m.center.state.update_counter == 0
    m.run(2)  # the plane still serves
    assert m.ex.link is not None and m.ex.link.client is not None
    assert m.center.state.update_counter == 2


def test_a_worker_in_another_network_namespace_is_turned_away(
    masters: list[Master], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another network namespace is another host (a pod, the netns fault lab) even on a
    shared filesystem: it must use the network, so the plane refuses it."""
    from trafficdl_master import dataplane

    real = dataplane._netns
    monkeypatch.setattr(dataplane, "_netns", lambda pid: real(pid) + (pid != "self"))
    m = _master(masters, "aeasgd")
    m.run(2)
    assert m.ex.link is not None and m.ex.link.client is None
    assert m.ex.link.refused == m.servicer.data_plane
    assert m.center.state.update_counter == 2  # over gRPC
    with pytest.raises(DataPlaneError, match="another network namespace") as err:
        DataPlaneClient.connect(m.servicer.data_plane, run_id="r1", rank=0, numel=N,
                                token=TOKEN)  # fmt: skip
    assert err.value.refused


@pytest.mark.parametrize("size, seal", [(8 * N, False), (4 * N, True)])
def test_a_buffer_that_could_shrink_or_is_short_is_refused(
    masters: list[Master], size: int, seal: bool
) -> None:
    """A mapped buffer that shrinks kills the mapper with SIGBUS: the master maps only a
    buffer of exactly the two vectors, sealed at that size."""
    import fcntl
    import json
    import os

    from trafficdl.rpc.dataplane import HEAD, HELLO, SEALS, recv_frame

    m = _master(masters, "aeasgd")
    fd = os.memfd_create("t", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    hello = json.dumps({"run_id": "r1", "rank": 0, "numel": N, "token": TOKEN}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(m.servicer.data_plane.removeprefix("unix:"))
        socket.send_fds(s, [HEAD.pack(len(hello), HELLO) + hello], [fd])
        kind, body = recv_frame(s)
    os.close(fd)
    assert kind != 0 and b"shared buffer" in body
    m.run(1)  # the master is alive and its plane serves a proper worker
    assert m.ex.link is not None and m.ex.link.client is not None
