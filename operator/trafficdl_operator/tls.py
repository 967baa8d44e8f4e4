"""A job's mutual-TLS material: issue it, store it in one Secret, renew it, use it.

Every job not marked `spec.security.insecure` gets its own CA (or the user's
CA from `spec.security.caSecretName`) and three leaf certificates, issued by
trafficdl.rpc.certs in milliseconds:
- the master's (serverAuth), its SANs the master Service's DNS names, which is
  also the master pod's hostname;
- one worker client certificate shared by every rank (clientAuth): ranks come
  and go with elastic scaling, and the master authorizes "a worker of this
  job", the token then names the run;
- the operator's own client certificate for the Status RPC.
The Secret `{job}-tls` holds the CA certificate and those three pairs, never a
CA key: a generated CA's key is dropped once the leaves are signed, so nothing
on the cluster can mint another certificate for the job. Renewal therefore
issues a fresh set (a new CA) and the pods built for the old one are replaced
(their annotation carries the CA fingerprint; the master resumes from its
checkpoint). A pod mounts only its role's files, read-only.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from trafficdl.rpc.certs import Authority, Issued
from trafficdl.rpc.security import ClientTls
from trafficdl_operator import contract as c

# Secret keys a pod of each role mounts (identity paths: the files keep the key names).
ROLE_FILES = {
    c.ROLE_MASTER: (c.TLS_CA_KEY, c.TLS_MASTER_CERT, c.TLS_MASTER_KEY),
    c.ROLE_WORKER: (c.TLS_CA_KEY, c.TLS_WORKER_CERT, c.TLS_WORKER_KEY),
}
REQUIRED = (c.TLS_CA_KEY, c.TLS_MASTER_CERT, c.TLS_MASTER_KEY, c.TLS_WORKER_CERT,
            c.TLS_WORKER_KEY, c.TLS_OPERATOR_CERT, c.TLS_OPERATOR_KEY)


class TlsError(ValueError):
    """The job's TLS material cannot be made (e.g. a user's CA Secret is unusable)."""


def issue(job: str, namespace: str, lifetime: timedelta,
          authority: Authority | None = None) -> dict[str, bytes]:
    """The Secret data (raw bytes) of a fresh set; a new CA unless `authority` is given."""
    ca = authority or Authority.create(f"trafficdl job {namespace}/{job} CA", lifetime=lifetime)
    master = ca.issue(c.master_name(job), names=c.master_dns_names(job, namespace),
                      server=True, lifetime=lifetime)
    worker = ca.issue(f"{job}-worker", client=True, lifetime=lifetime)
    operator = ca.issue(f"{job}-operator", client=True, lifetime=lifetime)
    return {
        c.TLS_CA_KEY: ca.cert_pem,
        c.TLS_MASTER_CERT: master.cert_pem, c.TLS_MASTER_KEY: master.key_pem,
        c.TLS_WORKER_CERT: worker.cert_pem, c.TLS_WORKER_KEY: worker.key_pem,
        c.TLS_OPERATOR_CERT: operator.cert_pem, c.TLS_OPERATOR_KEY: operator.key_pem,
    }


def load_authority(secret_data: dict[str, bytes] | None, name: str) -> Authority:
    """A user's CA from its Secret (tls.crt, tls.key); TlsError saying what is wrong."""
    if secret_data is None:
        raise TlsError(f"spec.security.caSecretName: Secret {name!r} not found")
    missing = [k for k in (c.CA_SECRET_CERT, c.CA_SECRET_KEY) if not secret_data.get(k)]
    if missing:
        raise TlsError(f"spec.security.caSecretName: Secret {name!r} lacks {', '.join(missing)}")
    try:
        ca = Authority.load(secret_data[c.CA_SECRET_CERT], secret_data[c.CA_SECRET_KEY])
    except (ValueError, TypeError) as exc:
        raise TlsError(f"spec.security.caSecretName: Secret {name!r} does not hold a usable "
                       f"CA certificate and key: {exc}") from exc
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints) \
        if _has(ca.cert, x509.BasicConstraints) else None
    if constraints is None or not constraints.value.ca:
        raise TlsError(f"spec.security.caSecretName: the certificate in Secret {name!r} is not "
                       "a CA (basicConstraints CA:TRUE)")
    return ca


def _has(cert: x509.Certificate, ext: type[x509.ExtensionType]) -> bool:
    try:
        cert.extensions.get_extension_for_class(ext)
    except x509.ExtensionNotFound:
        return False
    return True


def build_secret(job: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": c.tls_secret_name(job), "labels": {c.LABEL_JOB: job}},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(data.items())},
    }


def fingerprint(data: dict[str, bytes]) -> str:
    """Short id of the CA the set was issued by (pods carry it as an annotation)."""
    return hashlib.sha256(data[c.TLS_CA_KEY]).hexdigest()[:16]


def expires(data: dict[str, bytes]) -> datetime:
    """When the first of the set's certificates expires."""
    certs = (c.TLS_CA_KEY, c.TLS_MASTER_CERT, c.TLS_WORKER_CERT, c.TLS_OPERATOR_CERT)
    return min(x509.load_pem_x509_certificate(data[k]).not_valid_after_utc for k in certs)


def needs_issue(data: dict[str, bytes] | None, now: datetime, renew_before: timedelta) -> bool:
    """No usable set yet, or it expires within `renew_before`."""
    if data is None or any(not data.get(k) for k in REQUIRED):
        return True
    try:
        return expires(data) - now <= renew_before
    except ValueError:  # not a certificate: issue a good one
        return True


class ClientFiles:
    """The operator's client certificate per job as files (gRPC's ClientTls reads
    files), in one private folder of this process; rewritten when the CA changes."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trafficdl-operator-tls-"))

    def client_tls(self, namespace: str, job: str, data: dict[str, bytes]) -> ClientTls:
        folder = self.root / f"{namespace}_{job}_{fingerprint(data)}"
        if not folder.is_dir():
            for old in self.root.glob(f"{namespace}_{job}_*"):
                shutil.rmtree(old, ignore_errors=True)
            folder.mkdir(mode=0o700)
            Issued(data[c.TLS_OPERATOR_CERT], data[c.TLS_OPERATOR_KEY]).write(folder, "operator")
            (folder / "ca.pem").write_bytes(data[c.TLS_CA_KEY])
        return ClientTls(ca_file=folder / "ca.pem", cert_file=folder / "operator.pem",
                         key_file=folder / "operator.key",
                         server_name=c.master_dns_names(job, namespace)[0])

    def forget(self, namespace: str, job: str) -> None:
        for old in self.root.glob(f"{namespace}_{job}_*"):
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
