"""The flags `trafficdl classify` gains for live capture, declared once (typer only).

Defaults come from LiveSettings' fields so the CLI and the library agree.
"""

from __future__ import annotations

from typing import Annotated

import typer

Live = Annotated[
    str | None,
    typer.Option("--live", metavar="IFACE",
                 help="Classify biflows on this network interface as they happen "
                      "(root or CAP_NET_RAW)."),
]  # fmt: skip
Bpf = Annotated[
    str | None, typer.Option("--bpf", help="--live: kernel filter, e.g. 'tcp or udp port 443'.")
]
JsonLines = Annotated[
    bool, typer.Option("--json", help="JSON lines with --live; else the same as --format json.")
]
Duration = Annotated[float, typer.Option(help="--live: stop after this many seconds (0: never).")]
IdleTimeout = Annotated[float, typer.Option(help="--live: seconds of silence that end a flow.")]
ActiveTimeout = Annotated[
    float, typer.Option(help="--live: seconds after its start that end a flow (0: off).")
]
MaxFlows = Annotated[
    int, typer.Option(help="--live: flow table size; beyond it the least recent flows end.")
]
MetricsPort = Annotated[
    int | None,
    typer.Option(help="--live: serve Prometheus metrics on this port (0: a free one)."),
]
