"""Where a process finds the run's token and TLS files: flags and TRAFFICDL_* variables.

Only process entry points (`trafficdl_master`, `trafficdl_worker`, the
`master-status` command) call this; everything below them receives values.
The token is never a flag value: a command line is readable by every user of
the host (`ps`), so it comes from the environment (`TRAFFICDL_TOKEN`, which
the launcher sets and the operator fills from the run's Secret) or from a file
(`--token-file` / `TRAFFICDL_TOKEN_FILE`, a mounted Secret).

TLS files come from flags or `TRAFFICDL_TLS_CERT`, `TRAFFICDL_TLS_KEY`,
`TRAFFICDL_TLS_CA` (and `TRAFFICDL_TLS_SERVER_NAME` for a client). On the
master, CERT/KEY are its certificate and CA, when given, is the CA that
client certificates must be signed by (mutual TLS). On a worker, CA verifies
the master and CERT/KEY, when given, are its client certificate.

Without TLS the token may only travel over loopback: a master bound to, or a
worker dialling, any other address refuses to start unless `--allow-plaintext`
(`TRAFFICDL_ALLOW_PLAINTEXT=1`) says the network is trusted (security.py).
A token file must be owner-only (mode 0600 or 0400).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trafficdl.contract import Env
from trafficdl.rpc.security import (
    ClientTls,
    SecurityError,
    ServerTls,
    read_token_file,
    validate_token,
)

TOKEN_ENV = Env.TOKEN
TOKEN_FILE_ENV = Env.TOKEN_FILE
ALLOW_PLAINTEXT_ENV = Env.ALLOW_PLAINTEXT


def add_arguments(parser: argparse.ArgumentParser, *, server: bool) -> None:
    """The --token-file and --tls-* flags, defaults from TRAFFICDL_* variables.

    Also turns off argparse's prefix matching for `parser`: with it, a user's
    `--token SECRET` would silently mean `--token-file SECRET`.
    """
    parser.allow_abbrev = False
    env = os.environ.get
    parser.add_argument(
        "--token-file",
        default=env(TOKEN_FILE_ENV, ""),
        help=f"file holding the run token [{TOKEN_FILE_ENV}]; or set {TOKEN_ENV} itself",
    )
    cert_help = "this master's TLS certificate" if server else "client certificate for mTLS"
    parser.add_argument("--tls-cert", default=env(Env.TLS_CERT, ""),
                        help=f"{cert_help} (PEM) [{Env.TLS_CERT}]")  # fmt: skip
    parser.add_argument("--tls-key", default=env(Env.TLS_KEY, ""),
                        help=f"its private key (PEM) [{Env.TLS_KEY}]")  # fmt: skip
    ca_help = (
        "CA that workers' client certificates must chain to: enables mutual TLS"
        if server
        else "CA that verifies the master's certificate (enables TLS; empty: plaintext)"
    )
    parser.add_argument("--tls-ca", default=env(Env.TLS_CA, ""),
                        help=f"{ca_help} [{Env.TLS_CA}]")  # fmt: skip
    where = (
        "accept the run token on a non-loopback bind"
        if server
        else "send the run token to a non-loopback master"
    )
    parser.add_argument(
        "--allow-plaintext",
        action="store_true",
        default=env(ALLOW_PLAINTEXT_ENV, "") == "1",
        help=f"without TLS, still {where}: anyone on the path can read the token "
        f"(a trusted network only) [{ALLOW_PLAINTEXT_ENV}=1]",
    )
    if not server:
        parser.add_argument("--tls-server-name", default=env(Env.TLS_SERVER_NAME, ""),
                            help="name to check in the master's certificate "
                                 f"[{Env.TLS_SERVER_NAME}]")  # fmt: skip


def token(args: argparse.Namespace) -> str | None:
    """The run token from --token-file, else $TRAFFICDL_TOKEN; None when neither is set."""
    return token_from(args.token_file)


def token_from(token_file: str) -> str | None:
    """The run token from `token_file` (if given), else $TRAFFICDL_TOKEN, else None."""
    if token_file:
        return read_token_file(token_file)
    value = os.environ.get(TOKEN_ENV, "")
    return validate_token(value) if value.strip() else None


def server_tls(args: argparse.Namespace) -> ServerTls | None:
    """The master's TLS settings, or None for plaintext."""
    if not (args.tls_cert or args.tls_key or args.tls_ca):
        return None
    if not (args.tls_cert and args.tls_key):
        raise SecurityError(f"TLS needs both --tls-cert and --tls-key ({Env.TLS_CERT}/KEY)")
    return ServerTls(
        cert_file=Path(args.tls_cert),
        key_file=Path(args.tls_key),
        client_ca_file=Path(args.tls_ca) if args.tls_ca else None,
    )


def client_tls(args: argparse.Namespace) -> ClientTls | None:
    """A worker's TLS settings, or None for plaintext."""
    return client_tls_from(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)


def client_tls_from(ca: str, cert: str, key: str, server_name: str = "") -> ClientTls | None:
    """A client's TLS settings from file names ("" = not given), or None for plaintext."""
    if not (ca or cert or key):
        if server_name:
            raise SecurityError("a TLS server name needs TLS: give the CA file")
        return None
    if bool(cert) != bool(key):
        raise SecurityError("mutual TLS needs both a client certificate and its key, or neither")
    return ClientTls(
        ca_file=Path(ca) if ca else None,
        cert_file=Path(cert) if cert else None,
        key_file=Path(key) if key else None,
        server_name=server_name or None,
    )
