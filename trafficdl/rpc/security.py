"""Who may talk to the parameter server, and how both ends build their gRPC objects.

A parameter server that anyone can commit to can be poisoned, so every RPC
carries a per-run secret: `authorization: Bearer <token>` metadata, checked by
a server interceptor in constant time. The interceptor answers before the
service sees the call (it never deserializes an unauthenticated request) and
lets the standard health service (`grpc.health.v1.Health`) through, because
Kubernetes probes carry no token. Mutual TLS is switched on by giving the
server a CA. A token never travels in clear off loopback: `make_server` and
`make_channel` refuse a token without TLS unless the address is a loopback one
(trafficdl.rpc.loopback) or the caller passes `allow_plaintext=True` (the
entry points' explicit `--allow-plaintext`). A token file readable by anyone
but its owner is refused.

`make_server` and `make_channel` are the one place where message limits,
keepalive and credentials are set, so master and worker cannot disagree on
them: a 23 MB model travels as 1 MiB chunks and anything larger than the limit
is refused by gRPC core with RESOURCE_EXHAUSTED before a buffer is allocated
for it. Only `__main__` modules read token files or environment variables;
everything here takes values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import string
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from trafficdl.errors import TrafficdlError
from trafficdl.rpc.loopback import plaintext_refusal

log = logging.getLogger(__name__)

AUTH_METADATA_KEY = "authorization"
BEARER_PREFIX = "Bearer "
# Methods any caller may use without a token: the standard health service only.
PUBLIC_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)
# Largest message either end accepts. The protocol streams tensors in chunks of
# at most 3 MiB (DistConfig.chunk_bytes), so 4 MiB leaves room for the header.
DEFAULT_MAX_MESSAGE_BYTES = 4 << 20
# Client pings an idle connection every 10 s and drops it when no answer comes
# within 5 s: a cut link is noticed in ~15 s instead of the kernel's ~15 min.
DEFAULT_KEEPALIVE_S = 10.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 5.0
# Cap on grpc's own reconnect backoff, so a restored link is used within seconds.
DEFAULT_MAX_RECONNECT_BACKOFF_S = 5.0
MISSING_TOKEN_MESSAGE = "missing bearer token: send 'authorization: Bearer <run token>'"
WRONG_TOKEN_MESSAGE = "invalid bearer token"
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")
MIN_TOKEN_CHARS = 16


class SecurityError(TrafficdlError):
    """A bad token, unreadable certificate file, or unusable bind address."""


def generate_token(nbytes: int = 32) -> str:
    """A fresh per-run secret: URL-safe text from `nbytes` random bytes."""
    return secrets.token_urlsafe(nbytes)


def validate_token(token: str) -> str:
    """Return `token` stripped of surrounding whitespace, or raise SecurityError.

    gRPC metadata values must be printable ASCII; a token read from a file often
    ends in a newline; a short token is guessable. Never echoes the token.
    """
    stripped = token.strip()
    if len(stripped) < MIN_TOKEN_CHARS:
        raise SecurityError(f"run token too short: need at least {MIN_TOKEN_CHARS} characters")
    if not set(stripped) <= _TOKEN_CHARS:
        raise SecurityError("run token has characters outside [A-Za-z0-9-._~+/=]")
    return stripped


def check_owner_only(path: str | Path, what: str) -> None:
    """Refuse a secret file that its group or other users may read or write.

    Like ssh with a private key: a token others can read is a token others can use,
    and one others can write lets them choose it. (A Kubernetes Secret volume needs
    `defaultMode: 0400` and no `fsGroup` widening it.)
    """
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError as exc:
        raise SecurityError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise SecurityError(
            f"{what} {path} is accessible by group or others (mode {mode:04o}): "
            f"make it owner-only (chmod 600 {path})"
        )


def read_token_file(path: str | Path) -> str:
    """Read and validate a token file (e.g. a mounted Kubernetes Secret), owner-only."""
    check_owner_only(path, "run token file")
    try:
        return validate_token(Path(path).read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SecurityError(f"cannot read run token file {path}: {exc}") from None


def refuse_plaintext_token(
    address: str, token: str | None, tls: object, *, allow: bool, serving: bool
) -> bool:
    """SecurityError for a token without TLS on a non-loopback address, unless `allow`.

    Returns True when the token will travel in clear off loopback (allowed), so the
    caller can say so. Entry points call it before any slow setup; `make_server`
    and `make_channel` always do.
    """
    if not token or tls is not None:
        return False
    reason = plaintext_refusal(address, serving=serving)
    if reason is not None and not allow:
        raise SecurityError(reason)
    return reason is not None


def _plaintext_guard(address: str, token: str | None, tls: object, allow: bool, *,
                     serving: bool) -> None:  # fmt: skip
    if refuse_plaintext_token(address, token, tls, allow=allow, serving=serving):
        log.warning("the run token travels in plaintext %s %s (allowed explicitly)",
                    "on" if serving else "to", address)  # fmt: skip


def _digest(value: str) -> bytes:
    # Comparing fixed-length digests keeps compare_digest from leaking the length.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def _abort_handler(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def abort(_request_iterator: Any, context: grpc.ServicerContext) -> None:
        context.abort(code, message)

    # A stream-stream handler without deserializer answers any call shape without
    # reading or parsing the request.
    return grpc.stream_stream_rpc_method_handler(abort)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuse every call whose bearer token is absent or wrong (UNAUTHENTICATED).

    `on_reject(reason, method)` is called with reason "missing" or "wrong" so
    the master can count refusals in its metrics. `method` is chosen by the
    caller, so it is no metric label; an exception in the hook is logged.
    """

    def __init__(
        self,
        token: str,
        *,
        public_prefixes: Sequence[str] = PUBLIC_METHOD_PREFIXES,
        on_reject: Callable[[str, str], None] | None = None,
    ) -> None:
        self._expected = _digest(validate_token(token))
        self._public = tuple(public_prefixes)
        self._on_reject = on_reject
        self._missing = _abort_handler(grpc.StatusCode.UNAUTHENTICATED, MISSING_TOKEN_MESSAGE)
        self._wrong = _abort_handler(grpc.StatusCode.UNAUTHENTICATED, WRONG_TOKEN_MESSAGE)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(self._public):
            return continuation(handler_call_details)
        values = [
            v for k, v in handler_call_details.invocation_metadata or () if k == AUTH_METADATA_KEY
        ]
        if not values:
            return self._reject("missing", method, self._missing)
        value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
        given = value[len(BEARER_PREFIX) :] if value.startswith(BEARER_PREFIX) else ""
        # Always compare, even for a malformed header, so timing says nothing.
        if not hmac.compare_digest(_digest(given), self._expected) or len(values) > 1:
            return self._reject("wrong", method, self._wrong)
        return continuation(handler_call_details)

    def _reject(
        self, reason: str, method: str, handler: grpc.RpcMethodHandler
    ) -> grpc.RpcMethodHandler:
        log.warning("refused %.200r: %s bearer token", method, reason)
        if self._on_reject is not None:
            try:
                self._on_reject(reason, method)
            except Exception:  # a broken metrics hook must not let the call through
                log.exception("on_reject hook failed")
        return handler


class TokenClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the bearer token to every call.

    gRPC's own call credentials are only sent over secure channels; this works on
    plaintext ones too, which is why `make_channel` is the only place that installs
    it, after checking that a plaintext target is loopback or explicitly allowed.
    """

    def __init__(self, token: str) -> None:
        self._pair = (AUTH_METADATA_KEY, BEARER_PREFIX + validate_token(token))

    def _details(self, details: Any) -> Any:
        metadata = [m for m in (details.metadata or ()) if m[0] != AUTH_METADATA_KEY]
        return details._replace(metadata=[*metadata, self._pair])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


@dataclass(frozen=True)
class ServerTls:
    """PEM files for the server. With `client_ca`, clients must present a cert it signed."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class ClientTls:
    """PEM files for a client. `ca_file` None trusts the system roots; cert+key enable mTLS."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None  # override the name checked against the server cert


def _read_pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise SecurityError(f"{what} {path} is not a PEM file")
    return data


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    key = _read_pem(tls.key_file, "TLS key")
    cert = _read_pem(tls.cert_file, "TLS certificate")
    ca = _read_pem(tls.client_ca_file, "client CA")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    if (tls.cert_file is None) != (tls.key_file is None):
        raise SecurityError("give both a client certificate and its key, or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(tls.ca_file, "CA certificate"),
        private_key=_read_pem(tls.key_file, "client TLS key"),
        certificate_chain=_read_pem(tls.cert_file, "client TLS certificate"),
    )


def _message_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    if max_message_bytes < 1024:
        raise SecurityError("max message size must be at least 1 KiB")
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def make_server(
    bind: str,
    token: str | None,
    *,
    tls: ServerTls | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_workers: int = 16,
    max_concurrent_rpcs: int | None = None,
    on_reject: Callable[[str, str], None] | None = None,
    options: Sequence[tuple[str, Any]] = (),
    allow_plaintext: bool = False,
) -> tuple[grpc.Server, int]:
    """A gRPC server bound to `bind` ("host:port", port 0 = any free); not started yet.

    Returns (server, bound port). Add servicers, then `server.start()`.
    `token` None disables authentication (tests and local debugging only). A token
    without `tls` needs a loopback `bind` or `allow_plaintext` (SecurityError).
    """
    _plaintext_guard(bind, token, tls, allow_plaintext, serving=True)
    opts = [
        *_message_options(max_message_bytes),
        # Without this, Linux lets a second master bind the same port silently.
        ("grpc.so_reuseport", 0),
        # Accept the clients' keepalive pings (default policy answers GOAWAY).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
        *options,
    ]
    interceptors = [TokenAuthInterceptor(token, on_reject=on_reject)] if token else []
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-server"),
        interceptors=interceptors,
        options=opts,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    try:
        if tls is None:
            port = server.add_insecure_port(bind)
        else:
            port = server.add_secure_port(bind, server_credentials(tls))
    except RuntimeError as exc:
        raise SecurityError(f"cannot bind {bind}: {exc}") from None
    if port == 0:
        raise SecurityError(f"cannot bind {bind}: address in use or not on this host")
    return server, port


def add_health_service(server: grpc.Server) -> Any:
    """Register the standard health service (reported SERVING), reachable without a token.

    Kubernetes gRPC probes call it; set NOT_SERVING with
    `servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)` while draining.
    Returns the grpc_health HealthServicer.
    """
    # Imported here: the operator image uses this module's channel side only and
    # does not ship grpcio-health-checking.
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


def make_channel(
    target: str,
    token: str | None,
    *,
    tls: ClientTls | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    keepalive_s: float = DEFAULT_KEEPALIVE_S,
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S,
    max_reconnect_backoff_s: float = DEFAULT_MAX_RECONNECT_BACKOFF_S,
    options: Sequence[tuple[str, Any]] = (),
    allow_plaintext: bool = False,
) -> grpc.Channel:
    """A channel to `target` ("host:port") that sends the bearer token on every call.

    A token without `tls` needs a loopback `target` or `allow_plaintext`: otherwise
    SecurityError, raised before anything connects.
    """
    _plaintext_guard(target, token, tls, allow_plaintext, serving=False)
    opts = [
        *_message_options(max_message_bytes),
        ("grpc.keepalive_time_ms", int(keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 200),
        # gRPC also uses this as the connect-attempt timeout (default 20 s): a SYN
        # lost on a cut link then blocks reconnection for at most ~1-5 s.
        ("grpc.min_reconnect_backoff_ms", 1000),
        ("grpc.max_reconnect_backoff_ms", int(max_reconnect_backoff_s * 1000)),
    ]
    if tls is not None and tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    opts.extend(options)
    if tls is None:
        channel = grpc.insecure_channel(target, options=opts)
    else:
        channel = grpc.secure_channel(target, channel_credentials(tls), options=opts)
    if token is None:
        return channel
    return grpc.intercept_channel(channel, TokenClientInterceptor(token))


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MISSING_TOKEN_MESSAGE",
    "WRONG_TOKEN_MESSAGE",
    "ClientTls",
    "SecurityError",
    "ServerTls",
    "TokenAuthInterceptor",
    "TokenClientInterceptor",
    "add_health_service",
    "channel_credentials",
    "check_owner_only",
    "generate_token",
    "make_channel",
    "make_server",
    "read_token_file",
    "refuse_plaintext_token",
    "server_credentials",
    "validate_token",
]
