"""The three Dockerfiles hold the properties the deployment relies on.

No Docker engine runs here (the kind e2e builds them for real), so each file
is read and checked against the repository and the contracts it must agree
with: entry-point modules that exist, the ports of the operator's contract,
non-root numeric users (kubelet's runAsNonRoot needs a number), pinned bases
and installs, OCI labels, writable paths only on volumes, and a build
context (.dockerignore) that actually contains what the COPYs name.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from images_support import IMAGES, REPO, Dockerfile, DockerIgnore, env_pairs, exec_form, label_pairs
from trafficdl_operator import contract
from trafficdl_operator.settings import Settings

OCI_KEYS = ("title", "description", "version", "revision", "source", "licenses")
EXPECTED_PORTS = {
    "master": {contract.GRPC_PORT, contract.METRICS_PORT},
    "worker": {contract.METRICS_PORT},
    "operator": {Settings().metrics_port, 8081},  # 8081: kopf liveness, see the chart
}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _module_file(module: str) -> Path | None:
    """Where `python -m module` finds its code in this repository's source roots."""
    parts = module.split(".")
    for root in (REPO, REPO / "master", REPO / "worker", REPO / "operator"):
        base = root.joinpath(*parts)
        for candidate in (base / "__main__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _pip_installs(df: Dockerfile) -> list[list[str]]:
    """Argument lists of every `pip install` in any RUN, ARG defaults substituted."""
    installs = []
    for stage in df.stages:
        for run in stage.all("RUN"):
            for command in re.split(r"&&|;", df.expand(run)):
                words = shlex.split(command)
                if len(words) > 2 and words[0].endswith("pip") and words[1] == "install":
                    installs.append(words[2:])
    return installs


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_on_a_pinned_slim_python_311(dockerfiles: dict[str, Dockerfile],
                                                   image: str) -> None:
    df = dockerfiles[image]
    assert len(df.stages) >= 2, "build and runtime stages"
    for stage in df.stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", stage.base), \
            f"{image}: base {stage.base!r} is not a patch-pinned slim Python 3.11"
    copies = df.final.all("COPY")
    assert any(c.startswith("--from=") for c in copies), "runtime copies the built venv"
    assert not df.final.all("RUN") or all("pip" not in r for r in df.final.all("RUN")), \
        "nothing is installed in the runtime stage"


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_a_numeric_non_root_user(dockerfiles: dict[str, Dockerfile], image: str) -> None:
    users = dockerfiles[image].final.all("USER")
    assert users, f"{image}: no USER in the runtime stage (would run as root)"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, f"{image}: USER {users[-1]!r} must be a non-zero uid"
    assert not gid or (gid.isdigit() and int(gid) > 0)


@pytest.mark.parametrize("image", IMAGES)
def test_exposes_the_contract_ports(dockerfiles: dict[str, Dockerfile], image: str) -> None:
    exposed = {int(p.split("/")[0]) for e in dockerfiles[image].final.all("EXPOSE")
               for p in e.split()}
    assert exposed == EXPECTED_PORTS[image]


@pytest.mark.parametrize("image", IMAGES)
def test_oci_labels(dockerfiles: dict[str, Dockerfile], image: str) -> None:
    labels: dict[str, str] = {}
    for args in dockerfiles[image].final.all("LABEL"):
        labels |= label_pairs(args)
    for key in OCI_KEYS:
        assert labels.get(f"org.opencontainers.image.{key}"), f"{image}: label {key} missing"
    assert labels["org.opencontainers.image.title"] == f"trafficdl-{image}"
    assert labels["org.opencontainers.image.licenses"] == _pyproject()["project"]["license"]
    version_arg = dockerfiles[image].expand(labels["org.opencontainers.image.version"])
    assert version_arg == _pyproject()["project"]["version"]


@pytest.mark.parametrize("image", IMAGES)
def test_entry_point_module_exists_in_the_repository(dockerfiles: dict[str, Dockerfile],
                                                     image: str) -> None:
    entry = dockerfiles[image].final.all("ENTRYPOINT")
    assert entry, f"{image}: no ENTRYPOINT"
    argv = exec_form(entry[-1])
    assert "-m" in argv, f"{image}: entry point {argv} does not run a module"
    module = argv[argv.index("-m") + 1]
    assert module.split(".")[0] == f"trafficdl_{image}"
    assert _module_file(module) is not None, f"{image}: module {module} is not in the repository"


@pytest.mark.parametrize("image", IMAGES)
def test_writable_paths_are_volumes(dockerfiles: dict[str, Dockerfile], image: str) -> None:
    final = dockerfiles[image].final
    env: dict[str, str] = {}
    for args in final.all("ENV"):
        env |= env_pairs(args)
    volumes = [v for args in final.all("VOLUME") for v in exec_form(args)]
    writable = ["HOME", "TMPDIR"] + (["MPLCONFIGDIR"] if image != "operator" else [])
    for var in writable:
        assert var in env, f"{image}: {var} not set (defaults point into the read-only root)"
        assert any(env[var] == v or env[var].startswith(v.rstrip("/") + "/") for v in volumes), \
            f"{image}: {var}={env[var]} is not under a VOLUME {volumes}"


@pytest.mark.parametrize("image", IMAGES)
def test_every_pip_install_is_pinned(dockerfiles: dict[str, Dockerfile], image: str) -> None:
    installs = _pip_installs(dockerfiles[image])
    assert installs
    for args in installs:
        targets = [a for a in args if not a.startswith("-")]
        options = [a for a in args if a.startswith("-")]
        if "-r" in args:
            lock = args[args.index("-r") + 1]
            assert "--no-deps" in options, f"{image}: {lock} without --no-deps lets deps float"
            assert lock.startswith("/src/requirements/")
            targets.remove(lock)
        if "--index-url" in args:
            targets.remove(args[args.index("--index-url") + 1])
        for target in targets:
            is_local_wheel = target.startswith("/wheels/") and target.endswith(".whl")
            assert is_local_wheel or re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.+]*", target), \
                f"{image}: unpinned install {target!r}"
            if is_local_wheel:
                assert "--no-deps" in options, "the project wheel must not pull its deps"


@pytest.mark.parametrize("image", ["master", "worker"])
def test_torch_pin_and_cpu_default_with_a_cuda_switch(dockerfiles: dict[str, Dockerfile],
                                                       image: str) -> None:
    df = dockerfiles[image]
    torch_pins = [t for args in _pip_installs(df) for t in args if t.startswith("torch==")]
    declared = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch==")]
    assert torch_pins == [declared[0].replace(" ", "")], "image torch == pyproject torch"
    args = df.args()
    assert args["TORCH_VARIANT"] == "cpu"
    assert "${TORCH_VARIANT}" in args["TORCH_INDEX_URL"]
    assert df.expand("${TORCH_INDEX_URL}") == "https://download.pytorch.org/whl/cpu"
    install = next(a for a in _pip_installs(df) if "torch==" in " ".join(a))
    assert install[install.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"


def test_operator_image_has_no_torch(dockerfiles: dict[str, Dockerfile]) -> None:
    text = "\n".join(" ".join(a) for a in _pip_installs(dockerfiles["operator"]))
    assert "torch" not in text.lower()
    assert "requirements/operator.txt" in text
    assert "TORCH_VARIANT" not in dockerfiles["operator"].args()


@pytest.mark.parametrize("image", IMAGES)
def test_build_context_holds_every_copied_path(dockerfiles: dict[str, Dockerfile],
                                               dockerignore: DockerIgnore, image: str) -> None:
    for stage in dockerfiles[image].stages:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _dest = args.split()
            for src in sources:
                path = REPO / src
                assert path.exists(), f"{image}: COPY {src} does not exist"
                files = [path] if path.is_file() else [p for p in path.rglob("*.py")
                                                      if "__pycache__" not in p.parts] or [path]
                for f in files:
                    rel = f.relative_to(REPO).as_posix()
                    assert dockerignore.included(rel), f"{image}: .dockerignore drops {rel}"


@pytest.mark.parametrize("path", [".venv/bin/python", ".git/HEAD", "tests/conftest.py",
                                  "trafficdl/__pycache__/cli.cpython-311.pyc", "demo/run.json",
                                  "charts/trafficdl/values.yaml"])
def test_build_context_leaves_out_local_state(dockerignore: DockerIgnore, path: str) -> None:
    assert not dockerignore.included(path)


def test_make_images_builds_the_tags_the_kind_scenario_uses() -> None:
    makefile = (REPO / "Makefile").read_text()
    built = dict(re.findall(
        r"docker build (?:--build-arg \S+ )*-f Dockerfile\.(\w+) -t (\S+) \.", makefile
    ))
    assert set(built) == set(IMAGES)
    values = yaml.safe_load((REPO / "charts/trafficdl/ci/kind-e2e-values.yaml").read_text())
    op = values["operator"]
    for image, key in (("operator", "image"), ("master", "masterImage"),
                       ("worker", "workerImage")):
        assert built[image] == f"{op[key]['repository']}:{op[key]['tag']}"
