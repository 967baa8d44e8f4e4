"""The Status client against a loopback server that checks the bearer token like the master."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from trafficdl_operator.masterclient import fetch_status

from trafficdl.rpc.security import generate_token, make_server
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

TOKEN = generate_token()


class Master(pb_grpc.ParameterServerServicer):
    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> Any:
        return pb.StatusResponse(run_id=request.run_id, phase=pb.RUN_PHASE_RUNNING, epoch=2.5,
                                 epochs=10, progress=0.25, currency="EUR")


@pytest.fixture()
def addr() -> Iterator[str]:
    server, port = make_server("127.0.0.1:0", TOKEN, max_workers=2)
    pb_grpc.add_ParameterServerServicer_to_server(Master(), server)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


def test_fetches_the_status_fields_with_the_right_token(addr):
    fields = fetch_status(addr, "run-1", TOKEN, timeout=5)
    assert fields is not None
    assert (fields["epoch"], fields["epochs"], fields["progress"]) == (2.5, 10, 0.25)
    assert fields["masterPhase"] == "Running" and "figures" not in fields


def test_wrong_token_or_no_master_is_no_news(addr):
    assert fetch_status(addr, "run-1", generate_token(), timeout=5) is None
    dead = addr.rsplit(":", 1)[0] + ":1"
    assert fetch_status(dead, "run-1", TOKEN, timeout=0.5) is None
