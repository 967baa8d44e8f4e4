"""A small client for the master's Status RPC (trafficdl.rpc.v1.ParameterServer/Status).

The operator asks, it never streams: one short-deadline unary call per
reconciliation with the run's bearer token (through trafficdl.rpc.security's
channel, the one way the project sends it) over mutual TLS with the job's CA
and the operator's own client certificate, a fresh channel each time (a
restarted master gets a new pod IP behind the same Service name). Any RPC
error returns None: "no news" is not a failure, pods and restarts are judged
from the API server.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from trafficdl.rpc.security import ClientTls, make_channel
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc
from trafficdl_operator.status import master_fields

log = logging.getLogger(__name__)


def fetch_status(addr: str, run_id: str, token: str, timeout: float,
                 tls: ClientTls | None = None) -> dict[str, Any] | None:
    """The status fields the master reports, or None when it does not answer.

    `tls`: the operator's client certificate and the job's CA (mutual TLS, the
    default); None only for a job with spec.security.insecure, whose pod network
    the user declared trusted (the token then travels in clear, as for its pods).
    """
    channel = make_channel(addr, token, tls=tls, allow_plaintext=tls is None)
    try:
        stub = pb_grpc.ParameterServerStub(channel)
        resp = stub.Status(pb.StatusRequest(run_id=run_id), timeout=timeout)
    except grpc.RpcError as exc:
        log.debug("master %s did not answer Status: %s", addr, exc.code())
        return None
    finally:
        channel.close()
    fields = master_fields(resp)
    if not resp.HasField("figures"):
        fields.pop("figures", None)
    return fields
