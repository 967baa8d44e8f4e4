"""The real master's pieces (Center, servicer, Checkpointer in log mode, restore) as a process.

For test_faults_commitlog_kill.py: the run's state is restored from the
checkpoint directory (snapshot + commit log replay) when one exists, and every
commit is folded, logged with group commit and acknowledged once durable.

    python faults_log_master.py CHECKPOINT_DIR NUM_ELEMENTS WORLD
Prints "READY <port> <restored update counter>" once it listens on 127.0.0.1.
$TRAFFICDL_TEST_COMMITLOG_STALL stalls the log writer (commitlog.py).
"""

from __future__ import annotations

import sys
import threading

import torch
from trafficdl_master.center import Center
from trafficdl_master.recovery import Checkpointer, restore
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.snapshot_store import CheckpointStore
from trafficdl_master.state import CenterState

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.spec import RunSpec
from trafficdl.optim import get_rule


def main(directory: str, elements: int, world: int) -> None:
    spec = RunSpec(run_id="kill", train=TrainConfig(model="lstm"),
                   dist=DistConfig(workers=world, algorithm="downpour"), dataset="",
                   num_classes=2, label_names=["a", "b"], model_version="kill")  # fmt: skip
    store = CheckpointStore(directory)
    state = restore(store, spec)
    restored = state is not None
    if state is None:
        state = CenterState(vector=torch.zeros(elements), world_size=world)
    center = Center(state, get_rule("downpour"))
    if restored:
        center.resume()
    servicer = ParameterServerServicer(spec, center)
    Checkpointer(store, spec, center, every=1).attach(servicer)
    server, port, _ = make_master_server(servicer, "127.0.0.1:0")
    server.start()
    print("READY", port, state.update_counter, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
