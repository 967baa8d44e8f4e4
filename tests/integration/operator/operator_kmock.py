"""Test support: kmock 0.8 made into a Kubernetes API good enough for a real kopf operator.

kmock (the kopf author's mock API server) emulates objects in memory but, as
measured here, lacks what kopf and our operator rely on. Each fix below is
the smallest that makes the real behaviour observable, not a shortcut around
the operator:

- no resourceVersion/uid/creationTimestamp/generation/generateName: stamped on every write
  (kopf's JSON-patch carries a `test` op on resourceVersion; without one it
  fails and kopf retries forever); a failed `test` answers 409/422 like a
  real server instead of 500;
- snapshot-then-subscribe watch race: the watch subscribes to the event bus
  under the same lock that takes the snapshot, so no write falls in between;
- no garbage collector: deleting an object deletes its dependents (by
  ownerReferences uid), so "delete the job" really removes its children;
- list ignores labelSelector: equality selectors are applied (the operator
  filters again anyway);
- `GET /api/v1/namespaces` answers 500: kopf runs cluster-wide (-A);
- a posted CRD registers nothing: the resource is declared from the CRD file;
- per-request cost grows with the request log: the log is trimmed.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml
from kmock._internal import enums, k8s

REPO = Path(__file__).resolve().parents[3]
CRD_PATH = REPO / "charts/trafficdl/crds/traffictrainingjobs.trafficdl.io.yaml"
PODS = kmock.resource("", "v1", "pods")
SERVICES = kmock.resource("", "v1", "services")
SECRETS = kmock.resource("", "v1", "secrets")
EVENTS = kmock.resource("", "v1", "events")
_REQUEST_LOG_LIMIT = 100


class KubeEmulator(kmock.KubernetesEmulator):
    """KubernetesEmulator plus the API-server behaviour kopf needs (see module doc)."""

    _versions = itertools.count(1)
    _last_rv = 0

    def _get(self, request: kmock.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        obj = self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get)
        return None if obj is None or obj.deleted else obj

    def _stamp(self, request: kmock.Request) -> None:
        if request.action not in (enums.action.CREATE, enums.action.UPDATE):
            return
        self._last_rv = next(self._versions)
        rv = str(self._last_rv)
        data = request.data
        if request.action == enums.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):  # kopf's Events use it
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC)
                            .strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta.setdefault("generation", 1)
            meta.setdefault("namespace", request.namespace)
            meta["resourceVersion"] = rv
        elif request.action == enums.action.UPDATE and request.name is not None:
            obj = self._get(request)
            gen = int((obj or {}).get("metadata", {}).get("generation", 1))
            if isinstance(data, dict):
                if data.get("metadata") is None:
                    data["metadata"] = {}
                data["metadata"]["resourceVersion"] = rv
                if "spec" in data and request.subresource is None:
                    data["metadata"]["generation"] = gen + 1
            elif isinstance(data, list):
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": rv})
                if any(op.get("path", "").startswith("/spec") for op in data):
                    data.append({"op": "add", "path": "/metadata/generation", "value": gen + 1})

    async def _handle(self, request: kmock.Request) -> Any:
        if len(self._requests) > _REQUEST_LOG_LIMIT:
            del self._requests[:-_REQUEST_LOG_LIMIT]
        if request.resource is not None:
            self._stamp(request)
        try:
            return await super()._handle(request)
        finally:
            if request.resource is not None and request.action in (
                    enums.action.DELETE, enums.action.UPDATE):
                await self._collect_garbage()

    async def _render_error(self, exc: Exception) -> Any:
        if isinstance(exc, jsonpatch.JsonPatchTestFailed):  # optimistic concurrency conflict
            exc = k8s.KubernetesError(status=422, reason="Invalid", message=str(exc))
        return await super()._render_error(exc)

    async def _collect_garbage(self) -> None:
        """Delete (recursively) every object whose owners are all gone."""
        while True:
            async with self._lock:
                live = {key: obj for key, obj in self._objects.items() if not obj.deleted}
                uids = {obj.get("metadata", {}).get("uid") for obj in live.values()}
                orphans = [
                    (key, obj) for key, obj in live.items()
                    if (refs := obj.get("metadata", {}).get("ownerReferences") or [])
                    and not any(ref.get("uid") in uids for ref in refs)
                ]
                for (resource, _ns, _name), obj in orphans:
                    raw = obj.raw
                    obj.delete()
                    await self._buses[resource].put({"type": "DELETED", "object": raw})
            if not orphans:
                return

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        result["metadata"] = {"resourceVersion": str(self._last_rv)}
        selector = request.params.get("labelSelector")
        if selector:
            wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
            result["items"] = [
                item for item in result["items"]
                if all((item.get("metadata", {}).get("labels") or {}).get(k) == v
                       for k, v in wanted.items())
            ]
        return result

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        yield b""
        assert request.resource is not None
        bus = self._buses[request.resource]
        get_objs = self._KubernetesEmulator__get_objs  # type: ignore[attr-defined]
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        since = request.params.get("resourceVersion", "")
        since_rv = int(since) if since.isdigit() else 0
        async with self._lock:  # snapshot and subscribe atomically: no lost events
            # Like a real server, a watch from a LIST's resourceVersion replays only newer changes.
            events = [{"type": "ADDED", "object": obj.raw}
                      for obj in get_objs(request, strict=False) if not obj.deleted
                      and int(obj.get("metadata", {}).get("resourceVersion") or 0) > since_rv]
            mark = await bus.mark()
        try:
            for event in events:
                yield event
            async for event in bus.stream(since=mark):
                meta = event.get("object", {}).get("metadata", {})
                if check(request, request.resource, meta.get("namespace"), meta.get("name"),
                         strict=False):
                    yield event
        finally:
            await bus.unmark(mark)


def load_crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


def declare_resources(k: KubeEmulator) -> kmock.resource:
    """Declare core resources and the TrafficTrainingJob (as a real API server would)."""
    verbs = {"list", "watch", "get", "create", "patch", "delete"}
    for plural, kind in (("pods", "Pod"), ("services", "Service"), ("secrets", "Secret"),
                         ("events", "Event")):
        k.resources[f"v1/{plural}"] = kmock.ResourceInfo(kind=kind, namespaced=True, verbs=verbs)
    # kopf waits for the namespaces resource to be discovered even when it runs cluster-wide.
    k.resources["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", namespaced=False,
                                                      verbs=verbs)
    crd = load_crd()["spec"]
    version = crd["versions"][0]
    ttj = kmock.resource(crd["group"], version["name"], crd["names"]["plural"])
    k.resources[ttj] = kmock.ResourceInfo(
        kind=crd["names"]["kind"], singular=crd["names"]["singular"],
        namespaced=crd["scope"] == "Namespaced", verbs=verbs,
        shortnames=set(crd["names"]["shortNames"]), subresources=set(version["subresources"]))
    return ttj


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "test"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock",
                                                   "namespace": "default"}}],
    }))
    return path


async def eventually(fn: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Await until fn() returns something truthy (polling the mock's state); fail on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}")
        await asyncio.sleep(0.05)
