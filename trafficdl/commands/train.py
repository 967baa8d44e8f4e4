"""CLI commands of one capability (filled in by its owner); see trafficdl.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `trafficdl` app."""
