"""The two ends of the link-cut test, run as real processes inside namespaces.

`server BIND`: a ParameterServer whose Heartbeat counts distinct batches
(a retried heartbeat is not counted twice), behind the token interceptor.
`client TARGET N`: N heartbeats in order, each wrapped in call_with_retry,
printing one line per event so the test can time the outage:
    OK <i> <counter> <t>  |  RETRY <attempt> <code> <t>  |  DONE  |  FAILED <reason>
where <t> is time.monotonic() when it happened (one clock for all processes
on the machine, so pipe delays under load do not skew the test's timing).
The token comes from $TRAFFICDL_TEST_TOKEN (never on the command line).
"""

from __future__ import annotations

import os
import sys
import threading
import time

import grpc

from trafficdl.rpc import retry, security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

# Short timers so a 3 s cut is noticed and healed within the test's budget.
ATTEMPT_TIMEOUT_S = 1.0
POLICY = retry.RetryPolicy(
    initial_backoff_s=0.1, max_backoff_s=1.0, max_attempts=None, deadline_s=30
)


class Counting(pb_grpc.ParameterServerServicer):
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.lock = threading.Lock()

    def Heartbeat(self, request, context):
        with self.lock:
            self.seen.add(request.batches_done)
            return pb.HeartbeatResponse(update_counter=len(self.seen))


def serve(bind: str, token: str) -> None:
    # A lab address is no loopback: plaintext is this link test's explicit choice.
    server, port = security.make_server(bind, token, max_workers=4, allow_plaintext=True)
    pb_grpc.add_ParameterServerServicer_to_server(Counting(), server)
    server.start()
    print(f"READY {port}", flush=True)
    server.wait_for_termination()


def client(target: str, token: str, n: int) -> int:
    channel = security.make_channel(
        target,
        token,
        keepalive_s=1.0,
        keepalive_timeout_s=1.0,
        max_reconnect_backoff_s=1.0,
        allow_plaintext=True,
    )
    stub = pb_grpc.ParameterServerStub(channel)

    def on_retry(attempt: int, delay: float, exc: BaseException) -> None:
        code = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
        print(f"RETRY {attempt} {code} {time.monotonic()}", flush=True)

    try:
        for i in range(1, n + 1):
            request = pb.HeartbeatRequest(batches_done=i)
            reply = retry.call_with_retry(
                lambda r=request: stub.Heartbeat(r, timeout=ATTEMPT_TIMEOUT_S),
                POLICY,
                on_retry=on_retry,
                what="heartbeat",
            )
            if reply.update_counter != i:
                print(f"FAILED counter {reply.update_counter} after heartbeat {i}", flush=True)
                return 1
            print(f"OK {i} {reply.update_counter} {time.monotonic()}", flush=True)
            time.sleep(0.02)
    except (retry.RetryError, grpc.RpcError) as exc:
        print(f"FAILED {exc}", flush=True)
        return 1
    finally:
        channel.close()
    print("DONE", flush=True)
    return 0


def main() -> int:
    token = os.environ["TRAFFICDL_TEST_TOKEN"]
    if sys.argv[1] == "server":
        serve(sys.argv[2], token)
        return 0
    return client(sys.argv[2], token, int(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(main())
