"""Bearer-token authentication and message limits over a real gRPC server on loopback.

The server is the generated ParameterServer service with a tiny servicer that
records what reached it, so "refused" also means "the service never saw it".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trafficdl.rpc import security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

TOKEN = security.generate_token()
LIMIT = 64 * 1024  # small message limit so oversize tests stay cheap


class RecordingServicer(pb_grpc.ParameterServerServicer):
    """Answers three call shapes and counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def _seen(self) -> None:
        with self._lock:
            self.calls += 1

    def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.ServicerContext):
        self._seen()
        return pb.HeartbeatResponse(update_counter=request.batches_done + 1)

    def Pull(self, request: pb.PullRequest, context: grpc.ServicerContext):
        self._seen()
        yield pb.PullResponse(header=pb.PullHeader(update_counter=7))
        yield pb.PullResponse(chunk=b"x" * 100)

    def Commit(self, request_iterator: Iterator[pb.CommitRequest], context):
        self._seen()
        total = sum(len(r.chunk) for r in request_iterator)
        return pb.CommitResponse(update_counter=total)


@pytest.fixture
def served():
    rejects: list[tuple[str, str]] = []
    server, port = security.make_server(
        "127.0.0.1:0",
        TOKEN,
        max_message_bytes=LIMIT,
        max_workers=4,
        on_reject=lambda reason, method: rejects.append((reason, method)),
    )
    servicer = RecordingServicer()
    pb_grpc.add_ParameterServerServicer_to_server(servicer, server)
    security.add_health_service(server)
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer, rejects
    finally:
        server.stop(None)


def _commit_stream(n_chunks: int, size: int) -> Iterator[pb.CommitRequest]:
    yield pb.CommitRequest(header=pb.CommitHeader(run_id="r", rank=0))
    for _ in range(n_chunks):
        yield pb.CommitRequest(chunk=b"\x01" * size)


def _all_shapes(stub: pb_grpc.ParameterServerStub) -> list[object]:
    """Call a unary, a server-streaming and a client-streaming method."""
    heartbeat = stub.Heartbeat(pb.HeartbeatRequest(batches_done=41), timeout=5)
    pulled = list(stub.Pull(pb.PullRequest(run_id="r"), timeout=5))
    commit = stub.Commit(_commit_stream(3, 1000), timeout=5)
    return [heartbeat, pulled, commit]


def test_right_token_passes_every_call_shape(served) -> None:
    target, servicer, rejects = served
    with security.make_channel(target, TOKEN, max_message_bytes=LIMIT) as channel:
        heartbeat, pulled, commit = _all_shapes(pb_grpc.ParameterServerStub(channel))
    assert heartbeat.update_counter == 42
    assert pulled[0].header.update_counter == 7 and pulled[1].chunk == b"x" * 100
    assert commit.update_counter == 3000
    assert servicer.calls == 3 and rejects == []


@pytest.mark.parametrize(
    ("token", "reason", "message"),
    [
        (None, "missing", security.MISSING_TOKEN_MESSAGE),
        (security.generate_token(), "wrong", security.WRONG_TOKEN_MESSAGE),
        (TOKEN + "x", "wrong", security.WRONG_TOKEN_MESSAGE),
    ],
    ids=["no-token", "other-token", "token-prefix"],
)
def test_refused_without_the_right_token(served, token, reason, message) -> None:
    target, servicer, rejects = served
    with security.make_channel(target, token) as channel:
        stub = pb_grpc.ParameterServerStub(channel)
        calls = [
            lambda: stub.Heartbeat(pb.HeartbeatRequest(), timeout=5),
            lambda: list(stub.Pull(pb.PullRequest(), timeout=5)),
            lambda: stub.Commit(_commit_stream(3, 1000), timeout=5),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == message
            if token is not None:  # the reply never echoes what was sent
                assert token not in info.value.details()
    assert servicer.calls == 0
    assert [r for r, _ in rejects] == [reason] * 3
    assert rejects[0][1] == "/trafficdl.rpc.v1.ParameterServer/Heartbeat"


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", f"bearer {TOKEN}", TOKEN, f"Basic {TOKEN}", f"Bearer  {TOKEN}"]
)
def test_malformed_authorization_is_refused(served, header) -> None:
    target, servicer, _ = served
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.ParameterServerStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Heartbeat(pb.HeartbeatRequest(), metadata=[("authorization", header)], timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert servicer.calls == 0


def test_two_authorization_headers_are_refused(served) -> None:
    target, servicer, _ = served
    metadata = [("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer guess")]
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.ParameterServerStub(channel).Heartbeat(
            pb.HeartbeatRequest(), metadata=metadata, timeout=5
        )
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert servicer.calls == 0


def test_health_check_needs_no_token(served) -> None:
    target, _, rejects = served
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert rejects == []


def test_oversized_message_refused_with_resource_exhausted(served) -> None:
    target, _servicer, _ = served
    with security.make_channel(target, TOKEN, max_message_bytes=4 * LIMIT) as channel:
        stub = pb_grpc.ParameterServerStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Commit(_commit_stream(1, 2 * LIMIT), timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Chunks under the limit still go through on the same channel.
        assert stub.Commit(_commit_stream(4, LIMIT // 2), timeout=5).update_counter == 2 * LIMIT


def test_client_refuses_to_send_oversized_message(served) -> None:
    target, _servicer, _ = served
    with security.make_channel(target, TOKEN, max_message_bytes=LIMIT) as channel:
        stub = pb_grpc.ParameterServerStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Commit(_commit_stream(1, 2 * LIMIT), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unauthenticated_oversized_message_is_refused_without_reaching_service(served) -> None:
    target, servicer, _rejects = served
    with security.make_channel(target, None, max_message_bytes=4 * LIMIT) as channel:
        stub = pb_grpc.ParameterServerStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Commit(_commit_stream(1, 2 * LIMIT), timeout=5)
    assert info.value.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert servicer.calls == 0


@pytest.mark.parametrize("bad", ["", "abc123", "has space in the middle!!", "é" * 20])
def test_bad_tokens_are_rejected_with_a_clear_error(bad) -> None:
    with pytest.raises(security.SecurityError) as info:
        security.validate_token(bad)
    assert bad == "" or bad not in str(info.value)


def test_token_file_is_read_and_stripped(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)  # a token file must be owner-only (test_security_files.py)
    assert security.read_token_file(path) == TOKEN
    with pytest.raises(security.SecurityError, match="cannot read"):
        security.read_token_file(tmp_path / "absent")


def test_generated_tokens_are_distinct_and_valid() -> None:
    tokens = {security.generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(security.validate_token(t) == t for t in tokens)


def test_bind_to_a_busy_port_fails_clearly(served) -> None:
    target, _, _ = served
    with pytest.raises(security.SecurityError, match="cannot bind"):
        security.make_server(target, TOKEN)


def test_bind_to_an_address_not_on_this_host_fails_clearly() -> None:
    with pytest.raises(security.SecurityError, match="cannot bind"):
        # TEST-NET-1: never a local address (plaintext allowed, to reach the bind)
        security.make_server("192.0.2.1:0", TOKEN, allow_plaintext=True)


def test_tiny_message_limit_is_refused() -> None:
    with pytest.raises(security.SecurityError, match="at least 1 KiB"):
        security.make_server("127.0.0.1:0", TOKEN, max_message_bytes=10)


def test_unknown_method_without_token_says_unauthenticated(served) -> None:
    """Strangers learn nothing, not even which methods exist."""
    target, _, _ = served
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/trafficdl.rpc.v1.ParameterServer/Nope")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_failing_reject_hook_still_refuses() -> None:
    def broken(reason: str, method: str) -> None:
        raise RuntimeError("metrics down")

    server, port = security.make_server("127.0.0.1:0", TOKEN, max_workers=2, on_reject=broken)
    servicer = RecordingServicer()
    pb_grpc.add_ParameterServerServicer_to_server(servicer, server)
    server.start()
    try:
        channel = security.make_channel(f"127.0.0.1:{port}", None)
        with channel, pytest.raises(grpc.RpcError) as info:
            pb_grpc.ParameterServerStub(channel).Heartbeat(pb.HeartbeatRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert servicer.calls == 0
    finally:
        server.stop(None)


def test_malformed_message_is_refused_before_the_service(served) -> None:
    """Bytes that are not a HeartbeatRequest never reach the servicer."""
    target, servicer, _ = served
    with security.make_channel(target, TOKEN) as channel:
        raw = channel.unary_unary(
            "/trafficdl.rpc.v1.ParameterServer/Heartbeat",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff\x0f garbage", timeout=5)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert servicer.calls == 0
