"""Fixtures of the operator's unit tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_support import MINIMAL


@pytest.fixture()
def minimal() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL)
