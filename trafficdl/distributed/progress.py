"""One progress view for a whole distributed run, fed by the master's Status RPC.

The view asks the master (not the workers) because the master is where the
run's truth is: the slowest worker's epoch, commits folded, T and cost so far.
A failed Status call (master busy or gone) just skips a refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

PHASE_NAMES = {v: k.removeprefix("RUN_PHASE_").lower() for k, v in pb.RunPhase.items()}
REFRESH_SECONDS = 0.5


class ProgressView:
    def __init__(
        self, enabled: bool = True, on_status: Callable[[pb.StatusResponse], None] | None = None
    ) -> None:
        self.enabled = enabled
        self.on_status = on_status
        self.client: ParameterServerClient | None = None
        self.last: pb.StatusResponse | None = None
        self._next = 0.0
        self._bar: Any = None
        self._task: Any = None

    def start(self, target: str, run_id: str, epochs: int, *, token: str | None = None) -> None:
        self.client = ParameterServerClient(target, run_id, token=token)
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self._task = self._bar.add_task("waiting", total=1.0, info="")
            self._bar.start()

    def update(self) -> None:
        now = time.monotonic()
        if self.client is None or now < self._next:
            return
        self._next = now + REFRESH_SECONDS
        try:
            st = self.client.status(timeout=2.0)
        except grpc.RpcError:
            return
        self.last = st
        if self.on_status is not None:
            self.on_status(st)
        if self._bar is not None:
            info = (
                f"epoch {st.epoch:.2f}/{st.epochs}  workers {st.workers_connected}/{st.world_size}"
                f"  commits {st.commits_total}  T {st.training_seconds:.1f}s"
                f"  cost {st.cost:.4f} {st.currency}"
            )
            self._bar.update(
                self._task, completed=st.progress, description=PHASE_NAMES[st.phase], info=info
            )

    def finish(self, run: dict[str, Any]) -> None:
        """Show the run's final figures (the master may exit before the next refresh)."""
        if self._bar is not None:
            f = run["figures"]
            info = (
                f"T {run['training_seconds']:.1f}s  WTPE {run['wtpe_seconds']:.2f}s"
                f"  cost {run['cost']:.4f} {run['currency']}  commits {run['commits_total']}"
                f"  accuracy {f['accuracy']:.3f}  macro F {f['macro_f1']:.3f}"
            )
            self._bar.update(self._task, completed=1.0, description="succeeded", info=info)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.client is not None:
            self.client.close()
            self.client = None
