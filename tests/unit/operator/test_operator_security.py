"""Secure by default on a cluster: spec.security, hardened inputs, the job's certificates.

Pure checks of what the operator decides before any child exists (the CRD's
patterns and the operator's own checks agree), of the certificates it issues
(SANs, usages, lifetimes, renewal, a user's CA) and of the planner replacing
pods built for certificates that were since renewed. The same certificates are
used by a real gRPC server here: the operator's client gets through, a client
without a certificate or with another job's does not.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from operator_support import openapi_schema
from trafficdl_operator import builders, tls
from trafficdl_operator import reconcile as rec
from trafficdl_operator.job_spec import Security, SpecError, parse
from trafficdl_operator.masterclient import fetch_status
from trafficdl_operator.settings import Settings

from trafficdl.rpc.certs import Authority
from trafficdl.rpc.security import ClientTls, ServerTls, generate_token, make_server
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

DAY = timedelta(days=1)
SETTINGS = Settings()


def _data_props() -> dict:
    return openapi_schema()["properties"]["spec"]["properties"]["data"]["properties"]


@pytest.mark.parametrize("path", ["/etc", "../x", "a/../../b", "..", "a/.."])
@pytest.mark.parametrize("field", ["datasetPath", "outputPath"])
def test_absolute_and_dotdot_paths_are_refused_by_schema_and_operator(minimal, field, path):
    assert not re.match(_data_props()[field]["pattern"], path)
    minimal["data"][field] = path
    with pytest.raises(SpecError, match=rf"spec\.data\.{field} .*(absolute|'\.\.')"):
        parse(minimal)


@pytest.mark.parametrize("path", ["runs", "datasets/two-apps", "a/./b", ".hidden/x", "x..y"])
def test_relative_paths_pass_both(minimal, path):
    assert re.match(_data_props()["datasetPath"]["pattern"], path)
    minimal["data"]["datasetPath"] = path
    assert parse(minimal).dataset_path == path


def test_mount_path_cannot_cover_the_operator_mounts(minimal):
    for bad in ("/tmp", "/var/run/trafficdl/tls/x", "/data/../etc"):
        minimal["data"]["mountPath"] = bad
        with pytest.raises(SpecError, match="mountPath"):
            parse(minimal)


@pytest.mark.parametrize("source", [{"persistentVolumeClaim": {"claimName": "d"}},
                                    {"configMap": {"name": "c"}}, {"secret": {"secretName": "s"}},
                                    {"emptyDir": {}}, {"csi": {"driver": "x"}},
                                    {"ephemeral": {"volumeClaimTemplate": {}}}])
def test_allowed_volume_sources(minimal, source):
    minimal["data"]["volume"] = source
    assert parse(minimal).volume == source


def test_host_path_only_when_the_operator_allows_it(minimal):
    minimal["data"]["volume"] = {"hostPath": {"path": "/srv"}}
    with pytest.raises(SpecError, match=r"hostPath is not allowed .*allowHostPath"):
        parse(minimal)
    assert parse(minimal, allow_host_path=True).volume == {"hostPath": {"path": "/srv"}}
    assert Settings.from_env({"TRAFFICDL_OPERATOR_ALLOW_HOST_PATH": "true"}).allow_host_path
    assert not Settings.from_env({}).allow_host_path


@pytest.mark.parametrize("volume", [{"nfs": {"server": "n", "path": "/x"}},
                                    {"emptyDir": {}, "configMap": {"name": "c"}}])
def test_other_or_several_volume_sources_are_refused(minimal, volume):
    minimal["data"]["volume"] = volume
    with pytest.raises(SpecError, match=r"spec\.data\.volume"):
        parse(minimal)


@pytest.mark.parametrize("name", ["TRAFFICDL_ALLOW_PLAINTEXT", "TRAFFICDL_TLS_CA",
                                  "TRAFFICDL_TOKEN", "TRAFFICDL_INSECURE"])
def test_extra_env_cannot_override_the_contract(minimal, name):
    minimal["worker"] = {"env": [{"name": name, "value": "1"}]}
    with pytest.raises(SpecError, match=f"{name} is set by the operator"):
        parse(minimal)
    minimal["worker"] = {"env": [{"name": "bad name", "value": "1"}]}
    with pytest.raises(SpecError, match="not a valid variable name"):
        parse(minimal)


def test_security_defaults_to_mtls_and_checks_its_fields(minimal):
    assert parse(minimal).security == Security(insecure=False, ca_secret_name=None)
    minimal["security"] = {"insecure": True, "caSecretName": "my-ca"}
    with pytest.raises(SpecError, match="exclude each other"):
        parse(minimal)
    minimal["security"] = {"insecure": "yes"}
    with pytest.raises(SpecError, match="insecure must be true or false"):
        parse(minimal)
    minimal["security"] = {"caSecretName": "My_CA"}
    with pytest.raises(SpecError, match="not a Secret name"):
        parse(minimal)
    sec = openapi_schema()["properties"]["spec"]["properties"]["security"]
    assert sec["properties"]["insecure"]["default"] is False


def _cert(data: dict[str, bytes], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data[key])


def test_issued_set_names_usages_and_lifetime():
    data = tls.issue("j", "ns", DAY)
    master, worker = _cert(data, "master.crt"), _cert(data, "worker.crt")
    sans = master.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "j-master.ns.svc", "j-master.ns.svc.cluster.local", "j-master.ns", "j-master"]
    eku = x509.ExtendedKeyUsage
    assert list(master.extensions.get_extension_for_class(eku).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(worker.extensions.get_extension_for_class(eku).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    life = master.not_valid_after_utc - datetime.now(UTC)
    assert DAY - timedelta(minutes=1) < life <= DAY
    assert not any(k.startswith("ca.key") or k == "tls.key" for k in data)  # no CA key stored
    secret = tls.build_secret("j", data)
    assert secret["metadata"]["name"] == "j-tls"
    assert base64.b64decode(secret["data"]["ca.crt"]) == data["ca.crt"]


def test_renewal_window_and_fingerprint():
    data = tls.issue("j", "ns", 2 * DAY)
    now = datetime.now(UTC)
    assert not tls.needs_issue(data, now, DAY)
    assert tls.needs_issue(data, now + DAY + timedelta(hours=1), DAY)  # expiring: renew
    assert tls.needs_issue(None, now, DAY)
    assert tls.needs_issue({**data, "worker.key": b""}, now, DAY)
    assert tls.fingerprint(data) != tls.fingerprint(tls.issue("j", "ns", 2 * DAY))


def test_users_ca_signs_the_leaves_and_bad_secrets_are_explained():
    ca = Authority.create("my CA")
    loaded = tls.load_authority({"tls.crt": ca.cert_pem, "tls.key": ca.issued.key_pem}, "my-ca")
    data = tls.issue("j", "ns", DAY, loaded)
    assert data["ca.crt"] == ca.cert_pem
    assert _cert(data, "master.crt").issuer == ca.cert.subject
    with pytest.raises(tls.TlsError, match="'my-ca' not found"):
        tls.load_authority(None, "my-ca")
    with pytest.raises(tls.TlsError, match=r"lacks tls\.key"):
        tls.load_authority({"tls.crt": ca.cert_pem}, "my-ca")
    leaf = tls.issue("x", "ns", DAY)
    with pytest.raises(tls.TlsError, match="not a CA"):
        tls.load_authority({"tls.crt": leaf["master.crt"], "tls.key": leaf["master.key"]}, "l")
    other = Authority.create("other")
    with pytest.raises(tls.TlsError, match="does not match"):
        tls.load_authority({"tls.crt": ca.cert_pem, "tls.key": other.issued.key_pem}, "m")


def test_pods_of_a_renewed_ca_are_replaced(minimal):
    job = parse(minimal)
    old = [builders.build_master_pod("j", "ns", "r", job, 2, SETTINGS, "old")]
    old += [builders.build_worker_pod("j", "ns", "r", job, i, 2, SETTINGS, "old")
            for i in range(2)]
    for p in old:
        p["status"] = {"phase": "Running"}
    st = {"phase": "Running", "runId": "r", "startTime": "2026-01-01T00:00:00Z", "worldSize": 2}
    now = datetime(2026, 1, 1, 1, tzinfo=UTC)

    def plan(tls_id):
        return rec.plan(rec.Observed(name="j", namespace="ns", generation=1, spec=job,
                                     status=st, pods=old, master=None, now=now, tls_id=tls_id),
                        SETTINGS)
    assert plan("old").delete_pods == [] and plan("old").status["security"] == "mTLS"
    assert sorted(plan("new").delete_pods) == ["j-master", "j-worker-0", "j-worker-1"]
    for p in old:  # pods from before per-job mTLS carry no fingerprint: replaced too
        del p["metadata"]["annotations"]["trafficdl.io/tls-ca"]
    assert sorted(plan("old").delete_pods) == ["j-master", "j-worker-0", "j-worker-1"]
    assert plan(None).delete_pods == []  # an insecure job has no fingerprint to compare


def _serve(tmp_path: Path, data: dict[str, bytes], token: str) -> tuple[grpc.Server, str]:
    for key in ("ca.crt", "master.crt", "master.key"):
        (tmp_path / key).write_bytes(data[key])

    class Master(pb_grpc.ParameterServerServicer):
        def Status(self, request, context):
            return pb.StatusResponse(run_id=request.run_id, phase=pb.RUN_PHASE_RUNNING, epoch=1)

    server, port = make_server("127.0.0.1:0", token, max_workers=2, tls=ServerTls(
        tmp_path / "master.crt", tmp_path / "master.key", tmp_path / "ca.crt"))
    pb_grpc.add_ParameterServerServicer_to_server(Master(), server)
    server.start()
    return server, f"127.0.0.1:{port}"


def test_operator_client_gets_through_and_strangers_do_not(tmp_path):
    """The master of a job requires a client certificate of that job's CA."""
    token, data = generate_token(), tls.issue("j", "ns", DAY)
    server, addr = _serve(tmp_path, data, token)
    files = tls.ClientFiles()
    try:
        mine = files.client_tls("ns", "j", data)
        assert (mine.key_file.stat().st_mode & 0o077) == 0
        assert fetch_status(addr, "r", token, 5, mine)["epoch"] == 1
        other = files.client_tls("ns", "k", tls.issue("k", "ns", DAY))  # another job's CA
        assert fetch_status(addr, "r", token, 5, other) is None
        no_cert = ClientTls(ca_file=mine.ca_file, server_name=mine.server_name)
        assert fetch_status(addr, "r", token, 5, no_cert) is None
        assert fetch_status(addr, "r", token, 5, None) is None  # plaintext to a TLS master
        files.forget("ns", "j")
        assert not mine.key_file.exists()
    finally:
        files.close()
        server.stop(None)


def test_an_rsa_ca_of_the_user_signs_too():
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa CA")])
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    ca = tls.load_authority({"tls.crt": cert.public_bytes(serialization.Encoding.PEM),
                             "tls.key": pem_key}, "rsa")
    assert _cert(tls.issue("j", "ns", DAY, ca), "master.crt").issuer == name
