"""The `trafficdl` command: one Typer app, one module of commands per capability.

Each module in trafficdl.commands exposes `register(app)`; so does each
`trafficdl.commands` entry point of an installed package (the operator's
`trafficdl operator`, which the core must not import). This file only wires
them and turns user errors (TrafficdlError) into a one-line message with exit
code 2, so bad input never shows a traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

# Typer vendors its own click; its exception classes are only reachable here.
from typer._click import exceptions as click_exc

from trafficdl.commands import capture, distributed, interchange, runs, study, train
from trafficdl.errors import TrafficdlError

app = typer.Typer(
    name="trafficdl",
    help="Train and evaluate deep-learning classifiers of encrypted mobile-app traffic, "
    "centrally or data-parallel (master + N workers), with time/cost/accuracy figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the trafficdl version."""
    from trafficdl import __version__

    typer.echo(__version__)


for module in (capture, train, interchange, distributed, runs, study):
    module.register(app)
for plugin in sorted(entry_points(group="trafficdl.commands"), key=lambda ep: ep.name):
    plugin.load()(app)  # e.g. trafficdl_operator.cli:register


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # Not standalone, click returns a command's `typer.Exit(code)` instead of raising it.
        rc = app(args=args or ["--help"], prog_name="trafficdl", standalone_mode=False)
    except TrafficdlError as exc:
        print(f"trafficdl: error: {exc}", file=sys.stderr)
        return 2
    except click_exc.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        print(f"trafficdl: error: {exc.format_message()}{hint}", file=sys.stderr)
        return 2
    except click_exc.ClickException as exc:
        print(f"trafficdl: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("trafficdl: aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return rc if isinstance(rc, int) else 0


def run() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
