"""The honest-count plugin: uncollected files fail the run, required tools cannot skip."""

from __future__ import annotations

import pytest

INI = "[pytest]\ntestpaths = tests\n"


def _tree(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI)
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_ok.py").write_text("def test_a():\n    pass\n")


def test_a_dist_folder_is_reported_and_fails_the_run(pytester: pytest.Pytester) -> None:
    _tree(pytester)
    hidden = pytester.path / "tests" / "dist"
    hidden.mkdir()
    (hidden / "test_hidden.py").write_text("def test_b():\n    pass\n")
    result = pytester.runpytest("-p", "support.plugin")
    result.stdout.fnmatch_lines(
        ["*test files collected: 1 of 2*", "*NOT COLLECTED:*test_hidden.py"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)


def test_everything_collected_passes(pytester: pytest.Pytester) -> None:
    _tree(pytester)
    result = pytester.runpytest("-p", "support.plugin")
    result.stdout.fnmatch_lines(["*test files collected: 1 of 1*"])
    assert result.ret == pytest.ExitCode.OK


def test_a_subset_run_is_not_checked(pytester: pytest.Pytester) -> None:
    _tree(pytester)
    (pytester.path / "tests" / "dist").mkdir()
    (pytester.path / "tests" / "dist" / "test_hidden.py").write_text("def test_b():\n    pass\n")
    result = pytester.runpytest("-p", "support.plugin", "tests/test_ok.py")
    assert result.ret == pytest.ExitCode.OK
    assert "test files collected" not in result.stdout.str()


SKIPPING = """
from support.tools import needs
@needs("prometheus", "the prometheus binary is not installed")
def test_scrape():
    pass
"""


def test_a_required_tool_turns_its_skip_into_a_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(pytester)
    pytester.path.joinpath("tests", "test_tool.py").write_text(SKIPPING)
    monkeypatch.delenv("TRAFFICDL_REQUIRE", raising=False)
    pytester.runpytest("-p", "support.plugin").assert_outcomes(passed=1, skipped=1)
    monkeypatch.setenv("TRAFFICDL_REQUIRE", "tshark,prometheus")
    result = pytester.runpytest("-p", "support.plugin")
    result.assert_outcomes(passed=1, errors=1)  # a skipif lands in setup: an error
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*TRAFFICDL_REQUIRE lists 'prometheus'*not installed*"])
