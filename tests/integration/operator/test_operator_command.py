"""`trafficdl operator` as a user runs it: a separate process against kmock via KUBECONFIG."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from operator_kmock import eventually
from test_operator_lifecycle import PODS, SPEC

pytestmark = pytest.mark.asyncio


async def test_trafficdl_operator_command_reconciles_a_job(cluster):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trafficdl.cli", "operator", "--all-namespaces",
        "--metrics-port", "0", "--reconcile-interval", "0.3",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await cluster.create_job("j", SPEC)
        await eventually(lambda: set(cluster.pods()) == set(PODS), timeout=30,
                         what="pods from the operator process")
        await eventually(lambda: cluster.status("j").get("phase") == "Created", what="status")
    finally:
        proc.send_signal(signal.SIGINT)  # kopf stops gracefully on SIGINT/SIGTERM
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
