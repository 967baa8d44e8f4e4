"""Certificates made in the test run (trafficdl.rpc.certs), so no key material is committed.

One CA signs a server certificate for localhost/127.0.0.1 and a client
certificate; a second, unrelated CA signs a "stranger" client certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trafficdl.rpc.certs import Authority


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def make_pki(directory: Path, server_names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Pki:
    ca = Authority.create("trafficdl test CA")
    other = Authority.create("someone else's CA")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    server = ca.issue("trafficdl-master", names=server_names, server=True).write(
        directory, "server"
    )
    client = ca.issue("trafficdl-worker-0", client=True).write(directory, "client")
    stranger = other.issue("stranger", client=True).write(directory, "stranger")
    return Pki(ca_file, *server, *client, *stranger)
