"""The rule "never a token in clear off loopback" in-process (trafficdl.rpc.loopback, security).

Which addresses count as loopback (IP literals, `localhost`, gRPC target
schemes, names resolved to loopback only); that `make_channel` and
`make_server` refuse a token without TLS elsewhere *before* creating a channel
or server (the gRPC constructors are replaced by tripwires, so a missing check
fails the test without dialling or binding anything); the explicit opt-out and
its warning; the entry points' flags, environment and bind defaults.
Real processes on real non-loopback addresses: tests/integration/faults/
test_security_plaintext_netns.py.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
from faults_tls_certs import make_pki
from trafficdl_master.__main__ import options
from trafficdl_master.__main__ import parse_args as master_args
from trafficdl_worker.__main__ import parse_args as worker_args

from trafficdl.rpc import loopback, security
from trafficdl.rpc.client import ParameterServerClient

TOKEN = security.generate_token()
OFF_LOOPBACK = "192.0.2.1:50051"  # TEST-NET-1: never dialled, never bound (tripwires)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:1", "127.77.3.4:50051", "localhost:50051", "LOCALHOST.:1", "[::1]:1", "::1",
        "[::ffff:127.0.0.1]:1", "ipv4:127.0.0.1:1,127.0.0.2:2", "ipv6:[::1]:1",
        "dns:///localhost:1", "dns:127.0.0.1:1", "unix:/tmp/master.sock", "unix-abstract:tdl",
    ],
)  # fmt: skip
def test_loopback_addresses(address: str) -> None:
    assert loopback.is_loopback(address)


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0:50051", ":50051", "[::]:50051", "10.0.0.5:50051", OFF_LOOPBACK,
        "ipv4:127.0.0.1:1,10.0.0.1:2", "[::ffff:10.0.0.1]:1", "dns:///10.1.2.3:1",
        "localhost.example.org:1", "",
    ],
)  # fmt: skip
def test_non_loopback_addresses(address: str) -> None:
    assert not loopback.is_loopback(address)


def test_names_pass_only_when_every_resolved_address_is_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: dict[str, list[str] | None] = {
        "job-master.ns.svc": ["127.77.0.2"],
        "split.example": ["127.0.0.9", "10.0.0.1"],
        "gone.example": None,
    }

    def fake(host: str, *_a: Any, **_k: Any) -> list[tuple[Any, ...]]:
        ips = answers[host]
        if ips is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert loopback.is_loopback("job-master.ns.svc:50051")  # a local cluster's hosts file
    assert not loopback.is_loopback("split.example:1")
    assert not loopback.is_loopback("gone.example:1")  # cannot tell is not safe


@pytest.fixture
def tripwires(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace gRPC's channel and server constructors: calls are recorded, nothing opens."""
    calls: list[str] = []

    def channel(target: str, *_a: Any, **_k: Any) -> grpc.Channel:
        calls.append(f"channel {target}")
        raise AssertionError("a channel was created")

    def server(*_a: Any, **_k: Any) -> grpc.Server:
        calls.append("server")
        raise AssertionError("a server was created")

    monkeypatch.setattr(grpc, "insecure_channel", channel)
    monkeypatch.setattr(grpc, "server", server)
    return calls


def test_token_never_sent_in_clear_off_loopback(tripwires: list[str]) -> None:
    with pytest.raises(security.SecurityError) as err:
        security.make_channel(OFF_LOOPBACK, TOKEN)
    message = str(err.value)
    assert message.startswith(f"refusing to send the run token in plaintext to {OFF_LOOPBACK}")
    assert "--allow-plaintext" in message and TOKEN not in message and "\n" not in message
    with pytest.raises(security.SecurityError, match="refusing to send"):
        ParameterServerClient(OFF_LOOPBACK, "run", token=TOKEN)  # the workers' client
    assert tripwires == []  # refused before any channel existed


def test_token_never_accepted_in_clear_off_loopback(tripwires: list[str]) -> None:
    for bind in ("0.0.0.0:50051", "[::]:0", ":50051", OFF_LOOPBACK):
        with pytest.raises(security.SecurityError, match="refusing to accept the run token"):
            security.make_server(bind, TOKEN)
    assert tripwires == []


def test_what_the_rule_lets_through(
    tripwires: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(AssertionError, match="channel was created"):
        security.make_channel(OFF_LOOPBACK, None)  # no token, nothing to leak
    with caplog.at_level(logging.WARNING, logger="trafficdl.rpc.security"):
        with pytest.raises(AssertionError, match="channel was created"):
            security.make_channel(OFF_LOOPBACK, TOKEN, allow_plaintext=True)
        with pytest.raises(AssertionError, match="server was created"):
            security.make_server("0.0.0.0:0", TOKEN, allow_plaintext=True)
    assert "travels in plaintext to 192.0.2.1:50051 (allowed explicitly)" in caplog.text
    assert "travels in plaintext on 0.0.0.0:0 (allowed explicitly)" in caplog.text
    assert TOKEN not in caplog.text
    with pytest.raises(AssertionError, match="channel was created"):
        security.make_channel("127.0.0.1:1", TOKEN)
    assert tripwires == ["channel 192.0.2.1:50051", "channel 192.0.2.1:50051", "server",
                         "channel 127.0.0.1:1"]  # fmt: skip
    # With TLS the token may go anywhere: a secure channel is made, lazily, unconnected.
    pki = make_pki(tmp_path)
    security.make_channel(OFF_LOOPBACK, TOKEN, tls=security.ClientTls(ca_file=pki.ca)).close()


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BIND", "POD_IP", "ALLOW_PLAINTEXT", "METRICS_ADDR", "TOKEN_FILE", "TLS_CERT",
                 "TLS_KEY", "TLS_CA", "INSECURE"):  # fmt: skip
        monkeypatch.delenv(f"TRAFFICDL_{name}", raising=False)
    monkeypatch.setenv("TRAFFICDL_TOKEN", TOKEN)


def test_master_binds_loopback_or_the_pod_ip_and_refuses_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clear_env(monkeypatch)
    base = ["--dataset", "/nonexistent", "--world-size", "1"]
    assert master_args(base).bind == "127.0.0.1:50051"
    assert not master_args(base).allow_plaintext
    assert options(master_args(base)).bind == "127.0.0.1:50051"
    # On Kubernetes the pod IP is the default: the token then needs TLS or the opt-out.
    monkeypatch.setenv("TRAFFICDL_POD_IP", "10.1.2.3")
    assert master_args(base).bind == "10.1.2.3:50051"
    refused = r"accept the run token in plaintext on 10\.1\.2\.3:50051"
    with pytest.raises(security.SecurityError, match=refused):
        options(master_args(base))  # before the dataset (which does not exist) is opened
    assert options(master_args([*base, "--allow-plaintext"])).allow_plaintext
    monkeypatch.setenv("TRAFFICDL_ALLOW_PLAINTEXT", "1")
    assert options(master_args(base)).allow_plaintext
    monkeypatch.setenv("TRAFFICDL_ALLOW_PLAINTEXT", "0")
    assert not master_args(base).allow_plaintext
    monkeypatch.setenv("TRAFFICDL_BIND", "127.0.0.1:6000")  # an explicit bind wins
    assert master_args(base).bind == "127.0.0.1:6000"
    monkeypatch.delenv("TRAFFICDL_TOKEN")
    assert options(master_args(["--bind", OFF_LOOPBACK, *base, "--insecure"])).token is None


def test_worker_flags_and_metrics_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_env(monkeypatch)
    args = worker_args([])
    assert args.metrics_addr == "127.0.0.1" and not args.allow_plaintext
    monkeypatch.setenv("TRAFFICDL_POD_IP", "10.1.2.4")
    monkeypatch.setenv("TRAFFICDL_ALLOW_PLAINTEXT", "1")
    args = worker_args([])
    assert args.metrics_addr == "10.1.2.4" and args.allow_plaintext
