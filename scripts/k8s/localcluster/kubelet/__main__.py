"""`python -m localcluster.kubelet`: the process kubelet of the local cluster.

A stand-in for kubelet + scheduler + container runtime that runs pods as local
processes (see podenv.py for what a process sees, network.py for pod IPs and
Service names, runtime.py for the container state machine). One loop, every
0.5 s: bind pending pods to this node, sync each of its pods and patch
status when it changed, finish graceful deletions, refresh each pod's hosts
file, and heartbeat the Node. SIGTERM stops every pod's processes, then exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

from localcluster.kubelet.api import NodeApi
from localcluster.kubelet.network import Addresses, hosts_text, service_table, write_in_place
from localcluster.kubelet.runtime import PodRuntime, iso

log = logging.getLogger("kubelet")


def node_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "trafficdl.io/process-kubelet": "true"}}}


def node_status() -> dict[str, Any]:
    now = iso()
    return {
        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110",
                        "ephemeral-storage": "100Gi"},
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                      {"type": "Hostname", "address": "localhost"}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "process kubelet is posting ready status",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": "process-kubelet", "containerRuntimeVersion": "process://",
                     "operatingSystem": "linux", "architecture": "amd64",
                     "kernelVersion": "", "osImage": "", "kubeProxyVersion": "",
                     "machineID": "", "systemUUID": "", "bootID": ""},
    }


class Kubelet:
    def __init__(self, api: NodeApi, folder: Path, api_port: int, ca: bytes,
                 pids: Path) -> None:
        self.api, self.folder, self.api_port, self.ca = api, folder, api_port, ca
        self.pids = pids
        self.addresses = Addresses()
        self.pods: dict[str, PodRuntime] = {}
        self.reported: dict[str, str] = {}
        self.stopping = False

    def turn(self) -> None:
        for pod in self.api.pending():
            if not pod["metadata"].get("deletionTimestamp") and \
                    pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler":
                self.api.bind(pod)
        mine = {p["metadata"]["uid"]: p for p in self.api.my_pods()}
        table = service_table(self.api.services(), self.api.all_pods())
        for uid, pod in mine.items():
            rt = self.pods.get(uid)
            if rt is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue  # finished before this kubelet started: nothing to run
                ip = self.addresses.allocate(uid)
                folder = self.folder / "pods" / f"{pod['metadata']['namespace']}_" \
                    f"{pod['metadata']['name']}_{uid}"
                folder.mkdir(parents=True, exist_ok=True)
                rt = PodRuntime(pod, ip, folder, self.folder, self.api, self.api_port, self.ca,
                                folder / "hosts", self.pids)
                self.pods[uid] = rt
            write_in_place(rt.hosts, hosts_text(pod, rt.ip, table))
            try:
                status = rt.sync(pod)
            except Exception:
                log.exception("sync of %s failed", pod["metadata"]["name"])
                continue
            text = json.dumps(status, sort_keys=True)
            if self.reported.get(uid) != text:
                self.api.patch_status(pod, status)
                self.reported[uid] = text
            if rt.deleting and rt.stopped():
                self.api.delete_now(pod)
        for uid in [u for u in self.pods if u not in mine]:  # gone from the API
            self.forget(uid)

    def forget(self, uid: str) -> None:
        rt = self.pods.pop(uid)
        rt.kill()
        self.addresses.release(uid)
        self.reported.pop(uid, None)
        shutil.rmtree(rt.folder / "volumes", ignore_errors=True)

    def run(self) -> None:
        self.api.register(node_object(self.api.node))
        last_beat = 0.0
        while not self.stopping:
            if time.monotonic() - last_beat > 10:
                self.api.heartbeat(node_status())
                last_beat = time.monotonic()
            try:
                self.turn()
            except Exception:
                log.exception("kubelet turn failed")
            time.sleep(0.5)
        # Stopping the node: SIGTERM every container, SIGKILL what is left after 6 s.
        for rt in self.pods.values():
            rt.deleting = True
            for c in rt.inits + rt.containers:
                c.terminate(6.0)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not all(rt.stopped() for rt in self.pods.values()):
            time.sleep(0.2)
        for uid in list(self.pods):
            self.forget(uid)


def main() -> None:
    p = argparse.ArgumentParser(prog="localcluster.kubelet", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--scheduler-kubeconfig", required=True)
    p.add_argument("--folder", required=True, type=Path)
    p.add_argument("--node-name", required=True)
    p.add_argument("--api-server", required=True)
    p.add_argument("--ca", required=True, type=Path)
    p.add_argument("--pids", required=True, type=Path, help="where container pids are recorded")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args.folder.mkdir(parents=True, exist_ok=True)
    port = urllib.parse.urlparse(args.api_server).port or 443
    kubelet = Kubelet(NodeApi(args.kubeconfig, args.scheduler_kubeconfig, args.node_name),
                      args.folder, port, args.ca.read_bytes(), args.pids)

    def stop(*_: Any) -> None:
        kubelet.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run()


if __name__ == "__main__":
    main()
