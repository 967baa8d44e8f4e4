"""A worker's link to the master is cut and restored; the worker reconnects and completes.

Master and worker are real processes in separate network namespaces joined by
a bridge (netns_harness). Skipped, with the reason, where namespaces cannot be made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from netns_harness import NetnsLab, lab_namespaces, unavailable_reason
from support.tools import needs

from trafficdl.rpc import security

REASON = unavailable_reason()
pytestmark = needs("netns", REASON)
PEER = str(Path(__file__).with_name("faults_netns_peer.py"))
PORT = 50051
CUT_SECONDS = 3.0
HEARTBEATS = 120
TOKEN = security.generate_token()
LISTEN = "import socket, time; s = socket.create_server(('0.0.0.0', 9)); time.sleep(60)"
# One attempt with a 1 s timeout: enough to show that a cut link carries nothing.
CONNECT_ONCE = "import socket, sys; socket.create_connection((sys.argv[1], 9), timeout=1)"
# Attempts for up to argv[2] seconds (bounded), for a link that should carry traffic: the
# first packets after a restore may still be lost while carrier and neighbour (ARP) state
# settle, and a lost SYN is resent only after 1 s, past one attempt's timeout; on a loaded
# machine the listener may also still be starting.
CONNECT_WITHIN = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        socket.create_connection((sys.argv[1], 9), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
"""
FORWARD_WITHIN_S = 5.0


class Lines:
    """Collects a process's stdout lines with times, on a thread.

    A line ending in a number carries its own time.monotonic() (the same clock
    in every process); others are stamped when read.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.items: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            stamp, text = time.monotonic(), line.strip()
            head, _, last = text.rpartition(" ")
            if head and last.replace(".", "", 1).isdigit():
                stamp, text = float(last), head
            with self._cond:
                self.items.append((stamp, text))
                self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.items:
                    if predicate(item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; output so far: {self.items[-10:]}")
                self._cond.wait(left)

    def after(self, t: float, prefix: str) -> list[tuple[float, str]]:
        with self._cond:
            return [(ts, s) for ts, s in self.items if ts >= t and s.startswith(prefix)]


def _peer(lab: NetnsLab, host: str, *args: str) -> tuple[subprocess.Popen, Lines]:
    env = {**os.environ, "TRAFFICDL_TEST_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    proc = lab.popen(
        host,
        [sys.executable, PEER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return proc, Lines(proc)


def test_lab_is_isolated_and_cleaned_up() -> None:
    with NetnsLab() as lab:
        master = lab.add_host("master")
        lab.add_host("worker")
        tag = lab.tag
        assert len(lab_namespaces(tag)) == 3
        probe = [sys.executable, "-c", "import socket; print(socket.gethostbyname('localhost'))"]
        assert lab.run("worker", probe, capture_output=True).returncode == 0
        # The lab's addresses do not exist outside it.
        ours = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert master.address not in ours
    assert lab_namespaces(tag) == []


def test_lab_cleans_up_processes_and_namespaces_on_failure() -> None:
    with pytest.raises(RuntimeError, match="test failed here"), NetnsLab() as lab:
        lab.add_host("a")
        tag = lab.tag
        sleeper = lab.popen("a", ["sleep", "60"])
        raise RuntimeError("test failed here")
    assert sleeper.poll() is not None  # killed, not left behind
    assert lab_namespaces(tag) == []


def test_cut_link_blocks_traffic_until_restored() -> None:
    with NetnsLab() as lab:
        master = lab.add_host("master")
        lab.add_host("worker")
        connect_once = [sys.executable, "-c", CONNECT_ONCE, master.address]
        connect_within = [sys.executable, "-c", CONNECT_WITHIN, master.address,
                          str(FORWARD_WITHIN_S)]  # fmt: skip
        listener = lab.popen("master", [sys.executable, "-c", LISTEN])
        assert lab.run("worker", connect_within).returncode == 0
        lab.cut("worker")
        assert lab.run("worker", connect_once, capture_output=True).returncode != 0
        lab.restore("worker")
        t_restore = time.monotonic()
        assert lab.run("worker", connect_within).returncode == 0, "still cut after restore"
        print(f"link forwards again {time.monotonic() - t_restore:.2f} s after restore")
        assert listener.poll() is None


def test_worker_reconnects_after_its_link_is_cut() -> None:
    with NetnsLab() as lab:
        master = lab.add_host("master")
        lab.add_host("worker")
        server, server_out = _peer(lab, "master", "server", f"{master.address}:{PORT}")
        server_out.wait_for(lambda s: s.startswith("READY"), timeout=20)
        client, out = _peer(lab, "worker", "client", f"{master.address}:{PORT}", str(HEARTBEATS))
        out.wait_for(lambda s: s == "OK 20 20", timeout=30)

        lab.cut("worker")
        t_cut = time.monotonic()
        time.sleep(CUT_SECONDS)
        oks_during_cut = out.after(t_cut + 0.2, "OK")  # one in flight may land just after
        lab.restore("worker")
        t_restore = time.monotonic()

        out.wait_for(lambda s: s.startswith("OK") and int(s.split()[1]) > 21, timeout=30)
        first_after = out.after(t_restore, "OK")
        assert client.wait(timeout=60) == 0, out.items[-10:]
        assert server.poll() is None, "the master died during the cut"
        retries = out.after(t_cut, "RETRY")
        lines = [s for _, s in out.items]

    assert oks_during_cut == [], "heartbeats got through a cut link"
    assert retries, "the cut was not noticed"
    assert {s.split()[2] for _, s in retries} <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert first_after, "no heartbeat after the link came back"
    assert lines[-1] == "DONE"
    oks = [s for s in lines if s.startswith("OK")]
    assert oks == [f"OK {i} {i}" for i in range(1, HEARTBEATS + 1)]  # in order, none lost
    reconnect_s = first_after[0][0] - t_restore
    codes = sorted({s.split()[2] for _, s in retries})
    print(
        f"link cut {CUT_SECONDS:.1f} s: {len(retries)} retries ({', '.join(codes)}), "
        f"first heartbeat {reconnect_s:.2f} s after restore"
    )
    assert reconnect_s < 10
