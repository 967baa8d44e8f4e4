"""The pytest plugin behind tests/conftest.py: an honest count.

- Every `test_*.py` under the first `testpaths` folder must be collected when
  the whole suite runs (support/collection.py says why); a missing file fails
  the run and is named at the end, beside the count.
- A skip tagged ``[needs TOOL]`` becomes a failure when TOOL is listed in
  TRAFFICDL_REQUIRE (support/tools.py), so CI cannot pass by skipping what
  `make test` is supposed to install.

State lives in one object per pytest config, so runs nested by `pytester`
(the plugin's own tests) do not share it with the outer run.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from support.collection import uncollected
from support.tools import required_but_missing, required_tools


class SuiteChecks:
    """Collected files, the tests root, and the files that were never collected."""

    def __init__(self, config: pytest.Config) -> None:
        paths = config.getini("testpaths") or ["tests"]
        self.root = (config.rootpath / paths[0]).resolve()
        self.whole = bool(config.args) and all(
            (config.invocation_params.dir / a.split("::")[0]).resolve() == self.root
            for a in config.args
        )
        self.collected: set[Path] = set()
        self.missing: list[Path] | None = None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.nodeid.endswith(".py") and not report.failed:
            self.collected.add(Path(report.fspath).resolve())

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.whole:
            self.missing = uncollected(self.root, self.collected)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Generator:
        outcome = yield
        rep: pytest.TestReport = outcome.get_result()
        if not rep.skipped or not isinstance(rep.longrepr, tuple):
            return
        reason = str(rep.longrepr[2])
        tool = required_but_missing(reason, required_tools())
        if tool is not None:
            rep.outcome = "failed"
            rep.longrepr = f"TRAFFICDL_REQUIRE lists {tool!r}, but the test skipped: {reason}"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.missing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int) -> None:
        if self.missing is None:
            return
        total = len(self.collected) + len(self.missing)
        terminalreporter.write_sep("=", f"test files collected: {len(self.collected)} of {total}")
        for path in self.missing:
            terminalreporter.write_line(f"NOT COLLECTED: {path}", red=True)
        required = sorted(required_tools())
        if required:
            names = ", ".join(required)
            terminalreporter.write_line(f"tools required (TRAFFICDL_REQUIRE): {names}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SuiteChecks(config), "trafficdl-suite-checks")
