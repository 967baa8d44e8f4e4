"""trafficdl: distributed deep-learning training for encrypted mobile-app traffic.

The core library (capture parsing, features, datasets, models, update rules,
evaluation, cost). It imports nothing from the master, worker or operator
packages, and importing it does not import torch: the operator image uses the
RPC stubs and the cost/status helpers without PyTorch.

The Python API (trafficdl.api, docs/api.md) is reachable from here —
`trafficdl.extract`, `trafficdl.open_dataset`, `trafficdl.train`,
`trafficdl.evaluate`, `trafficdl.load_classifier`, `trafficdl.synthesize` — through
a module `__getattr__`, so it is imported on first use, not by `import trafficdl`.
(The synthetic-capture function is `synthesize`: `trafficdl.synth` is the module.)
The names are not imported here even for type checkers — the import-linter
contracts would then see torch behind `trafficdl`; __init__.pyi types them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = (
    "Classifier",
    "TrafficDataset",
    "TrainResult",
    "evaluate",
    "extract",
    "load_classifier",
    "open_dataset",
    "synthesize",
    "train",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("trafficdl.api"), name)
    raise AttributeError(f"module 'trafficdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]  # served by __getattr__
