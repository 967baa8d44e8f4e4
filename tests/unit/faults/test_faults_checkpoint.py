"""The master's checkpoint store: round trip, torn/corrupt files, crashed writers, retention."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from trafficdl_master import snapshot_store
from trafficdl_master.snapshot_store import CheckpointError, CheckpointStore, CorruptCheckpoint


def _state(counter: int, n: int = 1000) -> tuple[dict[str, np.ndarray], dict]:
    rng = np.random.default_rng(counter)
    arrays = {
        "centre": rng.standard_normal(n).astype(np.float32),
        "adag/accumulator": rng.standard_normal((3, 7)),  # float64, 2-D
        "steps": np.arange(5, dtype=np.int64),
        "flags": np.array([True, False, True]),
        "scalar": np.array(2.5, dtype=np.float16),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    meta = {
        "run_id": "run-abc",
        "model_version": "cnn1d:deadbeef",
        "update_counter": counter,
        "training_seconds": 12.5 * counter,
        "workers": {"0": {"batches_done": 10 * counter, "loss": float("nan")}, "1": {}},
    }
    return arrays, meta


def _assert_same(snap: snapshot_store.Snapshot, arrays: dict, meta: dict) -> None:
    assert set(snap.arrays) == set(arrays)
    for name, value in arrays.items():
        got = snap.arrays[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value)
    for key, value in meta.items():
        if key != "workers":
            assert snap.meta[key] == value
    assert math.isnan(snap.meta["workers"]["0"]["loss"])


def test_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    assert store.latest_good() is None
    arrays, meta = _state(7)
    before = time.time()
    path = store.save(arrays, meta)
    snap = store.latest_good()
    assert snap is not None and snap.path == path and snap.seq == 1
    _assert_same(snap, arrays, meta)
    assert snap.update_counter == 7 and before <= snap.saved_at <= time.time()
    snap.arrays["centre"][0] = 42.0  # writable, and does not touch the file
    assert CheckpointStore(tmp_path).latest_good().arrays["centre"][0] == arrays["centre"][0]


def test_non_contiguous_arrays_are_saved_by_value(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    store.save({"t": base.T, "s": base[:, ::2]}, {"update_counter": 0})
    snap = store.latest_good()
    np.testing.assert_array_equal(snap.arrays["t"], base.T)
    np.testing.assert_array_equal(snap.arrays["s"], base[:, ::2])


def _save_three(tmp_path: Path) -> tuple[CheckpointStore, list[Path]]:
    store = CheckpointStore(tmp_path, keep=5)
    return store, [store.save(*_state(c)) for c in (10, 20, 30)]


@pytest.mark.parametrize(
    "damage",
    [
        "truncate-half",
        "truncate-header",
        "flip-payload-byte",
        "flip-manifest-byte",
        "empty",
        "junk",
    ],
)
def test_damaged_newest_falls_back_to_previous(tmp_path: Path, damage: str, caplog) -> None:
    store, paths = _save_three(tmp_path)
    newest = paths[-1]
    data = bytearray(newest.read_bytes())
    if damage == "truncate-half":
        data = data[: len(data) // 2]
    elif damage == "truncate-header":
        data = data[:40]
    elif damage == "flip-payload-byte":
        data[-100] ^= 0x01
    elif damage == "flip-manifest-byte":
        data[snapshot_store.HEADER_BYTES + 5] ^= 0x20
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a checkpoint at all" * 10)
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="trafficdl_master.snapshot_store"):
        snap = store.latest_good()
    assert snap is not None and snap.path == paths[1]
    _assert_same(snap, *_state(20))
    assert "trying an older one" in caplog.text and newest.name in caplog.text
    # The bad file is set aside, not deleted, and never picked again.
    assert not newest.exists() and newest.with_name(newest.name + ".corrupt").exists()
    assert store.latest_good().path == paths[1]


def test_next_save_after_quarantine_gets_a_fresh_sequence(tmp_path: Path) -> None:
    store, paths = _save_three(tmp_path)
    paths[-1].write_bytes(b"")
    assert store.latest_good().path == paths[1]
    new = store.save(*_state(40))
    assert store.latest_good().path == new and store.latest_good().seq == 4


def test_all_corrupt_gives_none(tmp_path: Path) -> None:
    store, paths = _save_three(tmp_path)
    for p in paths:
        p.write_bytes(p.read_bytes()[:-1])
    assert store.latest_good() is None
    assert store.paths() == []


def _reseal(raw: bytes, manifest: dict) -> bytes:
    """Rebuild a file around an edited manifest with a *valid* header and checksum."""
    _, version, flags, manifest_len, payload_len = snapshot_store._HEAD.unpack_from(raw)
    payload = raw[snapshot_store._align(64 + manifest_len) :]
    text = json.dumps(manifest).encode()
    body = text + bytes(snapshot_store._align(64 + len(text)) - 64 - len(text))
    head = snapshot_store._HEAD.pack(snapshot_store.MAGIC, version, flags, len(text), payload_len)
    return head + hashlib.sha256(head + body + payload).digest() + body + payload


@pytest.mark.parametrize(
    ("field", "value"), [("nbytes", 1), ("offset", 1 << 30), ("dtype", "|O"), ("shape", [-1])]
)
def test_checksummed_file_with_lying_manifest_is_corrupt(tmp_path: Path, field, value) -> None:
    path = tmp_path / "x.tdlckpt"
    snapshot_store.write_checkpoint(path, {"c": np.arange(10.0)}, {"update_counter": 1})
    raw = path.read_bytes()
    manifest_len = snapshot_store._HEAD.unpack_from(raw)[3]
    manifest = json.loads(raw[64 : 64 + manifest_len])
    assert _reseal(raw, manifest) == raw  # the helper rebuilds an untouched file exactly
    manifest["arrays"][0][field] = value
    path.write_bytes(_reseal(raw, manifest))
    with pytest.raises(CorruptCheckpoint, match="bad manifest"):
        snapshot_store.read_checkpoint(path)


def test_leftover_temp_file_is_ignored(tmp_path: Path) -> None:
    store, paths = _save_three(tmp_path)
    # What a writer killed mid-save leaves behind: a partial file under a temp name.
    partial = tmp_path / ".ckpt-tmp-dead1234"
    partial.write_bytes(paths[-1].read_bytes()[:5000])
    snap = store.latest_good()
    assert snap.path == paths[-1]
    assert store.save(*_state(40)).name.startswith("ckpt-00000004-u40")
    # Fresh temp files survive (a writer may still be busy); stale ones are swept.
    CheckpointStore(tmp_path)
    assert partial.exists()
    old = time.time() - snapshot_store.STALE_TMP_SECONDS - 5
    os.utime(partial, (old, old))
    CheckpointStore(tmp_path)
    assert not partial.exists()


CRASHING_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from trafficdl_master.snapshot_store import CheckpointStore
    store = CheckpointStore(sys.argv[1], keep=3)
    centre = np.ones(2_000_000, dtype=np.float32)  # 8 MB: saves take long enough to be hit
    i = 0
    while True:
        i += 1
        centre[:] = i
        store.save({"centre": centre}, {"update_counter": i})
        print(i, flush=True)
    """
)


def _kill_mid_save(directory: Path) -> bool:
    """Run the writer, SIGKILL it while a save is in flight; True when the kill provably
    landed mid-save: the save's temporary file is still there (a finished or cleanly
    failed save renames or removes it; only a killed one leaves it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(4):  # let a few saves complete, then kill during the next one
            assert proc.stdout.readline(), "writer died early"
        deadline = time.monotonic() + 10
        while not list(directory.glob(".ckpt-tmp-*")) and time.monotonic() < deadline:
            pass  # busy-wait: a save is a few ms long
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return bool(list(directory.glob(".ckpt-tmp-*")))


def test_writer_killed_mid_save_never_leaves_a_bad_final_file(tmp_path: Path) -> None:
    landed = False
    for attempt in range(5):  # the save may finish between the check and the kill: retry
        directory = tmp_path / f"try{attempt}"
        directory.mkdir()
        if _kill_mid_save(directory):
            landed = True
            break
    assert landed, "no kill landed inside a save in 5 tries"
    store = CheckpointStore(directory)
    assert list(directory.glob(".ckpt-tmp-*")), "a fresh partial file is never swept"
    finals = store.paths()
    assert 1 <= len(finals) <= 4  # keep=3, plus at most one written before its prune
    for path in finals:  # every file under a final name verifies
        arrays, meta = snapshot_store.read_checkpoint(path)
        assert np.all(arrays["centre"] == meta["update_counter"])
    snap = store.latest_good()
    assert snap is not None and snap.path == finals[0]
    assert snap.update_counter >= 4


def test_retention_keeps_newest_k(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    paths = [store.save(*_state(c, n=10)) for c in range(5)]
    assert store.paths() == [paths[4], paths[3]]
    assert store.latest_good().update_counter == 4


def test_same_counter_saved_twice_orders_by_save(tmp_path: Path) -> None:
    """An epoch-end save and a K-commit save may share a counter; the later one wins."""
    store = CheckpointStore(tmp_path)
    first = store.save({"c": np.zeros(3)}, {"update_counter": 5, "epoch": 1})
    second = store.save({"c": np.ones(3)}, {"update_counter": 5, "epoch": 2})
    assert first != second and store.latest_good().meta["epoch"] == 2


@pytest.mark.parametrize(
    ("arrays", "meta", "message"),
    [
        ({"c": np.zeros(2)}, {}, "needs an 'update_counter'"),
        ({"c": np.zeros(2)}, {"update_counter": -1}, "non-negative int"),
        ({"c": np.zeros(2)}, {"update_counter": 1.5}, "non-negative int"),
        ({"c": [1, 2]}, {"update_counter": 1}, "numpy arrays"),
        ({"c": np.array([object()])}, {"update_counter": 1}, "cannot be checkpointed"),
        ({"c": np.zeros(2)}, {"update_counter": 1, "bad": object()}, "not JSON"),
    ],
)
def test_bad_input_is_refused_and_loses_nothing(tmp_path: Path, arrays, meta, message) -> None:
    store = CheckpointStore(tmp_path)
    good = store.save(*_state(3))
    with pytest.raises(CheckpointError, match=message):
        store.save(arrays, meta)
    assert store.paths() == [good]
    assert [p.name for p in tmp_path.iterdir()] == [good.name]  # no temp file left


def test_disk_error_during_save_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    store = CheckpointStore(tmp_path)
    good = store.save(*_state(3))

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(snapshot_store.os, "fsync", failing_fsync)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint.*Input/output error"):
        store.save(*_state(4))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [good.name]
    assert store.latest_good().path == good


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="cannot create checkpoint directory"):
        CheckpointStore(tmp_path / "file" / "ckpts")


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        CheckpointStore(tmp_path, keep=0)


def test_benchmark_reports_save_and_load_times(tmp_path: Path) -> None:
    result = snapshot_store.benchmark(tmp_path, num_elements=100_000, repeats=2)
    assert result["bytes"] > 400_000
    assert 0 < result["save_s"] < 10 and 0 < result["load_s"] < 10
