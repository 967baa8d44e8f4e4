"""Continuing a stopped local run (`trafficdl train --workers N --resume`): the launch record.

The launcher writes RUN_DIR/launch.json when a run starts:

    {"format": "trafficdl-launch", "version": 1, "run_id": ..., "dataset": path,
     "data": {"objects": n, "sha256": ...}, "train": {...}, "dist": {...},
     "sessions": [{"started_at", "ended_at", "outcome", "workers", "restarts"}]}

A resume reads it back and continues the same run: same run id, so the master
finds its checkpoints (RUN_DIR/checkpoints/RUN_ID) and restores the newest good
one; the workers register again and resume at their acknowledged batches.
Before any process starts or any file changes, the settings are compared with
the record, and a resume that would not be the same run is refused with one
line naming every difference: any TrainConfig/DistConfig field (except those
that only say how processes run: threads, device, heartbeats, chunking, when to
checkpoint; see OPERATIONAL) and the data (objects,
labels and dataset.json, hashed; the directory may have moved). The one
documented exception is N for an asynchronous algorithm: the master rescales
the run to the new world size (docs/distributed.md, elastic scaling);
synchronous easgd keeps its N.

`data_fingerprint` hashes dataset.json and labels.npy and takes the other
arrays' sizes: cheap on a multi-GB dataset, and it catches another extract,
another label set or another segmentation.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from trafficdl.config import DistConfig, TrainConfig, to_dict
from trafficdl.dataset import Dataset
from trafficdl.distributed.rundir import write_json
from trafficdl.errors import TrafficdlError

LAUNCH_FILE = "launch.json"
FORMAT = "trafficdl-launch"
# Fields that change how the processes run, not what the run computes or costs.
OPERATIONAL = frozenset({"threads", "device", "threads_per_worker", "heartbeat_seconds",
                         "lost_after", "chunk_bytes", "checkpoint_every", "sync_timeout"})


class ResumeError(TrafficdlError):
    """A --resume that cannot continue the run in RUN_DIR."""


def data_fingerprint(dataset_path: str | Path) -> dict[str, Any]:
    ds = Dataset.open(dataset_path)
    root = Path(ds.path)
    h = hashlib.sha256()
    for name in ("dataset.json", "labels.npy"):
        h.update((root / name).read_bytes())
    for p in sorted(root.glob("*.npy")):
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    return {"objects": len(ds), "sha256": h.hexdigest()}


def _plain(cfg: TrainConfig | DistConfig) -> dict[str, Any]:
    return json.loads(json.dumps(to_dict(cfg)))


def differences(
    record: dict[str, Any], data: dict[str, Any], dataset: str, train: TrainConfig,
    dist: DistConfig,
) -> list[str]:  # fmt: skip
    """What makes this launch another run than the recorded one (empty: the same run)."""
    diffs = []
    if record["data"]["sha256"] != data["sha256"]:
        diffs.append(f"data {record['dataset']} ({record['data']['objects']} objects) "
                     f"(now {dataset}, {data['objects']} objects)")  # fmt: skip
    for section, cfg in (("train", train), ("dist", dist)):
        old, new = record[section], _plain(cfg)
        for name in sorted(set(old) | set(new)):
            if name in OPERATIONAL or old.get(name) == new.get(name):
                continue
            if section == "dist" and name == "workers" and not dist.synchronous:
                continue  # elastic: the master rescales an asynchronous run
            flag = "--" + name.replace("_", "-")
            note = ""
            if name == "workers":
                note = f": the synchronous {dist.algorithm} cannot change its world size"
            diffs.append(f"{flag} {old.get(name)} (now {new.get(name)}){note}")
    return diffs


def begin(
    out: Path, dataset: str | Path, train: TrainConfig, dist: DistConfig, *, run_id: str = "",
    resume: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The launch record of this run: a new one, or for `resume` the stored one once
    checked (raises ResumeError, having touched nothing). Not yet written: `start`."""
    data = data_fingerprint(dataset)
    path = str(Path(dataset).resolve())
    if not resume:
        return {"format": FORMAT, "version": 1, "run_id": run_id or uuid.uuid4().hex[:12],
                "dataset": path, "data": data, "train": _plain(train), "dist": _plain(dist),
                "sessions": []}  # fmt: skip
    record = read(out)
    if run_id and run_id != record["run_id"]:
        raise ResumeError(f"--resume: {out} holds run {record['run_id']}, not {run_id}")
    done = out / "run.json"
    if done.is_file() and json.loads(done.read_text()).get("run_id") == record["run_id"]:
        raise ResumeError(f"--resume: run {record['run_id']} in {out} has already completed "
                          "(run.json); train into another --out")  # fmt: skip
    diffs = differences(record, data, path, train, dist)
    if diffs:
        raise ResumeError(f"--resume: {out} holds run {record['run_id']} started with other "
                          f"settings: {'; '.join(diffs)}; resume with the same settings or "
                          "train into another --out")  # fmt: skip
    return {**record, "dataset": path, "dist": _plain(dist)}


def read(out: Path) -> dict[str, Any]:
    path = out / LAUNCH_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResumeError(f"--resume: {out} holds no distributed run to continue "
                          f"(no {LAUNCH_FILE})") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ResumeError(f"--resume: {path} is unreadable: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ResumeError(f"--resume: {path} is not a trafficdl launch record")
    return record


def start(out: Path, record: dict[str, Any], workers: int) -> None:
    """Record a new session (this launch) and write the record."""
    record["sessions"].append({"started_at": time.time(), "ended_at": None,
                               "outcome": "running", "workers": workers})  # fmt: skip
    write_json(out / LAUNCH_FILE, record)


def end(out: Path, record: dict[str, Any], outcome: str, restarts: dict[str, int]) -> None:
    """Close this session: succeeded, interrupted or failed, with its restarts per process."""
    record["sessions"][-1].update(ended_at=time.time(), outcome=outcome, restarts=restarts)
    write_json(out / LAUNCH_FILE, record)
