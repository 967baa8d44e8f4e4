"""Small helpers over kubectl for the control-plane tests: JSON in, JSON out, waiting."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import yaml
from localcluster.control import Cluster


class Kube:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def run(self, *args: str, input: str | None = None, kubeconfig: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.cluster.env()
        if kubeconfig:
            env["KUBECONFIG"] = kubeconfig
        res = subprocess.run([self.cluster.bins.kubectl, *args], capture_output=True, text=True,
                             env=env, input=input, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
        return res

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, obj: dict[str, Any] | list[dict[str, Any]], *args: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        docs = obj if isinstance(obj, list) else [obj]
        return self.run("apply", "-f", "-", *args, input=yaml.safe_dump_all(docs), check=check)

    def wait_for(self, what: str, fn: Callable[[], Any], timeout: float = 60,
                 every: float = 0.5) -> Any:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = fn()
            except AssertionError as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last}")
