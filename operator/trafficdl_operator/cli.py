"""`trafficdl operator`: run the Kubernetes operator (kopf) for TrafficTrainingJobs.

The command lives in the operator package and reaches the `trafficdl` CLI
through the `trafficdl.commands` entry point (pyproject.toml), so the core
library never imports the operator.

Flags are turned into the operator's TRAFFICDL_OPERATOR_* environment, which
the operator's startup handler reads (trafficdl_operator.settings), then kopf
runs in this process, as `kopf run -m trafficdl_operator.main` would. kopf is
imported lazily so the rest of the CLI works without the `operator` extra.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from trafficdl.errors import TrafficdlError
from trafficdl_operator.settings import Settings


def _set(name: str, value: object | None) -> None:
    if value is not None and value != "":
        os.environ[f"TRAFFICDL_OPERATOR_{name}"] = str(value)


def register(app: typer.Typer) -> None:
    """Add `trafficdl operator` to the `trafficdl` app."""

    @app.command("operator")
    def operator(
        namespace: Annotated[list[str] | None, typer.Option(
            "--namespace", "-n", help="Serve only these namespaces (repeatable; globs allowed). "
            "Default: TRAFFICDL_OPERATOR_NAMESPACES (comma-separated), else all.")] = None,
        all_namespaces: Annotated[bool, typer.Option(
            "--all-namespaces", "-A", help="Serve every namespace (cluster-wide).")] = False,
        master_image: Annotated[str | None, typer.Option(
            help="Default master image [TRAFFICDL_OPERATOR_MASTER_IMAGE].")] = None,
        worker_image: Annotated[str | None, typer.Option(
            help="Default worker image [TRAFFICDL_OPERATOR_WORKER_IMAGE].")] = None,
        reconcile_interval: Annotated[float | None, typer.Option(
            help="Seconds between reconciliations of a job "
            "[TRAFFICDL_OPERATOR_RECONCILE_INTERVAL, 10].")] = None,
        metrics_port: Annotated[int | None, typer.Option(
            help="Prometheus port of the operator, 0: off [TRAFFICDL_OPERATOR_METRICS_PORT, "
            "8080].")] = None,
        liveness: Annotated[str, typer.Option(
            help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz (empty: off).")] = "",
        peering: Annotated[str, typer.Option(
            help="kopf peering name for several replicas (empty: standalone, one replica).")] = "",
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    ) -> None:
        """Run the TrafficTrainingJob operator until interrupted."""
        try:
            import kopf
        except ImportError as exc:
            raise TrafficdlError("the operator needs kopf: pip install 'trafficdl[operator]'") \
                from exc
        _set("MASTER_IMAGE", master_image)
        _set("WORKER_IMAGE", worker_image)
        _set("RECONCILE_INTERVAL", reconcile_interval)
        _set("METRICS_PORT", metrics_port)
        Settings.from_env()  # a bad value is a one-line error here, before kopf starts
        import trafficdl_operator.main  # noqa: F401  (registers the handlers)

        env_ns = [n for n in os.environ.get("TRAFFICDL_OPERATOR_NAMESPACES", "").split(",") if n]
        namespaces = [] if all_namespaces else list(namespace or env_ns)
        kopf.configure(verbose=verbose)
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=not peering,
            peering_name=peering or None,
            liveness_endpoint=liveness or None,
        )
