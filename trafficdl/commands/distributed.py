"""`trafficdl master-status`: ask a running master (local or in a cluster) how its run goes.

The master's Status RPC is the run's source of truth (phase, slowest worker's
epoch, commits, T, WTPE, node-hours, cost, and the test figures once done);
this prints it for a human, or as one JSON document with `--json`. Training
itself is `trafficdl train --workers N` (trafficdl.commands.train).

Like a worker it sends the run token, so it follows the same rule: TLS
(`--ca`, and `--cert/--key` for a master that requires client certificates)
or a loopback address; plaintext elsewhere only with `--allow-plaintext`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from trafficdl.contract import Env
from trafficdl.errors import TrafficdlError


def master_status(
    master: Annotated[str, typer.Argument(help="Master address host:port.")],
    run_id: Annotated[str, typer.Option(help="Run id (empty: whatever the master serves).")] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 5.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    token_file: Annotated[
        str,
        typer.Option(
            help=f"File holding the run token (default: ${Env.TOKEN}).",
            envvar=Env.TOKEN_FILE,
        ),
    ] = "",
    ca: Annotated[
        str, typer.Option(help="CA that verifies the master's certificate (PEM): enables TLS.")
    ] = "",
    cert: Annotated[
        str, typer.Option(help="Client certificate (PEM), for a master that requires mTLS.")
    ] = "",
    key: Annotated[str, typer.Option(help="The client certificate's private key (PEM).")] = "",
    server_name: Annotated[
        str, typer.Option(help="Name to check in the master's certificate (default: the host).")
    ] = "",
    allow_plaintext: Annotated[
        bool,
        typer.Option(
            "--allow-plaintext",
            help="Send the token without TLS to a non-loopback master (trusted networks only).",
            envvar=Env.ALLOW_PLAINTEXT,
        ),
    ] = False,
) -> None:
    """Show a running master's phase, progress, time, cost and figures."""
    import grpc
    from google.protobuf.json_format import MessageToDict

    from trafficdl.distributed.progress import PHASE_NAMES
    from trafficdl.rpc.client import ParameterServerClient
    from trafficdl.rpc.credentials import client_tls_from, token_from

    client = ParameterServerClient(
        master,
        run_id,
        token=token_from(token_file),  # never a flag: `ps` would show it
        tls=client_tls_from(ca, cert, key, server_name),
        allow_plaintext=allow_plaintext,
    )
    try:
        st = client.status(timeout=timeout)
    except grpc.RpcError as exc:
        raise TrafficdlError(f"master {master}: {exc.code().name}: {exc.details()}") from None
    finally:
        client.close()
    if json_out:
        typer.echo(json.dumps(MessageToDict(st, preserving_proto_field_name=True), indent=2))
        return
    typer.echo(
        f"run {st.run_id}: {PHASE_NAMES[st.phase]}  {st.model}  N={st.world_size}  "
        f"epoch {st.epoch:.2f}/{st.epochs} ({st.progress:.0%})  "
        f"workers {st.workers_connected} connected, {st.workers_finished} finished, "
        f"{st.workers_lost} lost"
    )
    typer.echo(
        f"T {st.training_seconds:.1f} s  WTPE {st.wtpe_seconds:.2f} s  "
        f"node-hours {st.node_hours:.4f}  cost {st.cost:.4f} {st.currency}  "
        f"commits {st.commits_total} (rejected {st.commits_rejected})"
    )
    if st.message:
        typer.echo(st.message)
    if st.HasField("figures"):
        f = st.figures
        typer.echo(
            f"test: accuracy {f.accuracy:.4f}  macro recall {f.macro_recall:.4f}  "
            f"macro F {f.macro_f1:.4f}"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `trafficdl` app."""
    app.command("master-status")(master_status)
