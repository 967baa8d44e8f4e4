"""trafficdl.open_dataset: the objects DataFrame and the PyTorch Datasets against the arrays."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import trafficdl
from trafficdl.dataset import ENCRYPTION_KINDS, OBJECT_DTYPE
from trafficdl.errors import TrafficdlError
from trafficdl.models.adapters import InputAdapter


def test_import_stays_light_and_api_is_reachable():
    code = (
        "import sys, trafficdl; heavy = [m for m in ('torch', 'pandas') if m in sys.modules]; "
        "f = trafficdl.open_dataset; print(heavy, f.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] trafficdl.api.data"
    with pytest.raises(AttributeError):
        trafficdl.no_such_thing  # noqa: B018


def test_objects_frame_is_one_row_per_object(tiny):
    captures, path = tiny
    ds = trafficdl.open_dataset(path)
    df = ds.objects
    assert len(df) == len(ds) == 48
    for name in OBJECT_DTYPE.names:  # every stored field, under its own name
        assert name in df.columns
        assert np.array_equal(df[name].to_numpy(), np.asarray(ds.raw.objects[name]))
    assert df.groupby("label").size().to_dict() == {"facebook": 16, "instagram": 16,
                                                    "messenger": 16}  # fmt: skip
    assert (df["label"] == np.asarray(ds.label_names)[ds.labels]).all()
    # the capture path is the file the object came from, in its app's folder
    pairs = zip(df["capture_path"], df["label"], strict=True)
    assert all(p.startswith(str(captures / lab)) for p, lab in pairs)
    assert set(df["encryption"]) <= set(ENCRYPTION_KINDS) and "tls" in set(df["encryption"])
    assert (df["n_packets"] > 0).all() and (df["sport"] > 0).all()


def test_to_torch_payload_is_scaled_bytes(tiny):
    ds = trafficdl.open_dataset(tiny[1])
    rows = np.array([5, 1, 30])
    tds = ds.to_torch(input="payload", indices=rows)
    assert isinstance(tds, torch.utils.data.Dataset) and len(tds) == 3
    x, y = tds[0]
    assert x.shape == (784,) and x.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy(ds.payload[1].astype(np.float32) / 255))  # sorted rows
    assert int(y) == int(ds.labels[1]) and tds.indices.tolist() == [1, 5, 30]


def test_to_torch_packets_standardizes_with_training_statistics(tiny):
    ds = trafficdl.open_dataset(tiny[1])
    train_rows, test_rows = ds.split(test_fraction=0.25, seed=0)
    train = ds.to_torch(input="packets", indices=train_rows)
    n_pk = np.asarray(ds.raw.objects["n_packets"])
    fitted = InputAdapter("packets", 20).fit(ds.packets[train_rows], n_pk[train_rows])
    assert train.adapter == fitted
    test = ds.to_torch(input="packets", indices=test_rows, adapter=train.adapter)
    want = fitted.prepare(None, ds.packets[test_rows], n_pk[test_rows])
    assert torch.equal(test.x, want)
    real = train.x[:, :, 1] != 0
    assert abs(float(train.x[real].mean())) < 0.5  # standardized, padding left at zero
    with pytest.raises(TrafficdlError, match="adapter is for 'packets'"):
        ds.to_torch(input="payload", adapter=train.adapter)
    with pytest.raises(TrafficdlError, match="input must be"):
        ds.to_torch(input="bytes")  # type: ignore[arg-type]


def test_open_dataset_rejects_a_non_dataset(tmp_path):
    with pytest.raises(TrafficdlError, match="not a trafficdl dataset"):
        trafficdl.open_dataset(tmp_path)
