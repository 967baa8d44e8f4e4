"""The CRD's openAPIV3Schema accepts every example and rejects the bad ones; its defaults agree
with the operator's parser and trafficdl.config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from operator_support import CRD_PATH, EXAMPLES, openapi_schema, strict
from trafficdl_operator import contract
from trafficdl_operator.job_spec import parse

from trafficdl.config import CONVERGING, DistConfig, TrainConfig
from trafficdl.contract import DIST_FIELDS, TRAIN_FIELDS

GOOD = sorted(EXAMPLES.glob("*.yaml"))
BAD = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def validator() -> jsonschema.Draft4Validator:
    # Kubernetes' structural schemas are OpenAPI v3.0: boolean exclusiveMinimum, as in draft 4.
    return jsonschema.Draft4Validator(strict(openapi_schema()))


def test_there_are_examples_of_both_kinds():
    assert len(GOOD) >= 3 and len(BAD) >= 8


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_example_validates_and_parses(path: Path):
    doc = yaml.safe_load(path.read_text())
    validator().validate(doc)
    assert doc["apiVersion"] == contract.API_VERSION and doc["kind"] == contract.KIND
    parse(doc["spec"])  # the operator accepts it too


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_invalid_example_is_rejected_where_it_says(path: Path):
    text = path.read_text()
    where = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("# rejects:"))
    errors = list(validator().iter_errors(yaml.safe_load(text)))
    assert [".".join(map(str, e.path)) for e in errors] == [where]


def test_crd_identity_and_printer_columns():
    crd = yaml.safe_load(CRD_PATH.read_text())
    assert crd["metadata"]["name"] == f"{contract.PLURAL}.{contract.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == contract.GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == contract.KIND and contract.SHORT_NAME in spec["names"][
        "shortNames"]
    version = spec["versions"][0]
    assert version["name"] == contract.VERSION and version["subresources"] == {
        "status": {}, "scale": {"specReplicasPath": ".spec.scale.workers",
                                "statusReplicasPath": ".status.worldSize",
                                "labelSelectorPath": ".status.selector"}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Phase", "Model", "Workers", "Epoch", "WTPE", "Cost", "MacroF", "Age"} <= columns


def _walk(node: dict[str, Any], path: str = ""):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")


def test_schema_is_structural_enough_for_kubernetes():
    for path, node in _walk(openapi_schema()):
        # apiextensions/v1 forbids additionalProperties beside properties.
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "type" in node or node.get("x-kubernetes-int-or-string") or \
            node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"


def test_status_enums_are_the_contracts():
    status = openapi_schema()["properties"]["status"]["properties"]
    assert tuple(status["phase"]["enum"]) == contract.PHASES
    cond_type = status["conditions"]["items"]["properties"]["type"]
    assert tuple(cond_type["enum"]) == contract.CONDITION_TYPES


@pytest.mark.parametrize(("section", "mapping", "cls"), [
    ("train", TRAIN_FIELDS, TrainConfig), ("distribution", DIST_FIELDS, DistConfig)])
def test_crd_defaults_match_trafficdl_config(section, mapping, cls):
    props = openapi_schema()["properties"]["spec"]["properties"][section]["properties"]
    assert set(props) == set(mapping), "every config field is in the CRD, and only those"
    # A job converges unless told otherwise: the train section defaults to CONVERGING.
    defaults = cls(**CONVERGING) if cls is TrainConfig else cls()
    for key, field in mapping.items():
        assert props[key].get("default") == getattr(defaults, field), key


def test_crd_enums_match_trafficdl_config():
    from trafficdl.config import ALGORITHMS, MODELS, WIRE_DTYPES
    from trafficdl.cost import NODE_TYPES

    spec = openapi_schema()["properties"]["spec"]["properties"]
    assert tuple(spec["train"]["properties"]["model"]["enum"]) == MODELS
    assert tuple(spec["distribution"]["properties"]["algorithm"]["enum"]) == ALGORITHMS
    assert tuple(spec["distribution"]["properties"]["wireDtype"]["enum"]) == WIRE_DTYPES
    assert set(spec["pricing"]["properties"]["nodeType"]["enum"]) == set(NODE_TYPES)


def test_scale_and_policy_defaults_match_the_parser(minimal):
    spec = openapi_schema()["properties"]["spec"]["properties"]
    job = parse(minimal)
    assert spec["scale"]["properties"]["workers"]["default"] == job.workers
    policy = spec["runPolicy"]["properties"]
    assert policy["backoffLimit"]["default"] == job.run_policy.backoff_limit
    assert policy["cleanPodPolicy"]["default"] == job.run_policy.clean_pod_policy
    assert policy["suspend"]["default"] is job.run_policy.suspend
    data = spec["data"]["properties"]
    assert data["mountPath"]["default"] == job.mount_path
    assert data["outputPath"]["default"] == job.output_path


def test_every_default_is_valid_for_its_own_schema():
    """The API server refuses a CRD whose defaults do not validate (e.g. 0 where > 0)."""
    for path, node in _walk(openapi_schema()):
        if "default" in node:
            sub = {k: v for k, v in node.items() if k != "default"}
            assert not list(jsonschema.Draft4Validator(sub).iter_errors(node["default"])), path


NAMES = sorted((EXAMPLES / "invalid-names").glob("*.yaml"))


@pytest.mark.parametrize("path", NAMES, ids=lambda p: p.name)
def test_names_that_cannot_name_children_are_refused_by_the_operator_too(path: Path):
    # The CRD's CEL rules refuse them at admission (tests/integration/k8s); where CEL is
    # not enforced the operator's create handler fails the job with this reason.
    doc = yaml.safe_load(path.read_text())
    validator().validate(doc)  # the structural schema alone lets them through
    assert contract.job_name_problem(doc["metadata"]["name"])


def test_the_longest_allowed_name_yields_valid_children():
    name = "a" * contract.MAX_JOB_NAME
    assert contract.job_name_problem(name) is None
    assert len(contract.worker_name(name, 255)) == 63
    assert contract.job_name_problem(name + "b") and contract.job_name_problem("9lives")
    crd = yaml.safe_load(CRD_PATH.read_text())
    rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert f"<= {contract.MAX_JOB_NAME}" in rules[0]["rule"]
    assert contract.JOB_NAME_PATTERN in rules[1]["rule"]
