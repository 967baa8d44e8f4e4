"""The image locks (requirements/*.txt) are exact, complete and no larger than needed.

The images install the locks with --no-deps, so a lock that misses a
transitive dependency builds an image that fails at import, and one with
extras ships code the role never runs. Both are computed here from real
metadata: the dependency closure is walked through the installed
distributions' Requires-Dist (markers evaluated for Linux/CPython 3.11), and
the operator's needs come from the imports its modules actually make.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from images_support import REPO
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCKS = ("runtime", "operator", "build")
FIRST_PARTY = ("trafficdl", "trafficdl_master", "trafficdl_worker", "trafficdl_operator")
SOURCE_ROOTS = (REPO, REPO / "master", REPO / "worker", REPO / "operator")
# `trafficdl operator` (the CLI) also runs in the operator image: Typer, Rich, PyYAML.
OPERATOR_CLI_DISTS = ("typer", "rich", "pyyaml")
LINUX_311 = default_environment() | {
    "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
    "platform_machine": "x86_64", "python_version": "3.11", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "extra": "",
}


def _lock(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements" / f"{name}.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!]*)", line)
            assert match, f"requirements/{name}.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _closure(roots: set[str]) -> set[str]:
    """Distributions needed at run time by `roots`, transitively (no extras)."""
    seen: set[str] = set()
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate(LINUX_311):
                todo.append(canonicalize_name(req.name))
    return seen


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    for root in SOURCE_ROOTS:
        base = root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _third_party_imports(package: str) -> set[str]:
    """Top-level third-party modules imported by `package` and the first-party code it reaches."""
    start = [package] + [f"{package}.{p.stem}" for p in
                         _module_file(package).parent.glob("*.py")]  # type: ignore[union-attr]
    seen: set[str] = set()
    third: set[str] = set()
    while start:
        module = start.pop()
        if module in seen or (path := _module_file(module)) is None:
            continue
        seen.add(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in FIRST_PARTY:
                    start += [".".join(parts[: i + 1]) for i in range(len(parts))]
                elif parts[0] not in sys.stdlib_module_names and parts[0] != "__future__":
                    third.add(parts[0])
    return third


def _dists_of(modules: set[str]) -> set[str]:
    owners = metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in owners)
    assert not missing, f"imported but not installed in the test venv: {missing}"
    return {canonicalize_name(d) for m in modules for d in owners[m]}


@pytest.mark.parametrize("lock", LOCKS)
def test_locks_are_exact_pins(lock: str) -> None:
    assert _lock(lock)


def test_runtime_lock_is_the_closure_of_the_core_dependencies() -> None:
    core = [Requirement(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())
            ["project"]["dependencies"]]
    # The images take torch from the PyTorch wheel index ($TORCH_VARIANT, CPU by default),
    # whose own metadata pins the CUDA libraries of GPU builds: those are not ours to lock.
    # (This venv may hold PyPI's CUDA build of torch, which pulls them in.)
    expected = {d for d in _closure({r.name for r in core}) - {"torch"}
                if not d.startswith(("nvidia-", "cuda-")) and d != "triton"}
    pins = _lock("runtime")
    assert set(pins) == expected, (
        f"missing {sorted(expected - set(pins))}, superfluous {sorted(set(pins) - expected)}")
    for req in core:
        name = canonicalize_name(req.name)
        if name != "torch":
            assert req.specifier.contains(Version(pins[name]), prereleases=True), \
                f"{name}=={pins[name]} violates pyproject's {req}"


def test_torch_is_not_in_the_runtime_lock_but_installed_from_the_torch_index() -> None:
    # Dockerfile.master/worker install torch==TORCH_VERSION from the variant's index.
    assert "torch" not in _lock("runtime")


def test_operator_lock_is_the_closure_of_what_the_operator_imports() -> None:
    imported = _dists_of(_third_party_imports("trafficdl_operator"))
    assert "torch" not in imported, "trafficdl_operator must never import torch"
    expected = _closure(imported | set(OPERATOR_CLI_DISTS))
    pins = _lock("operator")
    assert set(pins) == expected, (
        f"missing {sorted(expected - set(pins))}, superfluous {sorted(set(pins) - expected)}")
    assert "torch" not in pins and not any(p.startswith("nvidia-") for p in pins)


def test_locks_agree_on_shared_versions() -> None:
    runtime, operator = _lock("runtime"), _lock("operator")
    differing = {n: (runtime[n], operator[n]) for n in runtime.keys() & operator.keys()
                 if runtime[n] != operator[n]}
    assert not differing, "one wire protocol, one version: grpcio/protobuf etc. must match"


def test_build_lock_satisfies_the_build_system() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    pins = _lock("build")
    for raw in requires:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in pins, f"build backend {name} not pinned"
        assert req.specifier.contains(Version(pins[name]))
