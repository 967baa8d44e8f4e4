"""Capture -> traffic objects -> the paper's two inputs (see docs/capture.md).

Public API (stable; other parts of trafficdl import these names):
ExtractConfig, extract_file (one capture -> FileResult), extract_dataset
(many captures -> a dataset on disk), CaptureFormatError, ExtractError.

The extraction names load on first use (module __getattr__): the CLI reads
ExtractConfig's defaults to build its options, and `trafficdl operator`,
which shares that CLI, must not pull numpy into the operator's process.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from trafficdl.capture.config import SEGMENTATIONS, ExtractConfig, ExtractConfigError

_LAZY = {
    "ExtractError": "trafficdl.capture.extract",
    "ExtractReport": "trafficdl.capture.extract",
    "FileResult": "trafficdl.capture.extract",
    "extract_dataset": "trafficdl.capture.extract",
    "extract_file": "trafficdl.capture.extract",
    "find_captures": "trafficdl.capture.extract",
    "read_labels_csv": "trafficdl.capture.extract",
    "CaptureFormatError": "trafficdl.capture.reader",
}

__all__ = ["SEGMENTATIONS", "ExtractConfig", "ExtractConfigError", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
