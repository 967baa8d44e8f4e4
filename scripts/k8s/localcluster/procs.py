"""Start, record and stop the cluster's processes so that nothing outlives `down`.

Every process runs in its own session (process group); its pid goes to
<folder>/pids/<name>. `stop_all` sends SIGTERM to each group, waits, then
SIGKILLs what is left — the same grace rule the process kubelet applies to pods.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: Path, name: str, argv: list[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    logs, pids = folder / "logs", folder / "pids"
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd)
    (pids / name).write_text(str(proc.pid))
    return proc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop_group(pid: int, grace: float) -> None:
    """SIGTERM the process group of `pid`, SIGKILL it after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not alive(pid):
                return
            time.sleep(0.1)


def stop_all(folder: Path, order: list[str], grace: float = 10.0) -> list[str]:
    """Stop the recorded processes, `order` first (kubelet before the API server)."""
    pids = folder / "pids"
    if not pids.is_dir():
        return []
    names = [n for n in order if (pids / n).exists()]
    names += sorted(p.name for p in pids.iterdir() if p.name not in names)
    stopped = []
    for name in names:
        path = pids / name
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if alive(pid):
            stop_group(pid, grace)
            stopped.append(name)
        path.unlink(missing_ok=True)
    return stopped
