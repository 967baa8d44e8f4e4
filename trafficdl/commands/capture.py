"""CLI commands of the capture capability: `synth`, `extract`, `summary`.

Thin wrappers: they parse flags into an ExtractConfig / synthesize() call and
print a human table (rich) or `--json`. Exit codes: 0 on success, 2 when
nothing could be read, on bad input, or with --strict on a damaged capture
(raised as TrafficdlError and printed on one line by trafficdl.cli).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trafficdl.capture.config import ExtractConfig
from trafficdl.errors import TrafficdlError

_X = ExtractConfig()  # defaults: one source of truth


def synth(
    out_dir: Annotated[Path, typer.Argument(help="folder to write (one sub-folder per app)")],
    apps: Annotated[int, typer.Option(help="number of apps (classes)")] = 5,
    flows_per_app: Annotated[int, typer.Option(help="flows (biflows) per app")] = 200,
    captures_per_app: Annotated[int, typer.Option(help="pcap files per app")] = 2,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
) -> None:
    """Write deterministic synthetic app captures (TLS, QUIC, DNS; a similar pair)."""
    from trafficdl.synth import synthesize

    paths = synthesize(
        out_dir, apps=apps, flows_per_app=flows_per_app, seed=seed,
        captures_per_app=captures_per_app,
    )  # fmt: skip
    typer.echo(f"wrote {len(paths)} captures for {apps} apps under {out_dir}")


def extract(
    inputs: Annotated[list[Path], typer.Argument(help="pcap/pcapng files or folders")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset folder to write")],
    segmentation: Annotated[str, typer.Option(help="biflow, flow or burst")] = "biflow",
    payload_bytes: Annotated[int, typer.Option(help="N_b payload bytes per object")] = 784,
    packets: Annotated[int, typer.Option(help="N_p packets per object")] = 20,
    idle_timeout: Annotated[float, typer.Option(help="seconds that end a (bi)flow")] = 120.0,
    active_timeout: Annotated[
        float, typer.Option(help="seconds after its start that end a (bi)flow (0: off)")
    ] = _X.active_timeout,
    tcp_close: Annotated[
        bool, typer.Option(help="a SYN after both FINs or an RST starts a new object")
    ] = _X.tcp_close,
    decap: Annotated[
        str, typer.Option(help="tunnels to decapsulate, comma-separated (PPPoE always)")
    ] = ",".join(_X.decap),
    no_decap: Annotated[bool, typer.Option("--no-decap", help="decapsulate no tunnel")] = False,
    tunnel_key: Annotated[
        bool, typer.Option(help="add the VNI / GRE key / PPPoE session to the object key")
    ] = _X.tunnel_key,
    burst_gap: Annotated[float, typer.Option(help="seconds that split a service burst")] = 1.0,
    min_packets: Annotated[int, typer.Option(help="drop objects with fewer packets")] = 1,
    labels: Annotated[
        Path | None, typer.Option(help="CSV file,label (default: the parent folder's name)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="processes (0: all cores)")] = 0,
    strict: Annotated[bool, typer.Option(help="fail on any damaged capture")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON report")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Cut captures into biflows/flows/service bursts and write the two model inputs."""
    from trafficdl.capture import extract_dataset

    cfg = ExtractConfig(
        segmentation=segmentation, payload_bytes=payload_bytes, packets=packets,
        idle_timeout=idle_timeout, active_timeout=active_timeout, tcp_close=tcp_close,
        burst_gap=burst_gap, min_packets=min_packets, decap=() if no_decap else decap,
        tunnel_key=tunnel_key,
    )  # fmt: skip
    report = extract_dataset(
        inputs, out, cfg, labels=labels, jobs=jobs, strict=strict,
        progress=progress and not as_json,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    for c in report.captures:
        if c["error"]:
            typer.echo(f"skipped {c['path']}: {c['error']}", err=True)
        for w in c["warnings"]:
            typer.echo(f"warning {c['path']}: {w}", err=True)
    ok = len(report.captures) - len(report.failed)
    typer.echo(
        f"{report.n_objects} {report.segmentation}s from {ok}/{len(report.captures)} captures, "
        f"{len(report.label_names)} labels, {report.encrypted_share:.0%} encrypted -> {out}"
    )


def summary(
    dataset: Annotated[Path, typer.Argument(help="a dataset folder written by extract")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Describe a dataset like the paper's Table I (apps, captures, objects, encryption)."""
    from trafficdl.capture.summary import render_summary, summarize

    s = summarize(dataset)
    typer.echo(json.dumps(s, indent=2) if as_json else render_summary(s))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `trafficdl` app."""
    app.command()(synth)
    app.command()(extract)
    app.command()(summary)


__all__ = ["TrafficdlError", "register"]
