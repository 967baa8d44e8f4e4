"""One pod on the process kubelet: its container processes, their restarts and its PodStatus.

`PodRuntime.sync(pod)` is called every loop turn with the pod as the API
server has it; it starts containers, reaps exits, applies restartPolicy
(Always / OnFailure / Never, with a doubling back-off as CrashLoopBackOff),
runs the probes (liveness failure restarts the container after its grace
period), handles graceful deletion (SIGTERM to the process group, SIGKILL
after the grace period) and returns the PodStatus to report. Init containers
run first, one at a time, each to a zero exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcluster.kubelet import probes
from localcluster.kubelet.podenv import Api, PodEnvError, container_env, launcher, prepare_volumes


def iso(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    spec: dict[str, Any]
    init: bool = False
    proc: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    restarts: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {
        "reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    kill_at: float | None = None
    reaped: bool = False
    retry_at: float = 0.0
    readiness: probes.Prober | None = None
    liveness: probes.Prober | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def terminate(self, grace: float) -> None:
        if self.running() and self.kill_at is None:
            self.signal(signal.SIGTERM)
            self.kill_at = probes.now() + grace

    def status(self) -> dict[str, Any]:
        probe = self.readiness
        ready = bool(self.running() and (probe is None or probe.probe is None or probe.ok))
        out = {"name": self.name, "image": self.spec.get("image", ""), "imageID": "",
               "ready": ready and not self.init, "started": self.running(),
               "restartCount": self.restarts, "state": self.state,
               "lastState": self.last_state}
        if self.proc is not None:
            out["containerID"] = f"process://{self.proc.pid}"
        return out


class PodRuntime:
    def __init__(self, pod: dict[str, Any], ip: str, folder: Path, node_dir: Path, api: Api,
                 api_port: int, ca: bytes, hosts: Path, pids: Path) -> None:
        self.pod, self.ip, self.folder, self.node_dir = pod, ip, folder, node_dir
        self.pids = pids  # one file per live container process: `down` kills leftovers
        self.api, self.api_port, self.ca, self.hosts = api, api_port, ca, hosts
        spec = pod["spec"]
        self.inits = [Container(c, init=True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c) for c in spec.get("containers") or []]
        self.volumes: dict[str, Path] | None = None
        self.start_time = iso()
        self.phase = "Pending"
        self.deleting = False
        self._since: dict[str, tuple[str, str]] = {}  # condition -> (status, since)

    # -- container lifecycle --------------------------------------------------------
    def _start(self, c: Container) -> None:
        try:
            if self.volumes is None:
                self.volumes = prepare_volumes(self.api, self.pod, self.folder, self.node_dir,
                                               self.ca)
            c.env = container_env(self.api, self.pod, c.spec, self.ip, self.api_port)
            argv = launcher(c.spec, self.volumes, self.hosts, c.env)
        except PodEnvError as exc:
            c.state = {"waiting": {"reason": exc.reason, "message": str(exc)}}
            c.retry_at = probes.now() + 2
            return
        log = self.folder / f"{c.name}.log"
        with open(log, "ab") as fh:
            c.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=c.env,
                                      start_new_session=True, cwd=self.folder)
        self.pids.mkdir(parents=True, exist_ok=True)
        (self.pids / f"pod-{c.proc.pid}").write_text(str(c.proc.pid))
        now = probes.now()
        c.started_at, c.kill_at, c.reaped = iso(), None, False
        c.state = {"running": {"startedAt": c.started_at}}
        c.readiness = probes.Prober(c.spec.get("readinessProbe"), now)
        c.liveness = probes.Prober(c.spec.get("livenessProbe"), now)

    def _reap(self, c: Container) -> int | None:
        """Exit code if the container just exited (state becomes terminated)."""
        if c.proc is None or c.reaped or c.proc.poll() is None:
            return None
        c.reaped = True
        rc = c.proc.returncode
        (self.pids / f"pod-{c.proc.pid}").unlink(missing_ok=True)
        code = 128 - rc if rc < 0 else rc
        c.state = {"terminated": {"exitCode": code,
                                  "reason": "Completed" if code == 0 else "Error",
                                  "startedAt": c.started_at, "finishedAt": iso(),
                                  "containerID": f"process://{c.proc.pid}"}}
        c.readiness = None
        return code

    def _restart_due(self, c: Container, code: int) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if c.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _grace(self) -> float:
        meta = self.pod["metadata"]
        if meta.get("deletionGracePeriodSeconds") is not None:
            return float(meta["deletionGracePeriodSeconds"])
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    def _tick(self, c: Container) -> None:
        now = probes.now()
        if c.kill_at is not None and now >= c.kill_at:
            c.signal(signal.SIGKILL)
        code = self._reap(c)
        if code is not None:
            if self._restart_due(c, code) and not self.deleting:
                c.last_state, c.restarts = c.state, c.restarts + 1
                delay = min(10.0 * 2 ** min(c.restarts - 1, 5), 300.0) if c.restarts > 1 else 1
                c.retry_at = now + delay
                c.state = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                       f"back-off {delay:.0f}s restarting failed container"}}
            return
        if c.proc is None or "waiting" in c.state:
            if not self.deleting and now >= c.retry_at:
                self._start(c)
            return
        if not c.running() or c.kill_at is not None:
            return
        for prober, live in ((c.readiness, False), (c.liveness, True)):
            if prober is not None and prober.due(now):
                prober.record(probes.check(prober.probe or {}, c.spec, self.ip, c.env), now)
                if live and prober.failed():
                    c.terminate(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))

    # -- the pod ------------------------------------------------------------------------
    def sync(self, pod: dict[str, Any]) -> dict[str, Any]:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.deleting:
            self.deleting = True
            for c in self.inits + self.containers:
                c.terminate(self._grace())
        if self.phase in ("Succeeded", "Failed"):
            for c in self.inits + self.containers:
                self._reap(c)
            return self.status()
        pending_init = [c for c in self.inits if "terminated" not in c.state
                        or c.state["terminated"]["exitCode"] != 0]
        if pending_init:
            self._tick(pending_init[0])
        else:
            for c in self.containers:
                self._tick(c)
        self.phase = self._phase()
        return self.status()

    def _phase(self) -> str:
        failed_init = any("terminated" in c.state and c.state["terminated"]["exitCode"] != 0
                          and self.pod["spec"].get("restartPolicy") == "Never"
                          for c in self.inits)
        if failed_init:
            return "Failed"
        states = [c.state for c in self.containers]
        if states and all("terminated" in s for s in states):
            ok = all(s["terminated"]["exitCode"] == 0 for s in states)
            return "Succeeded" if ok else "Failed"
        if any(c.proc is not None for c in self.containers):
            return "Running"
        return "Pending"

    def stopped(self) -> bool:
        for c in self.inits + self.containers:
            if c.kill_at is not None and probes.now() >= c.kill_at:
                c.signal(signal.SIGKILL)
            self._reap(c)
        return not any(c.running() for c in self.inits + self.containers)

    def kill(self) -> None:
        for c in self.inits + self.containers:
            c.signal(signal.SIGKILL)
            if c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=5)
                self._reap(c)

    def status(self) -> dict[str, Any]:
        now = iso()
        inits_done = all("terminated" in c.state and c.state["terminated"]["exitCode"] == 0
                         for c in self.inits)
        ready = bool(self.containers) and all(c.status()["ready"] for c in self.containers) \
            and not self.deleting and self.phase == "Running"

        def cond(kind: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
            value = "True" if ok else "False"
            if self._since.get(kind, ("", ""))[0] != value:
                self._since[kind] = (value, now)
            # reason null when true: a merge patch must remove an earlier reason
            return {"type": kind, "status": value, "lastProbeTime": None,
                    "lastTransitionTime": self._since[kind][1],
                    "reason": None if ok else reason}

        return {
            "phase": self.phase,
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.ip, "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", inits_done, "ContainersNotInitialized"),
                cond("Ready", ready, "ContainersNotReady"),
                cond("ContainersReady", ready, "ContainersNotReady"),
                cond("PodScheduled", True),
            ],
            "initContainerStatuses": [c.status() for c in self.inits],
            "containerStatuses": [c.status() for c in self.containers],
        }
