"""Helpers for capture tests: write scapy-crafted packets to a capture and extract it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from capture_helpers import write_capture

from trafficdl.capture import ExtractConfig, FileResult, extract_file
from trafficdl.capture.fastwalk import CORE_ENV


@pytest.fixture(autouse=True)
def _diff_both_walks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every extract_file of these tests runs the compiled walk and walk.py and fails on
    any difference (trafficdl.capture.fastwalk; test_capture_fastcore.py)."""
    monkeypatch.setenv(CORE_ENV, "check")


@pytest.fixture
def extract_pkts(tmp_path: Path) -> Callable[..., FileResult]:
    counter = iter(range(10_000))

    def run(pkts: Sequence, cfg: ExtractConfig | None = None, **kw) -> FileResult:
        path = write_capture(tmp_path / f"c{next(counter)}.pcap", pkts, **kw)
        res = extract_file(path, cfg or ExtractConfig())
        assert res.error is None, res.error
        return res

    return run
