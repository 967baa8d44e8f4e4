"""Datasets in and out of the `.npy` format: one row per object, as Parquet or CSV.

`export_dataset` writes every object with both model inputs, so a dataset can
be inspected with any dataframe tool, and `import_dataset` builds a dataset
from a labelled file of the same shape (an NFStream export with payload
columns, a dataset made elsewhere), so it can be trained on. Columns (also in
docs/api.md):

    <object fields>   every field of objects.npy under its own name (capture, proto,
                      src, sport, dst, dport, n_packets, n_bytes, start, duration,
                      encrypted, plus any field the capture code adds)
    label             the app (text)
    capture_path      the capture the object came from
    encryption        encrypted as a name (none/tls/quic/dtls), informative only
    payload           the first N_b payload bytes: binary (Parquet) or hex text (CSV)
    size_0, direction_0, window_0, iat_0, size_1, ...   the first N_p packets' fields

dataset.json travels with the rows (Parquet: the schema's "trafficdl" metadata;
CSV: a first line `# trafficdl-dataset <json>`), so export then import gives
back the same files byte for byte. Floats go to CSV as the exact float64 text
of their float32 value, which parses back to the same bits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trafficdl.dataset import (
    ENCRYPTION_KINDS,
    OBJECT_DTYPE,
    PACKET_FIELDS,
    Dataset,
    write_dataset,
)
from trafficdl.errors import TrafficdlError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("parquet", "csv")
META_KEY = b"trafficdl"
CSV_MARK = "# trafficdl-dataset "
DERIVED = ("label", "capture_path", "encryption", "payload")
_FORMAT_FIELDS = ("format", "version", "n_objects", "payload_bytes", "packets", "packet_fields")


class InterchangeError(TrafficdlError):
    """A file to import is unreadable or not of the documented shape."""


def file_format(path: str | Path, fmt: str | None) -> str:
    """The format asked for, else the one the file name says (.parquet/.pq, .csv)."""
    name = fmt or {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}.get(
        Path(path).suffix.lower(), ""
    )
    if name not in FORMATS:
        raise InterchangeError(f"{path}: say --format parquet or csv")
    return name


def packet_columns(packets: int, fields: tuple[str, ...] = PACKET_FIELDS) -> list[str]:
    return [f"{f}_{i}" for i in range(packets) for f in fields]


def dataset_frame(ds: Dataset) -> pd.DataFrame:
    """The export rows of a dataset: objects, label, inputs (payload as bytes)."""
    import pandas as pd

    from trafficdl.api.data import objects_frame

    frame = objects_frame(ds)
    payload = np.ascontiguousarray(ds.payload)
    frame["payload"] = [bytes(r) for r in payload]
    n, p = len(ds), int(ds.packets.shape[1])
    fields = tuple(ds.meta.get("packet_fields", PACKET_FIELDS))
    flat = np.asarray(ds.packets, dtype=np.float32).reshape(n, p * len(fields))
    packets = pd.DataFrame(flat, columns=packet_columns(p, fields), index=frame.index)
    return pd.concat([frame, packets], axis=1)


def export_dataset(dataset: str | Path, out: str | Path, fmt: str | None = None) -> Path:
    """Write a dataset's objects and both inputs to one Parquet or CSV file."""
    kind = file_format(out, fmt)
    ds = Dataset.open(dataset)
    frame = dataset_frame(ds)
    meta = json.dumps(ds.meta, sort_keys=True)
    target = Path(out)
    try:
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   META_KEY: meta.encode()})  # fmt: skip
            pq.write_table(table, target)
        else:
            frame["payload"] = [b.hex() for b in frame["payload"]]
            for col in frame.columns:  # float32 -> exact float64 text
                if frame[col].dtype == np.float32:
                    frame[col] = frame[col].astype(np.float64)
            with open(target, "w", newline="") as f:
                f.write(CSV_MARK + meta + "\n")
                frame.to_csv(f, index=False)
    except OSError as exc:
        raise InterchangeError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    return target


# ------------------------------------------------------------------ import


def read_frame(path: str | Path, fmt: str | None = None) -> tuple[pd.DataFrame, dict | None]:
    """The rows of an interchange file and its embedded dataset.json (None if absent)."""
    import pandas as pd

    kind = file_format(path, fmt)
    src = Path(path)
    if not src.is_file():
        raise InterchangeError(f"{src}: no such file")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(src)
            raw = (table.schema.metadata or {}).get(META_KEY)
            return table.to_pandas(), json.loads(raw) if raw else None
        with open(src, newline="") as f:
            first = f.readline()
            meta = json.loads(first[len(CSV_MARK):]) if first.startswith(CSV_MARK) else None
            if meta is None:
                f.seek(0)
            text = {"label", "capture_path", "encryption", "payload", "src", "dst"}
            frame = pd.read_csv(f, dtype={c: str for c in text}, keep_default_na=False)
        return frame, meta
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InterchangeError(f"{src}: cannot read as {kind} ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own types for damaged files
        raise InterchangeError(f"{src}: cannot read as {kind} ({type(exc).__name__})") from exc


def import_dataset(path: str | Path, out: str | Path, fmt: str | None = None) -> Path:
    """Build a dataset at `out` from a labelled Parquet/CSV file (see the module docstring).

    Required: `label` and at least one input (`payload`, or `size_0`... packet
    columns); a missing input is zero-filled, missing object fields take
    neutral values (0, empty address), n_packets defaults to the packets
    whose direction is non-zero.
    """
    frame, meta = read_frame(path, fmt)
    if "label" not in frame.columns:
        raise InterchangeError(f"{path}: no 'label' column")
    n = len(frame)
    if n == 0:
        raise InterchangeError(f"{path}: no rows")
    embedded = meta is not None
    meta = dict(meta or {})
    fields = tuple(meta.get("packet_fields", PACKET_FIELDS))
    payload = _payload(frame, meta, path)
    packets = _packets(frame, meta, fields, path)
    if payload is None and packets is None:
        raise InterchangeError(f"{path}: neither a 'payload' column nor packet columns")
    if payload is None:
        payload = np.zeros((n, int(meta.get("payload_bytes", 784))), np.uint8)
    if packets is None:
        packets = np.zeros((n, int(meta.get("packets", 20)), len(fields)), np.float32)
    names = [str(v) for v in frame["label"]]
    label_names = list(meta.get("labels") or [])
    if not set(names) <= set(label_names):
        label_names = sorted(set(names))
    index = {name: i for i, name in enumerate(label_names)}
    labels = np.array([index[v] for v in names], dtype=np.int32)
    if "captures" not in meta:
        meta["captures"] = _captures(frame, names)
    objects = _objects(frame, packets, meta["captures"])
    keep = {k: v for k, v in meta.items() if k not in (*_FORMAT_FIELDS, "labels")}
    if not embedded:  # a foreign file: say where the rows came from
        keep["imported_from"] = str(path)
    try:
        write_dataset(out, payload=payload, packets=packets, labels=labels, objects=objects,
                      label_names=label_names, meta=keep)  # fmt: skip
    except OSError as exc:
        raise InterchangeError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    return Path(out)


def _payload(frame: pd.DataFrame, meta: dict, path: Any) -> np.ndarray | None:
    if "payload" not in frame.columns:
        return None
    rows = []
    for v in frame["payload"]:
        if isinstance(v, bytes | bytearray | memoryview):
            rows.append(bytes(v))
            continue
        try:
            rows.append(bytes.fromhex(str(v)))
        except ValueError as exc:
            raise InterchangeError(f"{path}: payload is neither bytes nor hex text") from exc
    width = int(meta.get("payload_bytes") or max((len(r) for r in rows), default=0))
    buf = b"".join(r[:width].ljust(width, b"\0") for r in rows)
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(rows), width).copy()


def _packets(frame: pd.DataFrame, meta: dict, fields: tuple[str, ...], path: Any) -> Any:
    count = int(meta.get("packets") or 0)
    if not count:
        while f"{fields[0]}_{count}" in frame.columns:
            count += 1
    if not count or f"{fields[0]}_0" not in frame.columns:
        return None
    cols = packet_columns(count, fields)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InterchangeError(f"{path}: missing packet column(s) {', '.join(missing[:4])}")
    try:
        flat = frame[cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InterchangeError(f"{path}: packet columns must be numbers") from exc
    return flat.astype(np.float32).reshape(len(frame), count, len(fields))


def _captures(frame: pd.DataFrame, labels: list[str]) -> list[dict[str, Any]]:
    """Provenance when the file has no dataset.json: one entry per capture_path."""
    paths = [str(v) for v in frame.get("capture_path", [""] * len(frame))]
    out: dict[str, dict[str, Any]] = {}
    for p, lab in zip(paths, labels, strict=True):
        entry = out.setdefault(p, {"path": p, "label": lab, "format": "imported", "packets": 0,
                                   "objects": 0, "error": None, "warnings": [], "stats": {}})
        entry["objects"] += 1
    return list(out.values())


def _objects(frame: pd.DataFrame, packets: np.ndarray, captures: list[dict]) -> np.ndarray:
    objects = np.zeros(len(frame), dtype=OBJECT_DTYPE)
    for name in OBJECT_DTYPE.names or ():
        if name in frame.columns:
            objects[name] = frame[name].to_numpy()
    cols = set(frame.columns)
    if "capture" not in cols and "capture_path" in cols:
        where = {c["path"]: i for i, c in enumerate(captures)}
        objects["capture"] = [where.get(str(p), 0) for p in frame["capture_path"]]
    if "n_packets" not in cols:
        objects["n_packets"] = (packets[:, :, 1] != 0).sum(axis=1)
    if "encrypted" not in cols and "encryption" in cols:
        kinds = {k: i for i, k in enumerate(ENCRYPTION_KINDS)}
        objects["encrypted"] = [kinds.get(str(v), 0) for v in frame["encryption"]]
    return objects
