"""`--resume` of a local run: which settings make it another run (trafficdl.distributed.resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.dataset import OBJECT_DTYPE, write_dataset
from trafficdl.distributed import resume

TRAIN = TrainConfig(model="lstm", epochs=5, batch_size=25)
DIST = DistConfig(workers=2, algorithm="aeasgd", window=2)


def _dataset(out: Path, n: int = 30, labels_seed: int = 0) -> Path:
    rng = np.random.default_rng(labels_seed)
    objects = np.zeros(n, dtype=OBJECT_DTYPE)
    return write_dataset(out, payload=np.zeros((n, 8), np.uint8),
                         packets=np.zeros((n, 20, 4), np.float32),
                         labels=rng.integers(0, 2, n).astype(np.int32), objects=objects,
                         label_names=["a", "b"], meta={"captures": []})  # fmt: skip


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    ds, out = _dataset(tmp_path / "ds"), tmp_path / "run"
    out.mkdir()
    record = resume.begin(out, ds, TRAIN, DIST)
    resume.start(out, record, DIST.workers)
    return ds, out


def test_same_settings_resume_the_same_run(recorded: tuple[Path, Path]) -> None:
    ds, out = recorded
    first = resume.read(out)["run_id"]
    # Where processes run is not part of the run: threads and heartbeats may change.
    dist = DistConfig(**{**DIST.__dict__, "threads_per_worker": 3, "heartbeat_seconds": 1.0})
    assert resume.begin(out, ds, TRAIN, dist, resume=True)["run_id"] == first


def test_every_difference_is_named(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    ds, out = recorded
    other = _dataset(tmp_path / "other", labels_seed=1)
    train = TrainConfig(**{**TRAIN.__dict__, "model": "cnn1d"})
    dist = DistConfig(**{**DIST.__dict__, "window": 3, "algorithm": "downpour"})
    with pytest.raises(resume.ResumeError) as err:
        resume.begin(out, other, train, dist, resume=True)
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("--model lstm (now cnn1d)", "--window 2 (now 3)",
                 "--algorithm aeasgd (now downpour)", f"data {ds}"):  # fmt: skip
        assert part in msg, msg


def test_elastic_n_only_for_asynchronous_runs(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds")
    for algorithm, allowed in (("aeasgd", True), ("easgd", False)):
        out = tmp_path / algorithm
        out.mkdir()
        dist = DistConfig(workers=2, algorithm=algorithm, window=2, elastic_lr=0.09)
        resume.start(out, resume.begin(out, ds, TRAIN, dist), 2)
        three = DistConfig(**{**dist.__dict__, "workers": 3})
        if allowed:
            assert resume.begin(out, ds, TRAIN, three, resume=True)["dist"]["workers"] == 3
        else:
            with pytest.raises(resume.ResumeError, match=r"--workers 2 \(now 3\): the synchronous"):
                resume.begin(out, ds, TRAIN, three, resume=True)


def test_nothing_to_resume_or_already_done(tmp_path: Path, recorded: tuple[Path, Path]) -> None:
    ds, out = recorded
    with pytest.raises(resume.ResumeError, match="no distributed run to continue"):
        resume.begin(tmp_path / "empty", ds, TRAIN, DIST, resume=True)
    run_id = resume.read(out)["run_id"]
    (out / "run.json").write_text(f'{{"run_id": "{run_id}"}}')
    with pytest.raises(resume.ResumeError, match="has already completed"):
        resume.begin(out, ds, TRAIN, DIST, resume=True)
