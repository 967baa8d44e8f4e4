"""What a pod's process sees: its environment, its volumes and its name resolution.

- env: `value` (with $(VAR) expansion as the real kubelet does), `secretKeyRef`,
  `configMapKeyRef`, `fieldRef` (metadata.name/namespace/uid/labels/annotations,
  spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP) and
  `envFrom`; plus KUBERNETES_SERVICE_HOST/PORT pointing at the API server's
  loopback address (a real kubelet gives the `kubernetes` Service ClusterIP,
  which nothing here may dial).
- volumes become folders under the pod's folder (emptyDir, secret, configMap,
  projected service-account token, downwardAPI) or a shared folder per claim
  (persistentVolumeClaim: <node>/volumes/<namespace>/<claim>); hostPath is used as is.
- each container runs in a private mount namespace (`unshare --mount`) where
  those folders are bind-mounted at the container's mountPaths and a generated
  hosts file over /etc/hosts: that is how `{svc}.{ns}.svc` resolves, to the
  loopback pod IPs of the Service's ready pods (network.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Protocol

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$\(")


class Api(Protocol):
    def secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def token(self, pod: dict[str, Any], sa: str, audience: str | None,
              seconds: int) -> str: ...


class PodEnvError(RuntimeError):
    """A container cannot start yet (missing Secret key, ...): reason for `waiting`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: unknown references stay, $$( escapes."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$(":
            return "$("
        return env.get(m.group(1), m.group(0))
    return _REF.sub(sub, text)


def _field(pod: dict[str, Any], path: str, pod_ip: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.podIP": pod_ip, "status.hostIP": "127.0.0.1"}
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)(?:\['(.+)'\])?", path)
    if m:
        items = meta.get(m.group(1)) or {}
        if m.group(2) is not None:
            return str(items.get(m.group(2), ""))
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise PodEnvError("CreateContainerConfigError", f"unsupported fieldRef {path}")


def _key(api: Api, pod: dict[str, Any], kind: str, ref: dict[str, Any]) -> str | None:
    ns = pod["metadata"]["namespace"]
    obj = api.secret(ns, ref["name"]) if kind == "secret" else api.configmap(ns, ref["name"])
    if obj is None or ref["key"] not in (obj.get("data") or {}):
        if ref.get("optional"):
            return None
        what = "secret" if kind == "secret" else "configmap"
        raise PodEnvError("CreateContainerConfigError",
                          f"{what} \"{ref['name']}\" (key {ref['key']}) not found")
    raw = obj["data"][ref["key"]]
    return base64.b64decode(raw).decode() if kind == "secret" else str(raw)


def container_env(api: Api, pod: dict[str, Any], container: dict[str, Any], pod_ip: str,
                  api_port: int) -> dict[str, str]:
    env: dict[str, str] = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin",
                                 "/bin"]),
        "HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"],
        "HOME": "/tmp",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LANG", "PYTHONHASHSEED"):
        if name in os.environ:  # host settings that keep 2 shared cores usable
            env[name] = os.environ[name]
    for src in container.get("envFrom") or []:
        kind = "secret" if "secretRef" in src else "configmap"
        ref = src.get("secretRef") or src.get("configMapRef") or {}
        ns = pod["metadata"]["namespace"]
        obj = api.secret(ns, ref["name"]) if kind == "secret" else api.configmap(ns, ref["name"])
        for k, v in ((obj or {}).get("data") or {}).items():
            env[src.get("prefix", "") + k] = base64.b64decode(v).decode() if kind == "secret" \
                else str(v)
    for item in container.get("env") or []:
        vf = item.get("valueFrom")
        if vf is None:
            env[item["name"]] = expand(item.get("value", ""), env)
            continue
        if "fieldRef" in vf:
            value: str | None = _field(pod, vf["fieldRef"]["fieldPath"], pod_ip)
        elif "secretKeyRef" in vf:
            value = _key(api, pod, "secret", vf["secretKeyRef"])
        elif "configMapKeyRef" in vf:
            value = _key(api, pod, "configmap", vf["configMapKeyRef"])
        else:
            raise PodEnvError("CreateContainerConfigError",
                              f"unsupported valueFrom in env {item['name']}")
        if value is not None:
            env[item["name"]] = value
    return env


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _items(data: dict[str, bytes], items: list[dict[str, Any]] | None, what: str,
           optional: bool = False) -> dict[str, bytes]:
    """The files a secret/configMap volume shows: every key, or only `items` (key ->
    path), as the kubelet does; a listed key that is missing fails the pod."""
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item["key"] in data:
            out[item["path"]] = data[item["key"]]
        elif not optional:
            raise PodEnvError("ContainerCreating", f"{what}: no key {item['key']!r}")
    return out


def _projected(api: Api, pod: dict[str, Any], sources: list[dict[str, Any]],
               ca: bytes) -> dict[str, bytes]:
    ns, out = pod["metadata"]["namespace"], {}
    for src in sources:
        if "serviceAccountToken" in src:
            t = src["serviceAccountToken"]
            sa = pod["spec"].get("serviceAccountName") or "default"
            out[t["path"]] = api.token(pod, sa, t.get("audience"),
                                       int(t.get("expirationSeconds", 3607))).encode()
        elif "configMap" in src:
            cm = api.configmap(ns, src["configMap"]["name"]) or {}
            data = cm.get("data") or {}
            if src["configMap"]["name"] == "kube-root-ca.crt" and "ca.crt" not in data:
                data = {"ca.crt": ca.decode()}
            out.update(_items({k: str(v).encode() for k, v in data.items()},
                              src["configMap"].get("items"), "configMap", optional=True))
        elif "downwardAPI" in src:
            for item in src["downwardAPI"].get("items") or []:
                if "fieldRef" in item:
                    out[item["path"]] = _field(pod, item["fieldRef"]["fieldPath"], "").encode()
        elif "secret" in src:
            sec = api.secret(ns, src["secret"]["name"]) or {}
            data = {k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()}
            out.update(_items(data, src["secret"].get("items"), f"secret {src['secret']['name']}",
                              bool(src["secret"].get("optional"))))
    return out


def prepare_volumes(api: Api, pod: dict[str, Any], pod_dir: Path, node_dir: Path,
                    ca: bytes) -> dict[str, Path]:
    """Volume name -> host folder, created and filled."""
    ns, out = pod["metadata"]["namespace"], {}
    for vol in pod["spec"].get("volumes") or []:
        name, folder = vol["name"], pod_dir / "volumes" / vol["name"]
        if "emptyDir" in vol:
            folder.mkdir(parents=True, exist_ok=True)
        elif "persistentVolumeClaim" in vol:
            folder = node_dir / "volumes" / ns / vol["persistentVolumeClaim"]["claimName"]
            folder.mkdir(parents=True, exist_ok=True)
        elif "hostPath" in vol:
            folder = Path(vol["hostPath"]["path"])
            if vol["hostPath"].get("type") in ("DirectoryOrCreate",):
                folder.mkdir(parents=True, exist_ok=True)
        elif "secret" in vol:
            sec = api.secret(ns, vol["secret"]["secretName"])
            if sec is None and not vol["secret"].get("optional"):
                raise PodEnvError("ContainerCreating",
                                  f"secret \"{vol['secret']['secretName']}\" not found")
            data = {k: base64.b64decode(v) for k, v in ((sec or {}).get("data") or {}).items()}
            _write(folder, _items(data, vol["secret"].get("items"),
                                  f"secret {vol['secret']['secretName']}",
                                  bool(vol["secret"].get("optional"))))
        elif "configMap" in vol:
            cm = api.configmap(ns, vol["configMap"]["name"]) or {}
            _write(folder, _items({k: str(v).encode() for k, v in (cm.get("data") or {}).items()},
                                  vol["configMap"].get("items"),
                                  f"configMap {vol['configMap']['name']}",
                                  bool(vol["configMap"].get("optional"))))
        elif "projected" in vol:
            _write(folder, _projected(api, pod, vol["projected"].get("sources") or [], ca))
        elif "downwardAPI" in vol:
            _write(folder, _projected(api, pod, [vol], ca))
        else:
            raise PodEnvError("ContainerCreating",
                              f"volume {name}: type {sorted(vol)} not supported here")
        out[name] = folder
    return out


def launcher(container: dict[str, Any], volumes: dict[str, Path], hosts: Path,
             env: dict[str, str]) -> list[str]:
    """argv running the container's command inside its own mount namespace."""
    command = [expand(a, env) for a in container.get("command") or []]
    command += [expand(a, env) for a in container.get("args") or []]
    if not command:
        raise PodEnvError("CreateContainerConfigError",
                          "the process kubelet needs an explicit command (it runs no images)")
    binds: list[tuple[Path, str, bool]] = []
    for m in container.get("volumeMounts") or []:
        src = volumes.get(m["name"])
        if src is None:
            raise PodEnvError("CreateContainerConfigError", f"no volume {m['name']}")
        if m.get("subPath"):
            src = src / m["subPath"]
            src.mkdir(parents=True, exist_ok=True)
        binds.append((src, m["mountPath"], bool(m.get("readOnly"))))
    binds.append((hosts, "/etc/hosts", False))
    binds += _runtime_binds([target for _, target, _ in binds])
    if len(binds) > 7:
        raise PodEnvError("CreateContainerConfigError", "the process kubelet mounts at most 6 "
                          "volumes per container")
    # Open every source first and mount through /proc/self/fd: a mount at /tmp must not
    # hide a source folder that lives under /tmp (the cluster folder often does).
    script = ["set -e"]
    script += [f"exec {3 + i}< {shlex.quote(str(src))}" for i, (src, _, _) in enumerate(binds)]
    for i, (_, target, ro) in sorted(enumerate(binds), key=lambda b: b[1][1]):  # parents first
        t = shlex.quote(target)
        if target != "/etc/hosts":
            script.append(f"mkdir -p {t}")
        script.append(f"mount --no-canonicalize --bind /proc/self/fd/{3 + i} {t}")
        if ro:
            script.append(f"mount --no-canonicalize -o remount,bind,ro {t}")
    script.append("exec " + " ".join(f"{3 + i}<&-" for i in range(len(binds))))
    workdir = container.get("workingDir")
    if workdir:
        script.append(f"cd {shlex.quote(workdir)}")
    script.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            "\n".join(script), "pod", *command]


# What stands in for the image: the checkout (source roots of the editable install)
# and the virtual environment whose entry points (python, kopf) the pods run.
RUNTIME_ROOTS = tuple(dict.fromkeys([Path(__file__).resolve().parents[4], Path(sys.prefix)]))


def _runtime_binds(targets: list[str]) -> list[tuple[Path, str, bool]]:
    """Bind the runtime back where a volume would hide it (an emptyDir at /tmp over a
    checkout in /tmp/...): read-only, mounted after the volume (targets sort parents
    first). A root inside another root that is bound already needs nothing."""
    hidden = [r for r in RUNTIME_ROOTS if any(r.is_relative_to(t) for t in targets)]
    keep = [r for r in hidden if not any(r != o and r.is_relative_to(o) for o in hidden)]
    return [(r, str(r), True) for r in keep]


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
