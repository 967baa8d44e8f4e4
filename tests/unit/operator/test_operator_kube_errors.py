"""Create errors: 409 is "already done", 429/5xx are retried, any other 4xx is permanent."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException
from trafficdl_operator.kube import CreateRejected, Kube


class _Core:
    def __init__(self, status: int, message: str = "") -> None:
        self.status, self.message = status, message

    def create_namespaced_pod(self, namespace, obj, **_):
        exc = ApiException(status=self.status, reason="Unprocessable Entity")
        exc.body = json.dumps({"kind": "Status", "message": self.message}).encode()
        raise exc

    create_namespaced_service = create_namespaced_secret = create_namespaced_pod


def _kube(status: int, message: str = "") -> Kube:
    kube = Kube.__new__(Kube)
    kube.core = _Core(status, message)
    return kube


POD = {"kind": "Pod", "metadata": {"name": "j-worker-0"}}


def test_conflict_means_it_exists():
    assert _kube(409).create("ns", POD) is False


@pytest.mark.parametrize("status", [400, 403, 422])
def test_other_client_errors_are_permanent_with_the_servers_message(status: int):
    msg = 'Pod "j-worker-0" is invalid: spec.containers[0].resources.requests[cpu]: quantities'
    with pytest.raises(CreateRejected) as info:
        _kube(status, msg).create("ns", POD)
    assert msg in str(info.value) and f"Pod j-worker-0 ({status})" in str(info.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(status: int):
    with pytest.raises(ApiException):
        _kube(status).create("ns", POD)


def test_a_body_the_client_itself_refuses_is_permanent_too():
    class _Strict:
        def create_namespaced_pod(self, namespace, obj, **_):
            raise ValueError("1 validation error\nspec.volumes.0.nfs.server\n  Field required")

        create_namespaced_service = create_namespaced_secret = create_namespaced_pod

    kube = Kube.__new__(Kube)
    kube.core = _Strict()
    with pytest.raises(CreateRejected, match=r"client refused Pod j-worker-0 .*nfs\.server Field"):
        kube.create("ns", POD)
