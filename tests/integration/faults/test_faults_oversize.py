"""An oversized message is refused before the master allocates memory for it.

The server runs in its own process so its peak RSS can be read before and
after a 64 MiB message is thrown at its 1 MiB limit. A control run with a
limit above the message shows the same measurement does see the allocation.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import grpc
import pytest

from trafficdl.rpc import security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

MESSAGE_MIB = 64
SERVER = textwrap.dedent(
    """
    import os, sys, threading, time
    from trafficdl.rpc import security
    from trafficdl.rpc.v1 import parameter_server_pb2 as pb
    from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

    PAGE = os.sysconf("SC_PAGE_SIZE")
    peak = 0

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20

    def sample():  # ru_maxrss misses short peaks on recent kernels: sample VmRSS instead
        global peak
        while True:
            peak = max(peak, rss_mib())
            time.sleep(0.0005)

    class Sink(pb_grpc.ParameterServerServicer):
        def Commit(self, request_iterator, context):
            return pb.CommitResponse(update_counter=sum(len(m.chunk) for m in request_iterator))

    server, port = security.make_server(
        "127.0.0.1:0", sys.argv[1], max_workers=2, max_message_bytes=int(sys.argv[2])
    )
    pb_grpc.add_ParameterServerServicer_to_server(Sink(), server)
    server.start()
    threading.Thread(target=sample, daemon=True).start()
    print(port, flush=True)
    for _ in sys.stdin:  # one line in: peak RSS (MiB) since the previous line out
        time.sleep(0.01)
        print(peak, flush=True)
        peak = rss_mib()
    server.stop(None)
    """
)
TOKEN = security.generate_token()


def _peak_growth_mib(limit: int) -> tuple[float, grpc.StatusCode]:
    """Peak-RSS growth of a server with `limit` while it receives one big message."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, TOKEN, str(limit)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def rss() -> float:
        proc.stdin.write("?\n")
        proc.stdin.flush()
        return float(proc.stdout.readline())

    try:
        port = int(proc.stdout.readline())
        big = b"\x01" * (MESSAGE_MIB << 20)

        def messages() -> Iterator[pb.CommitRequest]:
            yield pb.CommitRequest(chunk=big)

        with security.make_channel(
            f"127.0.0.1:{port}", TOKEN, max_message_bytes=len(big) + 4096
        ) as channel:
            stub = pb_grpc.ParameterServerStub(channel)
            before = rss()
            try:
                stub.Commit(messages(), timeout=30)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            return rss() - before, code
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        proc.stdout.close()


@pytest.mark.timeout(120)
def test_oversized_message_is_refused_without_allocating_it() -> None:
    growth, code = _peak_growth_mib(1 << 20)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert growth < MESSAGE_MIB / 4, f"server peak RSS grew {growth:.0f} MiB"
    # Control: the same measurement sees a message the server does accept.
    accepted_growth, accepted = _peak_growth_mib((MESSAGE_MIB + 1) << 20)
    assert accepted == grpc.StatusCode.OK
    assert accepted_growth > MESSAGE_MIB
    print(f"peak RSS growth: refused {growth:.1f} MiB, accepted {accepted_growth:.0f} MiB")
