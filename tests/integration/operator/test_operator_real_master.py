"""The operator's pods, run for real: a simulated kubelet starts the containers' commands.

The kubelet here resolves each pod's env (the token from the Secret through
its secretKeyRef), maps the data volume's mountPath onto a local directory,
starts `python -m trafficdl_master` / `trafficdl_worker` exactly as the pod
spec says, reports the pod phases from the processes and kills a process
whose pod is deleted. Only the network is loopback: the master binds the
address the operator dials (TRAFFICDL_OPERATOR_MASTER_ADDR_OVERRIDE) and the
workers' TRAFFICDL_MASTER_ADDR points there. This checks the env contract
against the real entry points, end to end, with a real (small) LSTM run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from operator_kmock import SECRETS, eventually
from support import datasets

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def make_dataset(out: Path) -> Path:
    """Two classes told apart by packet sizes: an LSTM learns them in one epoch."""
    return datasets.make_dataset(out, classes=2, per_class=120, size_step=600.0,
                                 size_noise=100.0, window_step=0.0, window_noise=0.0,
                                 iat_step=0.0)


class Kubelet:
    """Runs the job's pods as local processes and reports their phases to the API."""

    def __init__(self, cluster: Any, volume: Path, master_addr: str, logs: Path) -> None:
        self.cluster, self.volume, self.master_addr, self.logs = cluster, volume, master_addr, logs
        self.procs: dict[str, asyncio.subprocess.Process] = {}  # by pod uid
        self.envs: dict[str, dict[str, str]] = {}  # by pod name, as started

    def _secret_volume(self, pod: dict[str, Any], mount: dict[str, Any]) -> Path:
        """The pod's secret volume (the job's TLS files) as a private folder of its items."""
        vol = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])["secret"]
        data = self.cluster.live(SECRETS)[vol["secretName"]]["data"]
        folder = self.logs / f"{pod['metadata']['name']}-{pod['metadata']['uid']}-{mount['name']}"
        folder.mkdir(mode=0o700)
        for item in vol["items"]:
            (folder / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        return folder

    def _env(self, pod: dict[str, Any]) -> dict[str, str]:
        ctr = pod["spec"]["containers"][0]
        mount = ctr["volumeMounts"][0]["mountPath"]
        secrets = {m["mountPath"]: self._secret_volume(pod, m) for m in ctr["volumeMounts"]
                   if m.get("readOnly")}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        for item in ctr["env"]:
            value = item.get("value", "")
            if "fieldRef" in item.get("valueFrom", {}):  # status.podIP: one host here
                env[item["name"]] = "127.0.0.1"
            elif "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                secret = self.cluster.live(SECRETS)[ref["name"]]
                env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
            elif value == mount or value.startswith(mount + "/"):
                env[item["name"]] = str(self.volume) + value[len(mount):]
            elif any(value.startswith(m + "/") for m in secrets):
                m = next(m for m in secrets if value.startswith(m + "/"))
                env[item["name"]] = str(secrets[m]) + value[len(m):]
            else:
                env[item["name"]] = item["value"]
        env["TRAFFICDL_METRICS_PORT"] = "0"  # three processes share one host here
        env["TRAFFICDL_LINGER_SECONDS"] = "30"  # ended by the pod's deletion (cleanPodPolicy)
        if env["TRAFFICDL_ROLE"] == "master":
            env["TRAFFICDL_BIND"] = self.master_addr
        else:
            env["TRAFFICDL_MASTER_ADDR"] = self.master_addr
        return env

    async def sync(self) -> None:
        pods = self.cluster.pods()
        for name, pod in pods.items():
            uid = pod["metadata"]["uid"]
            if uid not in self.procs:
                cmd = [sys.executable, *pod["spec"]["containers"][0]["command"][1:]]
                self.envs[name] = self._env(pod)
                with (self.logs / f"{name}.log").open("ab") as log:
                    self.procs[uid] = await asyncio.create_subprocess_exec(
                        *cmd, env=self.envs[name], stdout=log, stderr=asyncio.subprocess.STDOUT)
                await self.cluster.set_pod(name, "Running")
            elif self.procs[uid].returncode is not None and \
                    pod.get("status", {}).get("phase") == "Running":
                code = self.procs[uid].returncode
                await self.cluster.set_pod(name, "Succeeded" if code == 0 else "Failed", code)
        live = {pod["metadata"]["uid"] for pod in pods.values()}
        for uid, proc in self.procs.items():
            if uid not in live and proc.returncode is None:
                proc.terminate()

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def test_real_master_and_workers_train_and_report_figures(cluster, operator, settings,
                                                                  tmp_path):
    volume = tmp_path / "volume"
    make_dataset(volume / "datasets" / "two-apps")
    spec = {
        "train": {"model": "lstm", "epochs": 1, "batchSize": 20, "seed": 1},
        "distribution": {"algorithm": "aeasgd", "window": 2},
        "data": {"volume": {"persistentVolumeClaim": {"claimName": "data"}},
                 "datasetPath": "datasets/two-apps"},
        "scale": {"workers": 2},
        "pricing": {"nodeType": "DS4v2"},
    }
    kubelet = Kubelet(cluster, volume, settings.master_addr_override, tmp_path)
    await cluster.create_job("real", spec)

    async def run_kubelet() -> None:
        while True:
            await kubelet.sync()
            await asyncio.sleep(0.1)

    task = asyncio.create_task(run_kubelet())
    try:
        await eventually(lambda: cluster.status("real").get("phase") in ("Succeeded", "Failed"),
                         timeout=120, what="the real run to finish")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kubelet.stop()
    logs = {p.name: p.read_text()[-1500:] for p in tmp_path.glob("*.log")}
    st = cluster.status("real")
    assert st["phase"] == "Succeeded", (st.get("conditions"), logs)
    run = json.loads((volume / "runs" / "real" / "run.json").read_text())
    # .status carries the run's own figures (not just any number in [0, 1]) ...
    assert st["figures"]["accuracy"] == pytest.approx(run["figures"]["accuracy"], abs=1e-4)
    assert st["figures"]["macroF1"] == pytest.approx(run["figures"]["macro_f1"], abs=1e-4)
    assert st["trainingSeconds"] == pytest.approx(run["training_seconds"], abs=1e-3)  # 3 decimals
    assert st["cost"] == pytest.approx(run["cost"], abs=1e-6) and st["currency"] == "EUR"
    # ... and the run learned: the two apps are separable in one epoch (measured 1.0).
    assert run["figures"]["accuracy"] >= 0.9, run["figures"]
    # Over mutual TLS with the operator's per-job certificates (the master refuses anything
    # else), and the token never reaches a log.
    assert st["security"] == "mTLS"
    token = base64.b64decode(cluster.live(SECRETS)["real-token"]["data"]["token"]).decode()
    assert all(token not in p.read_text() for p in tmp_path.glob("*.log"))
    for name, env in kubelet.envs.items():
        assert Path(env["TRAFFICDL_TLS_CA"]).is_file() and "TRAFFICDL_ALLOW_PLAINTEXT" not in env, \
            name
