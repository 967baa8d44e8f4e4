"""Issue the certificates of one run: a private CA, the master's, the workers' and other clients'.

Mutual TLS between a master and its workers needs, per run, a CA that signs
exactly that run's certificates, so a certificate of another run (or anything
else on the cluster) is refused by the master. This module makes them with the
`cryptography` package, in memory, as PEM bytes; who stores them (files for a
local run, a Secret per job for the operator) decides where they live.

Choices, each for a reason:
- EC P-256 keys: generating one takes well under a millisecond, an RSA-2048 key
  ~50 ms, so a 16-worker run's 18 certificates cost milliseconds, not seconds
  (`bench/bench_tls.py` measures it); gRPC's TLS stack supports them.
- Short lifetimes (`DEFAULT_LIFETIME`, 7 days) backdated by 5 minutes for clock
  skew between nodes: a leaked key is useful for days, not years; a run that
  outlives its certificates is re-issued on resume.
- Leaf certificates carry only the extended key usage they need (serverAuth for
  the master, clientAuth for workers), so a worker's certificate cannot serve
  as a fake master and the CA is never a leaf (basicConstraints, pathlen 0).
- The master's subject alternative names are the names and addresses workers
  dial (`localhost`/127.0.0.1 locally, the Service names on a cluster).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_LIFETIME = dt.timedelta(days=7)
CLOCK_SKEW = dt.timedelta(minutes=5)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Issued:
    """One certificate and its private key, PEM encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: str | Path, stem: str) -> tuple[Path, Path]:
        """Write `<stem>.pem` and `<stem>.key` (owner-only, created so) into `directory`."""
        out = Path(directory)
        cert, key = out / f"{stem}.pem", out / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        os.chmod(key, 0o600)  # an existing file keeps its mode through O_CREAT
        return cert, key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


class Authority:
    """A CA that signs one run's certificates (`create` a fresh one, or `load` yours)."""

    def __init__(self, cert: x509.Certificate,
                 key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        self.cert, self.key = cert, key

    @classmethod
    def create(cls, common_name: str, *, lifetime: dt.timedelta = DEFAULT_LIFETIME) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> Authority:
        """A CA from PEM bytes (a user's own CA Secret); its key must be EC or RSA and
        match the certificate. Leaves it signs still get EC P-256 keys."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("the CA key must be an EC or RSA key")
        cert = x509.load_pem_x509_certificate(cert_pem)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise ValueError("the CA key does not match its certificate")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def issued(self) -> Issued:
        """The CA's own certificate and key (keep the key out of every pod)."""
        return Issued(self.cert_pem, _key_pem(self.key))

    def issue(
        self,
        common_name: str,
        *,
        names: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        lifetime: dt.timedelta = DEFAULT_LIFETIME,
    ) -> Issued:
        """A leaf certificate for `common_name`; `names` become DNS/IP subject alt names.

        Its lifetime never exceeds the CA's.
        """
        if not (server or client):
            raise ValueError("a certificate is for a server, a client or both")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [
            ExtendedKeyUsageOID.CLIENT_AUTH
        ] * client
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(min(now + lifetime, self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_USAGE, critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(_san(names)), critical=False
            )
        return Issued(builder.sign(self.key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM), _key_pem(key))  # fmt: skip


@dataclass(frozen=True)
class RunCertificates:
    """Everything one run needs for mutual TLS."""

    ca: Issued
    master: Issued
    workers: list[Issued]
    clients: dict[str, Issued] = field(default_factory=dict)  # e.g. "operator", "admin"


def issue_run(
    run: str,
    master_names: Sequence[str],
    workers: int,
    *,
    clients: Sequence[str] = (),
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
) -> RunCertificates:
    """A fresh CA for `run`, the master's certificate (SANs `master_names`), one client
    certificate per worker rank and one per name in `clients` (the operator's Status
    client, a user's `master-status`)."""
    ca = Authority.create(f"trafficdl run {run} CA", lifetime=lifetime)
    master = ca.issue(f"{run}-master", names=master_names, server=True, lifetime=lifetime)
    ranks = [ca.issue(f"{run}-worker-{i}", client=True, lifetime=lifetime) for i in range(workers)]
    extra = {n: ca.issue(f"{run}-{n}", client=True, lifetime=lifetime) for n in clients}
    return RunCertificates(ca=ca.issued, master=master, workers=ranks, clients=extra)


__all__ = ["DEFAULT_LIFETIME", "Authority", "Issued", "RunCertificates", "issue_run"]
