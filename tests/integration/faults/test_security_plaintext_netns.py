"""Never a token in clear off loopback, proved with real processes on real non-loopback addresses.

The addresses are those of network namespaces the test makes (netns_harness:
10.213.0.n on a private bridge), so "not loopback" is real and nothing leaves
the lab. A master bound there with a token and no TLS refuses to start unless
`--allow-plaintext`; a worker and `trafficdl master-status` refuse to send the
token there before they connect (a TCP listener counts the connections: none,
and one once plaintext is allowed, which shows it would have seen them); a
master with mutual TLS serves `master-status --ca --cert --key` and refuses
it without a client certificate, with a stranger's, and in plaintext.
Skipped, with the reason, where namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from faults_cluster import Cluster, make_dataset
from netns_harness import NetnsLab, unavailable_reason
from support.tools import needs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "faults"))
from faults_tls_certs import make_pki

REASON = unavailable_reason()
pytestmark = needs("netns", REASON)
PORT = 50051
TRAIN = {"model": "lstm", "epochs": 1, "batch_size": 25}
DIST = {"workers": 1, "algorithm": "aeasgd", "window": 4, "threads_per_worker": 1}
LISTENER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
log = open(sys.argv[3], "a", buffering=1)
log.write("listening\\n")
while True:
    conn, _ = server.accept()
    log.write("connection\\n")
    conn.close()
"""


def _run(lab: NetnsLab, host: str, argv: list[str], token: str, **env: str) -> tuple[int, str]:
    full = {**os.environ, "TRAFFICDL_TOKEN": token, "PYTHONUNBUFFERED": "1", **env}
    for name in ("TRAFFICDL_ALLOW_PLAINTEXT", "TRAFFICDL_TOKEN_FILE"):
        if name not in env:
            full.pop(name, None)
    done = lab.run(host, argv, env=full, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr + done.stdout


def _status(lab: NetnsLab, target: str, token: str, *flags: str) -> tuple[int, str]:
    argv = [sys.executable, "-m", "trafficdl.cli", "master-status", target, "--timeout", "5"]
    return _run(lab, "client", [*argv, *flags], token)


def _one_error_line(output: str, prefix: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0]


@contextlib.contextmanager
def _master_lab(tmp_path: Path) -> Iterator[tuple[NetnsLab, Cluster, str]]:
    """A lab with hosts "master" and "client", and a Cluster whose master binds the former."""
    dataset = make_dataset(tmp_path / "ds", per_class=40)
    with NetnsLab() as lab:
        master = lab.add_host("master")
        lab.add_host("client")
        with Cluster(tmp_path, dataset, train=TRAIN, dist=DIST, bind_host=master.address,
                     port=PORT, popen=lab.popen) as cl:  # fmt: skip
            yield lab, cl, f"{master.address}:{PORT}"


def test_master_off_loopback_refuses_plaintext_token_unless_allowed(tmp_path: Path) -> None:
    with _master_lab(tmp_path) as (lab, cl, target):
        argv = [sys.executable, "-m", "trafficdl_master", "--dataset", str(cl.dataset),
                "--out-dir", str(tmp_path / "refused"), "--world-size", "1",
                "--bind", target, "--ready-file", str(tmp_path / "port")]  # fmt: skip
        rc, out = _run(lab, "master", argv, cl.token)
        line = _one_error_line(out, "trafficdl-master: error:")
        assert rc == 2
        assert f"refusing to accept the run token in plaintext on {target}" in line
        assert "--allow-plaintext" in line and cl.token not in out
        assert not (tmp_path / "port").exists() and not (tmp_path / "refused").exists()

        # Explicitly allowed: it serves, and says the token travels in clear.
        cl.plaintext_env = {"TRAFFICDL_ALLOW_PLAINTEXT": "1"}
        cl.start_master()
        assert "travels in plaintext on" in cl.log("master")
        rc, out = _status(lab, target, cl.token)
        line = _one_error_line(out, "trafficdl: error:")
        assert rc == 2 and f"refusing to send the run token in plaintext to {target}" in line
        rc, out = _status(lab, target, cl.token, "--allow-plaintext")
        assert rc == 0, out
        assert f"run {cl.run_id}:" in out and "N=1" in out


def test_clients_refuse_before_connecting(tmp_path: Path) -> None:
    with NetnsLab() as lab:
        server = lab.add_host("server")
        lab.add_host("client")
        seen = tmp_path / "connections"
        lab.popen("server", [sys.executable, "-c", LISTENER, server.address, str(PORT), str(seen)])
        deadline = time.monotonic() + 30
        while not (seen.is_file() and "listening" in seen.read_text()):
            assert time.monotonic() < deadline, "listener did not start"
            time.sleep(0.05)
        target = f"{server.address}:{PORT}"
        token = "t0ken-for-a-test-0123456789"

        worker = [sys.executable, "-m", "trafficdl_worker", "--master", target,
                  "--connect-timeout", "5"]  # fmt: skip
        rc, out = _run(lab, "client", worker, token)
        line = _one_error_line(out, "trafficdl-worker: error:")
        assert rc == 2 and f"refusing to send the run token in plaintext to {target}" in line
        rc, out = _status(lab, target, token)
        line = _one_error_line(out, "trafficdl: error:")
        assert rc == 2 and "refusing to send the run token in plaintext" in line
        assert seen.read_text().count("connection") == 0  # nothing was even dialled
        assert token not in out

        # Control: allowed, the same command does connect (the listener speaks no
        # gRPC, so the call itself fails), so the count above could have moved.
        rc, out = _status(lab, target, token, "--allow-plaintext")
        assert rc == 2 and ("UNAVAILABLE" in out or "DEADLINE_EXCEEDED" in out), out
        assert seen.read_text().count("connection") >= 1


def test_mutual_tls_master_status_off_loopback(tmp_path: Path) -> None:
    with _master_lab(tmp_path) as (lab, cl, target):
        pki = make_pki(tmp_path, server_names=(cl.bind_host,))
        # No --allow-plaintext anywhere: TLS is what lets the token off loopback.
        cl.start_master(extra={"TRAFFICDL_TLS_CERT": str(pki.server_cert),
                               "TRAFFICDL_TLS_KEY": str(pki.server_key),
                               "TRAFFICDL_TLS_CA": str(pki.ca)})  # fmt: skip
        mtls = ["--ca", str(pki.ca), "--cert", str(pki.client_cert),
                "--key", str(pki.client_key)]  # fmt: skip
        rc, out = _status(lab, target, cl.token, *mtls)
        assert rc == 0, out
        assert f"run {cl.run_id}:" in out and "N=1" in out
        stranger = ["--ca", str(pki.ca), "--cert", str(pki.stranger_cert),
                    "--key", str(pki.stranger_key)]  # fmt: skip
        for flags in (["--ca", str(pki.ca)], stranger, ["--allow-plaintext"]):
            rc, out = _status(lab, target, cl.token, *flags)
            line = _one_error_line(out, "trafficdl: error:")
            assert rc == 2 and f"master {target}: UNAVAILABLE" in line, (flags, out)
        rc, out = _status(lab, target, cl.token, "--cert", str(pki.client_cert))
        line = _one_error_line(out, "trafficdl: error:")
        assert rc == 2 and "both a client certificate and its key" in line
        assert cl.token not in cl.log("master")
