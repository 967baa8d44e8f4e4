"""train → load_classifier → predict / evaluate, cross-checked against each other."""

from __future__ import annotations

import numpy as np
import pytest

import trafficdl
from trafficdl.errors import TrafficdlError


def test_train_result_and_classifier(lstm_run, tiny):
    assert lstm_run.checkpoint.is_file() and (lstm_run.out / "run.json").is_file()
    assert 0.0 <= lstm_run.metrics["macro_f1"] <= 1.0 and lstm_run.run["mode"] == "centralized"
    clf = lstm_run.classifier()
    assert clf.label_names == ["facebook", "instagram", "messenger"]
    assert clf.input_kind == "packets" and clf.model_name == "lstm"


def test_predict_on_dataset_matches_probabilities_and_evaluate(lstm_run, tiny):
    ds = trafficdl.open_dataset(tiny[1])
    clf = trafficdl.load_classifier(lstm_run.checkpoint)
    pred = clf.predict(ds)
    assert len(pred) == len(ds) and {"label", "app", "confidence", "best"} <= set(pred.columns)
    probs = clf.predict_proba(packets=np.asarray(ds.packets))  # n_packets from direction
    assert np.array_equal(pred["best"].to_numpy(), np.asarray(clf.label_names)[probs.argmax(1)])
    assert np.allclose(pred["confidence"].to_numpy(), probs.max(1))
    # evaluate() of the checkpoint on its own dataset scores the held-out rows
    figures = trafficdl.evaluate(ds, checkpoint=lstm_run.checkpoint)
    _, test_rows = ds.split(test_fraction=0.25, seed=0)
    held = pred.iloc[test_rows]
    assert figures["rows"] == "test" and figures["n"] == len(test_rows)
    assert figures["accuracy"] == pytest.approx(float((held["app"] == held["label"]).mean()))
    rejected = clf.predict(ds, reject_below=0.999999)
    assert (rejected["app"] == "unknown").sum() >= (pred["confidence"] < 0.999999).sum() > 0


def test_predict_on_captures_agrees_with_dataset_rows(lstm_run, tiny):
    captures, path = tiny
    clf = trafficdl.load_classifier(lstm_run.checkpoint)
    on_files = clf.predict(captures)
    on_rows = clf.predict(path)  # a dataset folder is read as a dataset
    assert len(on_files) == len(on_rows) == 48
    key = ["src", "sport", "dst", "dport"]
    merged = on_files.merge(on_rows, on=key, suffixes=("_f", "_d"))
    assert len(merged) == 48 and (merged["app_f"] == merged["app_d"]).all()


def test_bad_settings_are_one_line_errors(tiny, tmp_path):
    with pytest.raises(TrafficdlError, match="unknown setting"):
        trafficdl.train(tiny[1], tmp_path / "r", model="lstm", epochz=1)
    with pytest.raises(TrafficdlError, match="unknown setting"):
        trafficdl.extract(tiny[0], tmp_path / "d", payload=3)
    with pytest.raises(TrafficdlError, match="unknown model"):
        trafficdl.train(tiny[1], tmp_path / "r", model="gru")
