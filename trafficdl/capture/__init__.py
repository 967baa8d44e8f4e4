"""Capture -> traffic objects -> the paper's two inputs (see docs/capture.md).

Public API (stable; other parts of trafficdl import these names):
ExtractConfig, extract_file (one capture -> FileResult), extract_dataset
(many captures -> a dataset on disk), CaptureFormatError, ExtractError.
"""

from trafficdl.capture.config import SEGMENTATIONS, ExtractConfig, ExtractConfigError
from trafficdl.capture.extract import (
    ExtractError,
    ExtractReport,
    FileResult,
    extract_dataset,
    extract_file,
    find_captures,
    read_labels_csv,
)
from trafficdl.capture.reader import CaptureFormatError

__all__ = [
    "SEGMENTATIONS",
    "CaptureFormatError",
    "ExtractConfig",
    "ExtractConfigError",
    "ExtractError",
    "ExtractReport",
    "FileResult",
    "extract_dataset",
    "extract_file",
    "find_captures",
    "read_labels_csv",
]
