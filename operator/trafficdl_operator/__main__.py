"""`python -m trafficdl_operator [flags]`: the same as `trafficdl operator [flags]`.

Builds a one-command app from trafficdl_operator.cli instead of importing
the whole `trafficdl` CLI, whose other commands reach torch: the operator image
has none (import-linter checks this boundary).
"""

from __future__ import annotations

import sys

import typer

from trafficdl.errors import TrafficdlError
from trafficdl_operator import cli


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    cli.register(app)
    try:
        app(prog_name="python -m trafficdl_operator")
    except TrafficdlError as exc:  # a user error: one line, exit 2, as `trafficdl` does
        print(f"trafficdl operator: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    sys.exit(main())
