"""Session fixtures of the chart checks: the chart loaded once by the real Helm engine."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python
import pytest
from chart_support import CHART_DIR


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    loaded = helm_python.Chart.load(CHART_DIR)
    yield loaded
    loaded.close()
