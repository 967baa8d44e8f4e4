"""Skips for missing external tools that CI can turn into failures.

A test that needs a program the machine may lack (the Prometheus server,
promtool, tshark, network namespaces) skips with a reason tagged
``[needs NAME]``. Where `make test` installs those tools, a skip would hide a
broken install step, so `TRAFFICDL_REQUIRE=prometheus,promtool,...` (set by
`.ci/run`) makes tests/conftest.py report such a skip as a failure instead.
"""

from __future__ import annotations

import os
import re

import pytest

_TAG = re.compile(r"\[needs ([a-z0-9_-]+)\]")


def needs(tool: str, missing_reason: str | None) -> pytest.MarkDecorator:
    """A skipif marker: skip when `missing_reason` is not None, tagged with the tool."""
    return pytest.mark.skipif(
        missing_reason is not None, reason=f"[needs {tool}] {missing_reason or ''}"
    )


def skip_needing(tool: str, reason: str) -> None:
    """pytest.skip() from inside a test, tagged like `needs`."""
    pytest.skip(f"[needs {tool}] {reason}")


def required_tools(env: str | None = None) -> set[str]:
    """The tools named in TRAFFICDL_REQUIRE (comma separated)."""
    raw = os.environ.get("TRAFFICDL_REQUIRE", "") if env is None else env
    return {t.strip() for t in raw.split(",") if t.strip()}


def required_but_missing(skip_reason: str, required: set[str]) -> str | None:
    """The tool a skip names when that tool is required, else None."""
    match = _TAG.search(skip_reason)
    if match and match.group(1) in required:
        return match.group(1)
    return None
