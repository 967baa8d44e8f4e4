"""`trafficdl classify --live` on a veth pair in namespaces made here, fed by replayed captures.

A 1D-CNN (256 payload bytes) learns three synthetic apps; their captures are
replayed from one namespace while the command captures in the other. The CNN's
input does not depend on timing, so every replayed biflow must get exactly
the app `classify` gives it offline, mostly the app whose capture it came
from; the Prometheus counters must add up to the decisions printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trafficdl
from trafficdl.live import netns

pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
TRAFFICDL = str(Path(sys.executable).with_name("trafficdl"))


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("live")
    trafficdl.synthesize(root / "cap", apps=3, flows_per_app=16, captures_per_app=1, seed=7)
    ds = trafficdl.extract(root / "cap", root / "ds", payload_bytes=256)
    run = trafficdl.train(ds, root / "run", model="cnn1d", epochs=4, test_fraction=0.25)
    return run.checkpoint, root / "cap"


def _scrape(pair: netns.VethPair, port: int) -> str:
    code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    return subprocess.run(pair.exec_b(sys.executable, "-c", code), capture_output=True,
                          text=True, check=True, timeout=30).stdout  # fmt: skip


def test_live_classification_of_replayed_flows(cnn, tmp_path):
    ckpt, captures = cnn
    with netns.veth_pair() as pair:
        cmd = pair.exec_b(TRAFFICDL, "classify", str(ckpt), "--live", pair.if_b, "--json",
                          "--bpf", "tcp or udp", "--idle-timeout", "2", "--duration", "120",
                          "--metrics-port", "0")  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)  # fmt: skip
        try:
            status = proc.stderr.readline()
            assert "listening on" in status, status + proc.stderr.read()
            port = int(re.search(r":(\d+)/metrics", status).group(1))
            subprocess.run(pair.exec_a(sys.executable, "-m", "trafficdl.live.replay", pair.if_a,
                                       str(captures)), check=True, timeout=60)  # fmt: skip
            time.sleep(4.5)  # > idle timeout: short flows end and are decided
            metrics = _scrape(pair, port)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    decisions = [json.loads(line) for line in out.splitlines()]
    offline = trafficdl.load_classifier(ckpt).predict(captures)
    want = {(r.src, r.sport, r.dst, r.dport): (r.app, Path(r.capture).parent.name)
            for r in offline.itertuples()}  # fmt: skip
    got = {(d["src"], d["sport"], d["dst"], d["dport"]): d for d in decisions}
    assert len(decisions) == len(got) == len(want) == 48
    assert {k: d["app"] for k, d in got.items()} == {k: v[0] for k, v in want.items()}
    right = sum(d["app"] == want[k][1] for k, d in got.items())
    assert right >= 30, f"only {right}/48 replayed flows got their own app"
    reasons = {d["reason"] for d in decisions}
    assert "bytes" in reasons  # decided on its first 256 payload bytes, before its end
    early = [d for d in decisions if d["reason"] == "bytes"]
    assert all(d["latency_ms"] < 1000 for d in early)
    counted = re.findall(r'^trafficdl_live_flows_classified_total\{app="([^"]+)",reason="(\w+)"\} '
                         r"(\S+)$", metrics, re.M)  # fmt: skip
    assert sum(float(v) for *_, v in counted) == 48  # all decided before the scrape
    per_app = {}
    for app, _, v in counted:
        per_app[app] = per_app.get(app, 0) + float(v)
    assert per_app == {a: float(sum(d["app"] == a for d in decisions)) for a in per_app}
    assert float(re.search(r"^trafficdl_live_packets_total (\S+)$", metrics, re.M).group(1)) > 500


def test_live_needs_capture_rights():
    """As nobody without capabilities: one line, exit 2, before any model is loaded."""
    closed = [p for p in Path(TRAFFICDL).resolve().parents if not os.stat(p).st_mode & 0o001]
    if closed:  # e.g. a checkout under `mktemp -d` (mode 0700): nobody cannot start the CLI
        pytest.skip(f"user nobody cannot enter {closed[0]} to run {TRAFFICDL}")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
           "--bounding-set=-all", TRAFFICDL, "classify", "/nonexistent/ckpt.pt", "--live", "lo"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "needs root or CAP_NET_RAW" in res.stderr


def test_live_bad_interface_and_filter(cnn):
    ckpt, _ = cnn
    for extra, message in ((["--live", "nosuch9"], "nosuch9: no such network interface"),
                           (["--live", "lo", "--bpf", "tcp portx 1"], "--bpf 'tcp portx 1'")):
        res = subprocess.run([TRAFFICDL, "classify", str(ckpt), *extra], capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
