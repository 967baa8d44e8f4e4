"""The paper's Table I for a dataset: apps, captures, objects, share encrypted.

Computed from the dataset's arrays and meta only (no captures needed), as a
plain dict (for --json) and a rich table for people.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.dataset import ENCRYPTION_KINDS, Dataset


def summarize(path: str | Path) -> dict[str, Any]:
    """Per-label and total counts of a dataset (raises DatasetError if unreadable)."""
    ds = Dataset.open(path)
    labels = np.asarray(ds.labels)
    objects = np.asarray(ds.objects)
    caps = ds.meta.get("captures", [])
    rows = []
    for i, name in enumerate(ds.label_names):
        m = labels == i
        enc = objects["encrypted"][m]
        rows.append(
            {
                "label": name,
                "captures": sum(1 for c in caps if c.get("label") == name and not c.get("error")),
                "objects": int(m.sum()),
                "share": float(m.mean()) if len(m) else 0.0,
                "packets": int(objects["n_packets"][m].sum()),
                "encrypted": float((enc > 0).mean()) if len(enc) else 0.0,
            }
        )
    enc_all = objects["encrypted"]
    encap: dict[str, int] = {}
    if "encap" in (objects.dtype.names or ()):  # datasets before decapsulation lack it
        kinds_of, counts = np.unique(objects["encap"], return_counts=True)
        encap = {str(k) or "none": int(c) for k, c in zip(kinds_of, counts, strict=True)}
    kinds = {k: int((enc_all == i).sum()) for i, k in enumerate(ENCRYPTION_KINDS)}
    return {
        "path": str(path),
        "segmentation": ds.meta.get("segmentation", "biflow"),
        "apps": ds.num_classes,
        "captures": sum(1 for c in caps if not c.get("error")),
        "captures_failed": sum(1 for c in caps if c.get("error")),
        "objects": len(ds),
        "packets": int(objects["n_packets"].sum()),
        "encrypted_share": float((enc_all > 0).mean()) if len(ds) else 0.0,
        "encryption": kinds,
        "encapsulation": encap,  # objects per tunnel stack ("none": not tunnelled)
        "per_label": rows,
    }


def render_summary(s: dict[str, Any]) -> str:
    """A rich table, rendered to text."""
    from rich.console import Console
    from rich.table import Table

    seg = s["segmentation"]
    t = Table(title=f"{s['path']}: {s['apps']} apps, {s['captures']} captures, "
              f"{s['objects']} {seg}s, {s['encrypted_share']:.1%} encrypted")  # fmt: skip
    for col in ("app", "captures", f"{seg}s", "share", "packets", "encrypted"):
        t.add_column(col, justify="left" if col == "app" else "right")
    for r in s["per_label"]:
        t.add_row(r["label"], str(r["captures"]), f"{r['objects']:,}", f"{r['share']:.1%}",
                  f"{r['packets']:,}", f"{r['encrypted']:.1%}")  # fmt: skip
    kinds = ", ".join(f"{k} {v:,}" for k, v in s["encryption"].items())
    buf = io.StringIO()
    Console(file=buf, width=100, color_system=None).print(t)
    text = buf.getvalue().rstrip() + f"\nencryption: {kinds}"
    if s.get("encapsulation"):
        text += "\nencapsulation: " + ", ".join(f"{k} {v:,}" for k, v in s["encapsulation"].items())
    return text
