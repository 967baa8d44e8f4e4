"""Secure by default on the real control plane: per-job mTLS, the token kept secret, hardened
inputs, and the explicit insecure opt-out.

A default job trains to Succeeded with its master requiring client certificates of the
job's own CA: the test dials that master (a process-kubelet pod on 127.77.x.y) with the
operator's certificate (answered), and with no certificate, another job's CA and plaintext
(all refused). The run token never appears in any log of the cluster (pods, operator,
control plane), in an Event or in the job's status. A hostPath volume (the chart leaves
allowHostPath off) ends Failed/InvalidSpec with an Event; an absolute or `..` path is
refused by the CRD's schema before a job exists. `insecure: true` trains in plaintext and
says so in status, in an Event and in the operator's log.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_support import Kube

from trafficdl.rpc.security import ClientTls

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"
NS, PVC = "trafficdl", "security-data"


@pytest.fixture(scope="module")
def dataset(kube: Kube) -> str:
    pvc, job = yaml.safe_load_all((QUICKSTART / "00-dataset.yaml").read_text())
    pvc["metadata"]["name"] = PVC
    job["metadata"]["name"] = "security-dataset"
    job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = PVC
    kube.apply([pvc, job])
    kube.run("wait", "-n", NS, "--for=condition=complete", "job/security-dataset",
             "--timeout=300s")
    return PVC


def _job(name: str, **spec: Any) -> dict[str, Any]:
    job = yaml.safe_load((QUICKSTART / "10-job.yaml").read_text())
    job["metadata"]["name"] = name
    job["spec"]["data"]["volume"]["persistentVolumeClaim"]["claimName"] = PVC
    job["spec"].update(spec)
    return job


def _status(kube: Kube, name: str) -> dict[str, Any]:
    return kube.json("get", "ttj", name, "-n", NS).get("status") or {}


def _finished(kube: Kube, name: str) -> dict[str, Any] | None:
    st = _status(kube, name)
    return st if st.get("phase") in ("Succeeded", "Failed") else None


def _secret(kube: Kube, name: str) -> dict[str, bytes]:
    data = kube.json("get", "secret", name, "-n", NS)["data"]
    return {k: base64.b64decode(v) for k, v in data.items()}


def _client(folder: Path, data: dict[str, bytes], cert: bool = True) -> ClientTls:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(data["ca.crt"])
    (folder / "c.pem").write_bytes(data["operator.crt"])
    (folder / "c.key").write_bytes(data["operator.key"])
    return ClientTls(ca_file=folder / "ca.pem", cert_file=folder / "c.pem" if cert else None,
                     key_file=folder / "c.key" if cert else None,
                     server_name=f"secure-master.{NS}.svc")


def test_default_job_trains_over_mtls_and_strangers_are_refused(kube: Kube, dataset: str,
                                                                tmp_path: Path) -> None:
    from trafficdl_operator import tls
    from trafficdl_operator.masterclient import fetch_status

    kube.apply(_job("secure"))
    st = kube.wait_for("secure finished", lambda: _finished(kube, "secure"), timeout=600,
                       every=2)
    assert st["phase"] == "Succeeded", st
    assert st["security"] == "mTLS" and st["figures"]["accuracy"] > 0

    # The TLS Secret belongs to the job and holds no CA key; pods mount only their files.
    secret = kube.json("get", "secret", "secure-tls", "-n", NS)
    [owner] = secret["metadata"]["ownerReferences"]
    assert owner["name"] == "secure" and owner["kind"] == "TrafficTrainingJob"
    assert set(secret["data"]) == set(tls.REQUIRED)
    master = kube.json("get", "pod", "secure-master", "-n", NS)
    [vol] = [v for v in master["spec"]["volumes"] if v["name"] == "tls"]
    assert [i["key"] for i in vol["secret"]["items"]] == ["ca.crt", "master.crt", "master.key"]
    env = {e["name"]: e.get("value") for e in master["spec"]["containers"][0]["env"]}
    assert "TRAFFICDL_ALLOW_PLAINTEXT" not in env and env["TRAFFICDL_TLS_CA"]

    # The master lingers after its run (masterLingerSeconds): dial it as strangers would.
    addr = f"{master['status']['podIP']}:50051"
    assert addr.startswith("127.77.")  # the process kubelet's pod addresses: loopback
    token = _secret(kube, "secure-token")["token"].decode()
    data = _secret(kube, "secure-tls")
    ok = fetch_status(addr, st["runId"], token, 5, _client(tmp_path / "mine", data))
    assert ok is not None and ok["masterPhase"] == "Succeeded"  # the real client is answered
    other = tls.issue("secure", NS, timedelta(hours=1))  # same names, another CA
    assert fetch_status(addr, st["runId"], token, 5, _client(tmp_path / "other", other)) is None
    no_cert = _client(tmp_path / "nocert", data, cert=False)
    assert fetch_status(addr, st["runId"], token, 5, no_cert) is None
    assert fetch_status(addr, st["runId"], token, 5, None) is None  # plaintext

    # The token is in no log of the cluster, no Event and not in the job's status.
    logs = [p for p in kube.cluster.folder.rglob("*.log") if p.is_file()]
    assert any("secure-master" in str(p) or "master" in p.name for p in logs), logs
    leaks = [str(p) for p in logs if token in p.read_text(errors="replace")]
    assert not leaks, leaks
    events = kube.run("get", "events", "-n", NS, "-o", "json").stdout
    assert token not in events
    assert token not in json.dumps(kube.json("get", "ttj", "secure", "-n", NS))


def test_host_path_fails_as_invalid_spec_and_bad_paths_are_refused(kube: Kube) -> None:
    job = _job("hostpath")
    job["spec"]["data"]["volume"] = {"hostPath": {"path": "/etc"}}
    kube.apply(job)
    st = kube.wait_for("hostpath Failed", lambda: _finished(kube, "hostpath"), timeout=90)
    [failed] = [x for x in st["conditions"] if x["type"] == "Failed"]
    assert failed["reason"] == "InvalidSpec" and "allowHostPath" in failed["message"]
    assert not kube.json("get", "pods", "-n", NS, "-l", "trafficdl.io/job-name=hostpath")["items"]
    events = kube.json("get", "events", "-n", NS, "--field-selector",
                       "involvedObject.name=hostpath")["items"]
    assert any(e["reason"] == "InvalidSpec" and "hostPath" in e["message"] for e in events)

    for name, field, value in (("abs", "datasetPath", "/etc/passwd"),
                               ("dotdot", "outputPath", "runs/../../etc")):
        bad = _job(name)
        bad["spec"]["data"][field] = value
        res = kube.apply(bad, check=False)
        assert res.returncode != 0 and f"spec.data.{field}" in res.stderr, res.stderr
        assert kube.run("get", "ttj", name, "-n", NS, check=False).returncode != 0


def test_insecure_opt_out_trains_in_plaintext_and_says_so(kube: Kube, dataset: str) -> None:
    kube.apply(_job("plain", security={"insecure": True}))
    st = kube.wait_for("plain finished", lambda: _finished(kube, "plain"), timeout=600, every=2)
    assert st["phase"] == "Succeeded" and st["security"] == "insecure", st
    assert kube.run("get", "secret", "plain-tls", "-n", NS, check=False).returncode != 0
    master = kube.json("get", "pod", "plain-master", "-n", NS)
    env = {e["name"]: e.get("value") for e in master["spec"]["containers"][0]["env"]}
    assert env["TRAFFICDL_ALLOW_PLAINTEXT"] == "1" and "TRAFFICDL_TLS_CA" not in env
    events = kube.json("get", "events", "-n", NS, "--field-selector",
                       "involvedObject.name=plain")["items"]
    assert any(e["reason"] == "Insecure" and e["type"] == "Warning" for e in events)
    logs = [p.read_text(errors="replace") for p in kube.cluster.folder.rglob("*.log")]
    assert any("job trafficdl/plain: spec.security.insecure is true" in text for text in logs)
