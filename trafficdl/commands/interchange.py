"""`export`, `import` and `export-model`: datasets and models out of (and into) trafficdl.

Thin: flags → trafficdl.interchange / trafficdl.export_model, a one-line
report on stdout (or `--json`). pandas, pyarrow, torch and onnx are imported
inside the commands, so `trafficdl --help` does not pay for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trafficdl.errors import TrafficdlError

Format = Annotated[
    str | None, typer.Option("--format", help="parquet or csv (default: from the file name).")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _need(module: str) -> None:
    """A clear error when the `api` extra (pandas, pyarrow, onnx...) is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise TrafficdlError(f"{module} is not installed: pip install 'trafficdl[api]'")


def export(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (trafficdl extract).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (.parquet or .csv).")],
    fmt: Format = None,
    json_out: JsonOut = False,
) -> None:
    """Write a dataset as one table: objects plus both inputs, one row per object."""
    from trafficdl.interchange import export_dataset, file_format

    kind = file_format(out, fmt)
    _need("pandas")
    if kind == "parquet":
        _need("pyarrow")
    path = export_dataset(dataset, out, kind)
    _report({"dataset": str(dataset), "out": str(path), "format": kind,
             "bytes": path.stat().st_size}, json_out)  # fmt: skip


def import_(
    file: Annotated[Path, typer.Argument(help="Labelled .parquet or .csv of the export shape.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write.")],
    fmt: Format = None,
    json_out: JsonOut = False,
) -> None:
    """Build a dataset from a labelled Parquet/CSV file (columns: docs/api.md)."""
    from trafficdl.dataset import Dataset
    from trafficdl.interchange import file_format, import_dataset

    kind = file_format(file, fmt)
    _need("pandas")
    if kind == "parquet":
        _need("pyarrow")
    ds = Dataset.open(import_dataset(file, out, kind))
    _report({"file": str(file), "out": str(out), "objects": len(ds),
             "labels": ds.label_names}, json_out)  # fmt: skip


def export_model(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt from train.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write.")],
    card: Annotated[
        Path | None, typer.Option(help="Model card JSON (default: OUT.card.json).")
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(help="Dataset to run the exported model on against PyTorch (max |diff|)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Export a checkpoint to ONNX or TorchScript with its input scaling baked in."""
    from trafficdl.export_model import FORMATS, ExportError, check_export
    from trafficdl.export_model import export_model as export
    from trafficdl.training.checkpoint import load_checkpoint

    if fmt not in FORMATS:
        raise TrafficdlError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        for module in ("onnx", "onnxscript"):
            _need(module)
    ckpt = load_checkpoint(checkpoint)
    path, card_path = export(ckpt, out, fmt, card)
    report: dict = {"out": str(path), "card": str(card_path), "format": fmt,
                    "labels": ckpt.label_names}  # fmt: skip
    if check is not None:
        from trafficdl.dataset import Dataset

        if fmt == "onnx":
            _need("onnxruntime")
        diff = check_export(path, fmt, ckpt, Dataset.open(check))
        report["max_abs_diff"] = diff
        if diff > 1e-5:
            raise ExportError(f"{path}: outputs differ from PyTorch's by {diff:.2e} (> 1e-5)")
    _report(report, json_out)


def _report(data: dict, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo("  ".join(f"{k}: {v}" for k, v in data.items()))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `trafficdl` app."""
    app.command()(export)
    app.command("import")(import_)
    app.command("export-model")(export_model)
