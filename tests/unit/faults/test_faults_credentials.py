"""Where master and worker find the token and TLS files (trafficdl.rpc.credentials)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from trafficdl_master.__main__ import options
from trafficdl_master.__main__ import parse_args as master_args
from trafficdl_master.app import bind_host

from trafficdl.errors import TrafficdlError
from trafficdl.rpc import credentials
from trafficdl.rpc.security import SecurityError

TOKEN = "s3cret-token-0123456789abcdef"


def args(server: bool, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    credentials.add_arguments(p, server=server)
    return p.parse_args(argv)


def test_token_from_env_or_file_never_a_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAFFICDL_TOKEN", raising=False)
    monkeypatch.delenv("TRAFFICDL_TOKEN_FILE", raising=False)
    assert credentials.token(args(True, [])) is None
    monkeypatch.setenv("TRAFFICDL_TOKEN", TOKEN + "\n")
    assert credentials.token(args(True, [])) == TOKEN
    f = tmp_path / "token"
    other = "other-token-0123456789abcdef"
    f.write_text(other + "\n")
    f.chmod(0o600)  # owner-only, or it is refused
    assert credentials.token(args(False, ["--token-file", str(f)])) == other
    monkeypatch.setenv("TRAFFICDL_TOKEN_FILE", str(f))
    assert credentials.token(args(False, [])) == other
    with pytest.raises(SystemExit):  # there is no way to pass the token itself as a flag
        args(True, ["--token", TOKEN])
    monkeypatch.setenv("TRAFFICDL_TOKEN", "short")
    monkeypatch.delenv("TRAFFICDL_TOKEN_FILE")
    with pytest.raises(SecurityError, match="too short") as err:
        credentials.token(args(True, []))
    assert "short'" not in str(err.value)


def test_tls_settings_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CERT", "KEY", "CA", "SERVER_NAME"):
        monkeypatch.delenv(f"TRAFFICDL_TLS_{var}", raising=False)
    assert credentials.server_tls(args(True, [])) is None
    assert credentials.client_tls(args(False, [])) is None
    tls = credentials.server_tls(args(True, ["--tls-cert", "c.pem", "--tls-key", "k.pem"]))
    assert tls.client_ca_file is None  # TLS without client certificates
    monkeypatch.setenv("TRAFFICDL_TLS_CA", "ca.pem")
    assert credentials.server_tls(
        args(True, ["--tls-cert", "c.pem", "--tls-key", "k.pem"])
    ).client_ca_file == Path("ca.pem")  # mutual TLS
    with pytest.raises(SecurityError, match="both --tls-cert and --tls-key"):
        credentials.server_tls(args(True, ["--tls-cert", "c.pem"]))
    client = credentials.client_tls(args(False, ["--tls-server-name", "m.svc"]))
    assert client.ca_file == Path("ca.pem") and client.cert_file is None
    assert client.server_name == "m.svc"
    with pytest.raises(SecurityError, match="mutual TLS needs both"):
        credentials.client_tls(args(False, ["--tls-key", "k.pem"]))


def test_master_refuses_to_serve_without_a_token_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAFFICDL_TOKEN", raising=False)
    monkeypatch.delenv("TRAFFICDL_TOKEN_FILE", raising=False)
    base = ["--dataset", str(tmp_path), "--world-size", "2"]
    with pytest.raises(TrafficdlError, match="no run token: set TRAFFICDL_TOKEN"):
        options(master_args(base))
    assert options(master_args([*base, "--insecure"])).token is None
    monkeypatch.setenv("TRAFFICDL_TOKEN", TOKEN)
    opts = options(master_args(base))
    assert opts.token == TOKEN and TOKEN not in repr(opts.dist) and opts.tls is None


def test_metrics_bind_the_host_the_master_is_told() -> None:
    assert bind_host("127.0.0.1:0") == "127.0.0.1"
    assert bind_host("[::1]:50051") == "::1"
    assert bind_host("0.0.0.0:50051") == "0.0.0.0"
    assert bind_host(":50051") == "0.0.0.0"
