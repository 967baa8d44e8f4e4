"""The one place gRPC servers and channels are made: a thin front of `trafficdl.rpc.security`.

Message limits, keepalive and credentials are set by `security.make_server` /
`security.make_channel` only, so master, workers, launcher and operator cannot
disagree on them: every message is limited to 4 MiB (tensors travel as chunks
of at most 3 MiB, `DistConfig.chunk_bytes`), the client pings an idle
connection every 10 s and the server accepts those pings. This module keeps
the keyword-style signature the master and the client were written against
and adds the run's bearer token and optional TLS.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from trafficdl.rpc import security

MAX_MESSAGE_BYTES = security.DEFAULT_MAX_MESSAGE_BYTES


def make_server(
    address: str,
    *,
    max_workers: int = 32,
    token: str | None = None,
    tls: security.ServerTls | None = None,
    on_reject: Callable[[str, str], None] | None = None,
    allow_plaintext: bool = False,
) -> tuple[grpc.Server, int]:
    """A started-later server bound to `address` ("host:port", port 0 = any free).

    Returns the server and the bound port. `token` None disables authentication
    (in-process tests only; the master's `__main__` always passes one). Threads:
    a synchronous barrier holds one per waiting worker, so size `max_workers`
    above the world size. Raises `security.SecurityError` when it cannot bind, or
    for a token in plaintext on a non-loopback address without `allow_plaintext`.
    """
    return security.make_server(
        address,
        token,
        tls=tls,
        max_workers=max_workers,
        on_reject=on_reject,
        allow_plaintext=allow_plaintext,
    )


def make_channel(
    target: str,
    *,
    token: str | None = None,
    tls: security.ClientTls | None = None,
    allow_plaintext: bool = False,
) -> grpc.Channel:
    """A channel to the master at `target` ("host:port") that sends the run's token
    (in plaintext off loopback only with `allow_plaintext`)."""
    return security.make_channel(target, token, tls=tls, allow_plaintext=allow_plaintext)
