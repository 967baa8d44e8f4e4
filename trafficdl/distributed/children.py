"""The local launcher's child processes: spawn with a log, restart with a budget, stop cleanly.

A local run keeps the promises a Kubernetes run keeps through its restart
policy: a master or worker that dies (any exit but 0, or 2 which is a user
error a restart cannot fix) is started again with the same command, up to
`restarts` times per process, after an exponential backoff (RESTART_BACKOFF_S
doubling, capped at RESTART_BACKOFF_CAP_S; master and workers alike). The
master resumes from its newest good checkpoint, the workers retry through the
outage and register again (docs/faults.md). Each incarnation appends to the
same log under RUN_DIR/logs/, after a `launcher:` line saying why.

Children run in their own process group, so a terminal's Ctrl-C reaches only
the launcher, which then stops them in order (`stop`): workers first (no new
commits), then the master, whose SIGTERM handler saves a last checkpoint. A
run stopped so can be continued with `--resume` (trafficdl.distributed.resume).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trafficdl.errors import TrafficdlError

RESTART_BACKOFF_S = 0.5  # before the first restart of a process; doubles with each
RESTART_BACKOFF_CAP_S = 8.0
WORKER_STOP_S = 5.0  # a worker has no state to save: SIGTERM, then SIGKILL
MASTER_STOP_S = 20.0  # the master stops its server and saves a checkpoint first
USER_ERROR = 2  # the children's exit code for bad input: a restart cannot help


class DistributedRunError(TrafficdlError):
    """A master or worker process of a local run failed."""


@dataclass
class Child:
    """One process of the run. `restart_cmd` is the command of a restart (the master's
    binds the port the workers know), `restarts` how many times it was restarted."""

    name: str
    proc: subprocess.Popen
    log: Path
    cmd: list[str]
    env: dict[str, str]
    restart_cmd: list[str] | None = None
    restarts: int = 0
    restart_at: float | None = field(default=None, compare=False)


def spawn(
    name: str, cmd: list[str], env: dict[str, str], logs: Path, *, append: bool = False
) -> Child:
    log = logs / f"{name}.log"
    with log.open("ab" if append else "wb") as fh:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, process_group=0
        )
    return Child(name, proc, log, cmd, env)


def backoff(restarts: int) -> float:
    """Seconds to wait before restart number `restarts` + 1."""
    return min(RESTART_BACKOFF_CAP_S, RESTART_BACKOFF_S * 2**restarts)


def supervise(children: list[Child], restarts: int, tick: Callable[[], None]) -> None:
    """Run until the master (children[0]) exits 0, restarting any child that dies (see
    the module doc); raises DistributedRunError for a child that cannot be restarted."""
    while True:
        now = time.monotonic()
        for i, child in enumerate(children):
            if child.restart_at is not None:
                if now >= child.restart_at:
                    children[i] = _respawn(child)
                continue
            rc = child.proc.poll()
            if rc is None or (rc == 0 and i > 0):
                continue
            if rc == 0:
                return
            if rc == USER_ERROR or child.restarts >= restarts:
                raise failure(child)
            wait = backoff(child.restarts)
            _note(child, f"launcher: {child.name} exited with code {rc}; restarting it "
                         f"({child.restarts + 1}) in {wait:.1f} s")  # fmt: skip
            child.restart_at = now + wait
        tick()
        time.sleep(0.2)


def _respawn(child: Child) -> Child:
    cmd = child.restart_cmd or child.cmd
    new = spawn(child.name, cmd, child.env, child.log.parent, append=True)
    new.restart_cmd, new.restarts = child.restart_cmd, child.restarts + 1
    return new


def _note(child: Child, line: str) -> None:
    with child.log.open("ab") as fh:
        fh.write(line.encode() + b"\n")


def failure(child: Child) -> DistributedRunError:
    return DistributedRunError(
        f"{child.name} exited with code {child.proc.returncode}: {tail(child.log)} "
        f"(log: {child.log})"
    )


def tail(log: Path, lines: int = 1) -> str:
    """The last error line of a log (or its last line)."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    useful = [t for t in text if t.strip()]
    errors = [t for t in useful if "error" in t.lower()]
    return " | ".join((errors or useful)[-lines:]) if useful else "no output"


def stop(children: list[Child]) -> None:
    """Stop what still runs: the workers first, then the master (children[0]), each
    with SIGTERM and, past its grace, SIGKILL."""
    _terminate(children[1:], WORKER_STOP_S)
    _terminate(children[:1], MASTER_STOP_S)


def _terminate(children: list[Child], grace: float) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
