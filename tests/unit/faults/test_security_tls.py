"""TLS and mutual TLS on a real loopback server, with certificates made in the test."""

from __future__ import annotations

import grpc
import pytest
from faults_tls_certs import Pki, make_pki

from trafficdl.rpc import security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

TOKEN = security.generate_token()


class Beat(pb_grpc.ParameterServerServicer):
    def Heartbeat(self, request, context):
        return pb.HeartbeatResponse(update_counter=request.batches_done + 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _serve(tls: security.ServerTls):
    server, port = security.make_server("127.0.0.1:0", TOKEN, tls=tls, max_workers=2)
    pb_grpc.add_ParameterServerServicer_to_server(Beat(), server)
    server.start()
    return server, f"localhost:{port}"


def _beat(target: str, tls: security.ClientTls | None, token: str | None = TOKEN) -> int:
    with security.make_channel(target, token, tls=tls) as channel:
        reply = pb_grpc.ParameterServerStub(channel).Heartbeat(
            pb.HeartbeatRequest(batches_done=1), timeout=5
        )
    return reply.update_counter


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def test_tls_server_cert_verified_by_client(pki: Pki) -> None:
    server, target = _serve(security.ServerTls(pki.server_cert, pki.server_key))
    try:
        assert _beat(target, security.ClientTls(ca_file=pki.ca)) == 2
        # Checked against 127.0.0.1 in the SAN as well as the name.
        ip_target = target.replace("localhost", "127.0.0.1")
        assert _beat(ip_target, security.ClientTls(ca_file=pki.ca)) == 2
        # TLS does not replace the token.
        assert (
            _code(lambda: _beat(target, security.ClientTls(ca_file=pki.ca), token=None))
            == grpc.StatusCode.UNAUTHENTICATED
        )
        # A plaintext client cannot talk to a TLS server.
        assert _code(lambda: _beat(target, None)) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_client_refuses_server_from_unknown_ca(pki: Pki) -> None:
    server, target = _serve(security.ServerTls(pki.stranger_cert, pki.stranger_key))
    try:
        tls = security.ClientTls(ca_file=pki.ca, server_name="stranger")
        assert _code(lambda: _beat(target, tls)) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_mutual_tls(pki: Pki) -> None:
    server, target = _serve(security.ServerTls(pki.server_cert, pki.server_key, pki.ca))
    try:
        good = security.ClientTls(
            ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
        )
        assert _beat(target, good) == 2
        no_cert = security.ClientTls(ca_file=pki.ca)
        assert _code(lambda: _beat(target, no_cert)) == grpc.StatusCode.UNAVAILABLE
        stranger = security.ClientTls(
            ca_file=pki.ca, cert_file=pki.stranger_cert, key_file=pki.stranger_key
        )
        assert _code(lambda: _beat(target, stranger)) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_missing_or_bad_pem_files_fail_clearly(pki: Pki, tmp_path) -> None:
    with pytest.raises(security.SecurityError, match="cannot read TLS key"):
        security.server_credentials(security.ServerTls(pki.server_cert, tmp_path / "nope.key"))
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello")
    with pytest.raises(security.SecurityError, match="not a PEM file"):
        security.make_channel("localhost:1", TOKEN, tls=security.ClientTls(ca_file=not_pem))
    with pytest.raises(security.SecurityError, match="both a client certificate and its key"):
        security.channel_credentials(security.ClientTls(pki.ca, cert_file=pki.client_cert))
