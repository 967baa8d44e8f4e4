"""The few Kubernetes API calls the handlers make, on plain dicts.

kopf watches the TrafficTrainingJobs; children are read and written with the
official client here. Responses are decoded to dicts (`_preload_content=False`)
so the pure builders/planners work on the same shapes as the API. 404 on
delete and 409 on create mean "already done": creation is idempotent; any
other 4xx on create is permanent (CreateRejected) and fails the job.
The RBAC verbs in docs/operator.md are exactly the calls of this module plus
kopf's own (watch/list/patch of the jobs, create of events).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from trafficdl_operator import contract as c


class CreateRejected(Exception):
    """The API server refused a child for good (a 4xx other than 409 and 429):
    a bad quantity, an invalid volume, a name too long, Forbidden by Pod Security.
    Retrying cannot help, so the job fails with the server's message."""

    def __init__(self, kind: str, name: str, status: int | None, message: str) -> None:
        who = f"the API server rejected {kind} {name} ({status})" if status is not None else \
            f"the Kubernetes client refused {kind} {name} before sending it"
        super().__init__(f"{who}: {message}")


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or b"{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def load_config() -> None:
    """In-cluster service account if present, else the kubeconfig (KUBECONFIG honoured)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def _json(resp: Any) -> dict[str, Any]:
    return json.loads(resp.data or b"{}")


class Kube:
    """Core-v1 and custom-object calls for one operator process."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        resp = self.core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_JOB}={job}",
                                             _preload_content=False)
        items = _json(resp).get("items") or []
        # Filter again: selectors are a server-side optimisation, not a guarantee we rely on.
        return [p for p in items if (p.get("metadata", {}).get("labels") or {}).get(c.LABEL_JOB)
                == job]

    def create(self, namespace: str, obj: dict[str, Any]) -> bool:
        """Create a Pod, Service or Secret; False if it already exists.
        Raises CreateRejected for a permanent refusal (non-409/429 4xx)."""
        kind = obj["kind"]
        fn = {"Pod": self.core.create_namespaced_pod,
              "Service": self.core.create_namespaced_service,
              "Secret": self.core.create_namespaced_secret}[kind]
        try:
            fn(namespace, obj, _preload_content=False)
        except ValueError as exc:  # the client's own schema check (pydantic), e.g. nfs w/o server
            raise CreateRejected(kind, obj["metadata"]["name"], None,
                                 " ".join(str(exc).split())) from exc
        except ApiException as exc:
            if exc.status == 409:
                return False
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                raise CreateRejected(kind, obj["metadata"]["name"], exc.status,
                                     _api_message(exc)) from exc
            raise
        return True

    def delete_pod(self, namespace: str, name: str, grace_seconds: int) -> bool:
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds,
                                            _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's data, decoded; None when it does not exist."""
        try:
            resp = self.core.read_namespaced_secret(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in (_json(resp).get("data") or {}).items()}

    def read_token(self, namespace: str, job: str) -> str | None:
        raw = (self.read_secret(namespace, c.secret_name(job)) or {}).get(c.TOKEN_KEY)
        return raw.decode() if raw else None

    def replace_secret(self, namespace: str, obj: dict[str, Any]) -> None:
        """Overwrite an existing Secret's data (renewed certificates), keeping its owner."""
        name = obj["metadata"]["name"]
        self.core.patch_namespaced_secret(name, namespace, {"data": obj["data"]},
                                          _preload_content=False)

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, c.PLURAL, name,
                propagation_policy="Background", _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise
