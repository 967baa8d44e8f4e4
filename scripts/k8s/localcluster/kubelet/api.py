"""The API calls of the process kubelet, with the two identities a node really has.

The kubelet half authenticates as system:node:NAME (Node authorizer +
NodeRestriction: it reads only the Secrets/ConfigMaps its pods reference,
requests tokens only for its pods' ServiceAccounts, writes only its Node and
its pods' status). Binding pending pods is the scheduler's job, so that half
authenticates as system:kube-scheduler. Responses are plain dicts.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


def _client(kubeconfig: str) -> client.CoreV1Api:
    api = config.new_client_from_config(config_file=kubeconfig)
    return client.CoreV1Api(api)


def _data(resp: Any) -> dict[str, Any]:
    return json.loads(resp.data or b"{}")


class NodeApi:
    def __init__(self, kubeconfig: str, scheduler_kubeconfig: str, node: str) -> None:
        self.core = _client(kubeconfig)
        self.sched = _client(scheduler_kubeconfig)
        self.node = node

    def register(self, node_obj: dict[str, Any]) -> None:
        try:
            self.core.create_node(node_obj, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def heartbeat(self, status: dict[str, Any]) -> None:
        self.core.patch_node_status(self.node, {"status": status}, _preload_content=False)

    def my_pods(self) -> list[dict[str, Any]]:
        resp = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}", _preload_content=False)
        return list(_data(resp).get("items") or [])

    def all_pods(self) -> list[dict[str, Any]]:
        # As the scheduler: the Node authorizer lets a node list only its own pods.
        return list(_data(self.sched.list_pod_for_all_namespaces(_preload_content=False))
                    .get("items") or [])

    def services(self) -> list[dict[str, Any]]:
        return list(_data(self.core.list_service_for_all_namespaces(_preload_content=False))
                    .get("items") or [])

    def pending(self) -> list[dict[str, Any]]:
        resp = self.sched.list_pod_for_all_namespaces(
            field_selector="spec.nodeName=,status.phase=Pending", _preload_content=False)
        return list(_data(resp).get("items") or [])

    def bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "uid": meta["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}}
        try:
            self.sched.create_namespaced_binding(meta["namespace"], body,
                                                 _preload_content=False)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _get(self, fn: Any, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _data(fn(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status in (403, 404):  # the Node authorizer hides unreferenced objects
                return None
            raise

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.core.read_namespaced_secret, namespace, name)

    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(self.core.read_namespaced_config_map, namespace, name)

    def token(self, pod: dict[str, Any], sa: str, audience: str | None, seconds: int) -> str:
        meta = pod["metadata"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [],
                         "expirationSeconds": seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": meta["name"], "uid": meta["uid"]}}}
        resp = self.core.create_namespaced_service_account_token(
            sa, meta["namespace"], body, _preload_content=False)
        return str(_data(resp)["status"]["token"])

    def patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"],
                                                  {"status": status}, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_now(self, pod: dict[str, Any]) -> None:
        """Final removal after the containers stopped (grace 0, this uid only)."""
        meta = pod["metadata"]
        try:
            # Options in the body only: with a body the server ignores the query string.
            self.core.delete_namespaced_pod(
                meta["name"], meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                _preload_content=False)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
