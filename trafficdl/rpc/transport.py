"""The one place gRPC servers and channels are made, so security plugs in here.

Both ends raise the message limits above the largest chunk (tensors are
streamed in <= 3 MiB chunks, so the 4 MiB default would do, but a raised
limit costs nothing and protects headers of big configs) and keep TCP
connections alive across long commit windows. Issue 5 adds TLS credentials
and bearer-token interceptors (trafficdl.rpc.security): they are passed in
through `credentials`/`interceptors` without changing callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc

MAX_MESSAGE_BYTES = 64 << 20
OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # A worker may train for minutes between commits: keep the connection warm.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    *OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


def make_server(
    address: str,
    *,
    max_workers: int = 32,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> tuple[grpc.Server, int]:
    """A started-later server bound to `address` ("host:port", port 0 = any free).

    Returns the server and the bound port. Threads: a synchronous barrier holds
    one per waiting worker, so size `max_workers` above the world size.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        options=SERVER_OPTIONS,
        interceptors=list(interceptors),
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return server, port


def make_channel(
    target: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
) -> grpc.Channel:
    """A channel to the master at `target` ("host:port")."""
    if credentials is None:
        channel = grpc.insecure_channel(target, options=OPTIONS)
    else:
        channel = grpc.secure_channel(target, credentials, options=OPTIONS)
    if interceptors:
        channel = grpc.intercept_channel(channel, *interceptors)
    return channel
