"""A minimal parameter server built from the fault-tolerance pieces, run as a real process.

It shows, and lets the restart test check, the pattern docs/faults.md
recommends: auth via security.make_server, the centre restored from
CheckpointStore.latest_good() at start, and every commit folded, checkpointed
(K = 1) and only then acknowledged, deduplicated by (rank, sequence).

    python faults_toy_master.py BIND CHECKPOINT_DIR NUM_ELEMENTS
Token from $TRAFFICDL_TEST_TOKEN. Prints "READY <port> <restored counter>".
"""

from __future__ import annotations

import os
import sys
import threading

import grpc
import numpy as np
from trafficdl_master.snapshot_store import CheckpointStore

from trafficdl.rpc import security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc


class ToyMaster(pb_grpc.ParameterServerServicer):
    def __init__(self, store: CheckpointStore, num_elements: int) -> None:
        self.store = store
        self.lock = threading.Lock()
        snap = store.latest_good()
        if snap is None:
            self.centre = np.zeros(num_elements, dtype=np.float32)
            self.counter, self.last_seq, self.restarts = 0, {}, 0
        else:
            self.centre = snap.arrays["centre"]
            self.counter = snap.update_counter
            self.last_seq = {int(r): s for r, s in snap.meta["last_sequence"].items()}
            self.restarts = snap.meta["restarts"] + 1

    def Commit(self, request_iterator, context):
        first = next(request_iterator)
        header = first.header
        delta = np.frombuffer(b"".join(m.chunk for m in request_iterator), dtype=np.float32)
        if delta.size != self.centre.size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong number of elements")
        with self.lock:
            if header.sequence > self.last_seq.get(header.rank, 0):
                self.centre += delta
                self.counter += 1
                self.last_seq[header.rank] = header.sequence
                self.store.save(
                    {"centre": self.centre},
                    {
                        "update_counter": self.counter,
                        "last_sequence": self.last_seq,
                        "restarts": self.restarts,
                    },
                )
            return pb.CommitResponse(update_counter=self.counter)


def main() -> int:
    bind, directory, num_elements = sys.argv[1], sys.argv[2], int(sys.argv[3])
    master = ToyMaster(CheckpointStore(directory, keep=2), num_elements)
    server, port = security.make_server(bind, os.environ["TRAFFICDL_TEST_TOKEN"], max_workers=4)
    pb_grpc.add_ParameterServerServicer_to_server(master, server)
    server.start()
    print(f"READY {port} {master.counter}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
