"""Captures -> a trafficdl dataset: per-file extraction, labels, parallelism, report.

`extract_file` is the unit of work (one capture, one process, arrays in
memory sized by its objects, never by its packets); `extract_dataset` fans
files out over `jobs` processes, labels them (folder name or a labels CSV),
and assembles the dataset part by part (trafficdl.capture.assemble, bounded
memory) in trafficdl.dataset's format. Bad files never
raise here: each capture's error/warnings land in the report and in the
dataset's meta; the caller decides (via `strict`) whether that is fatal.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import gc
import multiprocessing
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trafficdl.capture import fastwalk
from trafficdl.capture.assemble import ARRAYS, assemble, encrypted_share, parts_dir, save_part
from trafficdl.capture.config import ExtractConfig
from trafficdl.capture.fastwalk import FastWalk
from trafficdl.capture.reader import CaptureFormatError, open_records
from trafficdl.capture.walk import Walker
from trafficdl.errors import TrafficdlError
from trafficdl.features import empty_arrays

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp")
SERIAL_BELOW = 8 << 20  # bytes of input under which --jobs is not worth a process pool


class ExtractError(TrafficdlError):
    """Extraction produced nothing usable, or --strict met a damaged capture."""


@dataclass
class FileResult:
    """One capture's objects and inputs, plus what went wrong reading it."""

    path: str
    payload: np.ndarray  # uint8 [n, payload_bytes]
    packets: np.ndarray  # float32 [n, packets, 4]
    objects: np.ndarray  # OBJECT_DTYPE [n]
    packets_read: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    format: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.objects)


def extract_file(
    path: str | Path, cfg: ExtractConfig | None = None, capture_index: int = 0
) -> FileResult:
    """Read one capture and cut it into objects; never raises for bad data.

    The compiled walk (trafficdl.capture.fastwalk) runs where it covers the
    configuration; a packet it does not decode (a tunnel other than plain GTP-U)
    makes walk.py start the capture over. TRAFFICDL_CAPTURE_CORE=check runs both
    and raises on any difference (the differential tests)."""
    cfg = cfg or ExtractConfig()
    mode = fastwalk.mode()
    if mode == "python" or not fastwalk.covers(cfg):
        return _walked(path, cfg, capture_index)
    res = _extract(path, cfg, capture_index, fast=True)
    if res is None:  # a packet only walk.py decodes
        return _walked(path, cfg, capture_index)
    if mode == "check":
        fastwalk_check(res, _walked(path, cfg, capture_index))
    return res


def _walked(path: str | Path, cfg: ExtractConfig, capture_index: int) -> FileResult:
    """walk.py's result (it never gives up on a packet)."""
    res = _extract(path, cfg, capture_index, fast=False)
    assert res is not None
    return res


def fastwalk_check(fast: FileResult, ref: FileResult) -> None:
    """Raise AssertionError where the compiled walk's result differs from walk.py's."""
    for name in ("path", "format", "packets_read", "warnings", "error", "stats"):
        if getattr(fast, name) != getattr(ref, name):
            raise AssertionError(
                f"{fast.path}: compiled walk differs in {name}: "
                f"{getattr(fast, name)!r} != walk.py's {getattr(ref, name)!r}"
            )
    for name in ("payload", "packets", "objects"):
        a, b = getattr(fast, name), getattr(ref, name)
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise AssertionError(f"{fast.path}: compiled walk differs in {name} {a.shape}")


def _extract(path: str | Path, cfg: ExtractConfig, capture_index: int, fast: bool
             ) -> FileResult | None:  # fmt: skip
    """One walk of the capture; None when the compiled walk met a packet it leaves to
    walk.py."""
    name = str(path)
    walker = FastWalk(cfg, capture_index) if fast else Walker(cfg, capture_index)
    result = FileResult(name, *empty_arrays(cfg.payload_bytes, cfg.packets))
    gc_was = gc.isenabled()
    gc.disable()  # the walk allocates many small containers, none cyclic (~12%)
    try:
        with open(path, "rb") as f:
            reader = open_records(f, name)
            result.format = reader.format
            if walker.feed(reader) is False:
                return None
            result.warnings.extend(reader.warnings)
    except CaptureFormatError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"{name}: cannot read ({exc.strerror or exc})"
    finally:
        if gc_was:
            gc.enable()
    walker.close()
    st = walker.stats
    result.packets_read = st.packets
    result.stats = st.as_dict()
    if st.unknown_links:
        result.warnings.append(f"unsupported link types {sorted(st.unknown_links)} skipped")
    if st.malformed:
        result.warnings.append(f"{st.malformed} malformed packets skipped")
    if len(walker.sink):
        result.payload, result.packets, result.objects = walker.sink.arrays()
    return result


# ------------------------------------------------------------------ inputs


def find_captures(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given; directories searched recursively for capture suffixes."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(
                sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in CAPTURE_SUFFIXES)
            )
        elif p.exists():
            found.append(p)
        else:
            raise ExtractError(f"{p}: no such file or directory")
    if not found:
        raise ExtractError("no capture files found in the inputs")
    return found


def read_labels_csv(path: str | Path) -> dict[str, str]:
    """A `file,label` CSV (header optional) -> {file as written: label}."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ExtractError(f"{path}: cannot read labels ({why or exc})") from exc
    labels: dict[str, str] = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ExtractError(f"{path}:{lineno}: expected 'file,label', got {row!r}")
        if lineno == 1 and [c.strip().lower() for c in row] == ["file", "label"]:
            continue
        labels[row[0].strip()] = row[1].strip()
    return labels


def file_labels(files: Sequence[Path], labels: dict[str, str] | None) -> list[str]:
    """Each file's label: a CSV entry (as written, absolute, or by file name), else
    the parent folder's name. A file missing from a given CSV is an error."""
    if not labels:
        return [p.resolve().parent.name for p in files]
    resolved = {str(Path(k).resolve()): v for k, v in labels.items()}
    out = []
    for p in files:
        for k in (str(p), p.name):
            if k in labels:
                out.append(labels[k])
                break
        else:
            if str(p.resolve()) not in resolved:
                raise ExtractError(f"{p}: no label in the labels CSV")
            out.append(resolved[str(p.resolve())])
    return out


# ------------------------------------------------------------------ dataset


@dataclass
class ExtractReport:
    """What extract_dataset did: per capture and totals (the CLI prints it)."""

    out: str
    segmentation: str
    label_names: list[str]
    captures: list[dict[str, Any]]
    n_objects: int
    per_label: dict[str, int]
    encrypted_share: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.captures if c["error"]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _work(args: tuple[str, ExtractConfig, int, str]) -> FileResult:
    """Extract one capture and save its arrays as a part; return only its metadata."""
    path, cfg, index, spill = args
    res = extract_file(path, cfg, index)
    if len(res):
        save_part(Path(spill), index, {n: getattr(res, n) for n in ARRAYS})
    res.stats["objects"] = len(res)
    res.payload, res.packets, res.objects = empty_arrays(cfg.payload_bytes, cfg.packets)
    return res


def _results(work: list[tuple[str, ExtractConfig, int, str]], jobs: int, progress: bool):
    """Yield FileResults in input order, over `jobs` processes, with a progress bar."""
    from rich.console import Console
    from rich.progress import Progress

    # stderr: stdout carries the report (and --json)
    with Progress(transient=True, disable=not progress, console=Console(stderr=True)) as bar:
        task = bar.add_task("extracting", total=len(work))
        if jobs <= 1 or len(work) == 1:
            for job in work:
                yield _work(job)
                bar.advance(task)
            return
        # forkserver: the parent may hold threads (the progress bar's refresher)
        ctx = multiprocessing.get_context("forkserver")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            for res in pool.map(_work, work, chunksize=1):
                bar.advance(task)
                yield res


def extract_dataset(
    inputs: Sequence[str | Path],
    out: str | Path,
    cfg: ExtractConfig | None = None,
    labels: dict[str, str] | str | Path | None = None,
    jobs: int = 0,
    strict: bool = False,
    progress: bool = True,
) -> ExtractReport:
    """Extract every capture in `inputs` into one dataset at `out`.

    Captures that cannot be read are reported (in the report and the dataset's
    meta) and skipped. Raises ExtractError when nothing could be read, when no
    TCP/UDP object was found, or, with `strict`, when any capture is damaged;
    then no dataset is written.
    """
    cfg = cfg or ExtractConfig()
    files = find_captures(inputs)
    label_map = read_labels_csv(labels) if isinstance(labels, str | Path) else labels
    labels_of = file_labels(files, label_map)
    jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    created = not Path(out).exists()
    if not created and not Path(out).is_dir():
        raise ExtractError(f"{out}: exists and is not a folder")
    try:
        spill = parts_dir(out)
    except OSError as exc:
        raise ExtractError(f"{out}: cannot create the dataset folder ({exc.strerror})") from exc
    work = [(str(p), cfg, i, str(spill)) for i, p in enumerate(files)]
    captures: list[dict[str, Any]] = []
    parts: list[tuple[int, int, Any]] = []
    try:
        if sum(_size(p) for p in files) < SERIAL_BELOW:
            jobs = 1  # starting worker processes would cost more than the work
        results = _results(work, min(jobs, len(work)), progress)
        for i, (res, lab) in enumerate(zip(results, labels_of, strict=True)):
            n_obj = res.stats.pop("objects")
            captures.append(capture_record(res, lab, n_obj))
            parts.append((i, n_obj, lab))
        _check(captures, strict)
        # A class is an app with at least one object: a label whose captures were all
        # unreadable or empty would otherwise be a dead model output and a 0/0 recall.
        label_names = sorted({lab for _, n, lab in parts if n})
        lab_index = {name: i for i, name in enumerate(label_names)}
        parts = [(i, n, lab_index[lab]) for i, n, lab in parts if n]
        label_arr = assemble(
            out,
            parts,
            payload_bytes=cfg.payload_bytes,
            packets=cfg.packets,
            label_names=label_names,
            meta={
                "segmentation": cfg.segmentation,
                "extract_config": asdict(cfg),
                "captures": captures,
            },
        )
    except BaseException as exc:
        if created:  # leave no half-made dataset folder behind
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(exc, OSError):  # disk full, permissions: the user's to fix
            raise ExtractError(f"{out}: cannot write the dataset ({exc.strerror or exc})") from exc
        raise
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return ExtractReport(
        out=str(out),
        segmentation=cfg.segmentation,
        label_names=label_names,
        captures=captures,
        n_objects=len(label_arr),
        per_label={name: int((label_arr == i).sum()) for i, name in enumerate(label_names)},
        encrypted_share=encrypted_share(out),
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _check(captures: list[dict[str, Any]], strict: bool) -> None:
    """Raise ExtractError when the extraction must not produce a dataset."""
    damaged = [c for c in captures if c["error"] or c["warnings"]]
    if strict and damaged:
        first = damaged[0]
        why = first["error"] or "; ".join(first["warnings"])
        raise ExtractError(f"--strict: {len(damaged)} capture(s) damaged, first: {why}")
    if not any(c["packets"] for c in captures):
        raise ExtractError(f"nothing could be read: {unread_reasons(captures)}")
    if not any(c["objects"] for c in captures):
        raise ExtractError(f"no TCP/UDP objects found in the captures ({_seen(captures)})")


def capture_record(res: FileResult, label: str = "", objects: int | None = None) -> dict:
    """A capture's provenance as the dataset's meta and the report keep it."""
    return {
        "path": res.path,
        "label": label,
        "format": res.format,
        "packets": res.packets_read,
        "objects": len(res) if objects is None else objects,
        "error": res.error,
        "warnings": res.warnings,
        "stats": res.stats,
    }


def unread_reasons(captures: Sequence[dict[str, Any]]) -> str:
    """Why each capture gave no packet, on one line: its error, else the reader's
    warnings, else that it holds no packet."""
    reasons = []
    for c in captures:
        if c["packets"]:
            continue
        why = c["error"] or "; ".join(c["warnings"]) or "no packets"
        path = str(c["path"])
        reasons.append(why if why.startswith(path) else f"{path}: {why}")
    return "; ".join(reasons)


def _seen(captures: Sequence[dict[str, Any]]) -> str:
    """What the packets were instead of TCP/UDP, summed over captures."""
    total: dict[str, int] = {}
    for c in captures:
        for k in ("non_ip", "other_l4", "fragments", "malformed"):
            total[k] = total.get(k, 0) + int(c["stats"].get(k, 0))
    links = sorted({lt for c in captures for lt in c["stats"].get("unknown_links", [])})
    packets = sum(c["packets"] for c in captures)
    parts = [f"{v} {k.replace('_', '-')}" for k, v in total.items() if v]
    text = f"{packets} packets: " + (", ".join(parts) or "none decodable")
    if links:
        text += f"; unsupported link types {links}"
    return text


__all__ = [
    "ExtractError",
    "ExtractReport",
    "FileResult",
    "extract_dataset",
    "extract_file",
    "find_captures",
    "read_labels_csv",
    "unread_reasons",
]
