"""The live engine on recorded frames (no socket): early decisions equal offline predictions.

Frames of the synthetic captures go through LiveClassifier one at a time with
their capture timestamps, so the LSTM's input (first 20 packets, inter-arrival
times included) is exactly what `extract` computes; every biflow must then be
decided once, at its 20th packet or at its end, with the app `classify` gives
the whole capture.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import trafficdl
from trafficdl.capture.reader import open_records
from trafficdl.errors import TrafficdlError
from trafficdl.live.engine import LiveClassifier, LiveSettings
from trafficdl.training.checkpoint import load_checkpoint


def _frames(captures: Path) -> list[tuple[float, int, bytes, int]]:
    streams = []
    for path in sorted(captures.rglob("*.pcap")):
        with open(path, "rb") as f:
            streams.append(list(open_records(f, str(path))))
    return list(heapq.merge(*streams, key=lambda r: r[0]))


def test_decisions_are_early_and_equal_offline(lstm_run, tiny):
    captures, _ = tiny
    clf = LiveClassifier(load_checkpoint(lstm_run.checkpoint), LiveSettings(decide_every=0.0))
    decisions = []
    for frame in _frames(captures):
        decisions += clf.process([frame], now=frame[0])
    decisions += clf.flush()
    offline = trafficdl.load_classifier(lstm_run.checkpoint).predict(captures)
    want = {(r.src, r.sport, r.dst, r.dport): (r.app, r.packets) for r in offline.itertuples()}
    got = {(d.src, d.sport, d.dst, d.dport): d for d in decisions}
    assert len(decisions) == len(got) == len(want) == 48  # each biflow decided exactly once
    for key, d in got.items():
        app, total = want[key]
        assert d.app == app, key
        if total >= 20:  # decided at its 20th packet, not at its end
            assert (d.reason, d.packets) == ("packets", 20)
        else:
            assert (d.reason, d.packets) == ("end", total)
    assert sum(d.reason == "packets" for d in decisions) > 10
    text = generate_latest(clf.metrics.registry).decode()
    assert f"trafficdl_live_packets_total {float(clf.packets)}" in text
    per_app = sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith("trafficdl_live_flows_classified_total{")
    )  # fmt: skip
    assert per_app == 48


def test_flow_table_stays_bounded(lstm_run, tiny):
    captures, _ = tiny
    settings = LiveSettings(max_flows=4, decide_every=0.0)
    clf = LiveClassifier(load_checkpoint(lstm_run.checkpoint), settings)
    decisions = []
    for frame in _frames(captures):
        decisions += clf.process([frame], now=frame[0])
        assert clf.table.open_flows <= 4
    decisions += clf.flush()
    assert clf.table.evicted > 0 and any(d.reason == "evicted" for d in decisions)
    assert len(decisions) >= 48  # an evicted flow's later packets make a new object


def test_burst_models_cannot_run_live(lstm_run):
    ckpt = load_checkpoint(lstm_run.checkpoint)
    ckpt.extract_config = {**(ckpt.extract_config or {}), "segmentation": "burst"}
    with pytest.raises(TrafficdlError, match="biflow or flow"):
        LiveClassifier(ckpt)


def test_rendered_rows():
    from trafficdl.live.engine import Decision
    from trafficdl.live.run import HEADER, render

    d = Decision(time=1_700_000_000.25, proto=6, src="10.0.0.2", sport=40000, dst="192.0.2.9",
                 dport=443, packets=20, app="spotify", confidence=0.875, best="spotify",
                 reason="packets", latency_ms=3.5)  # fmt: skip
    row = render(d, as_json=False)
    assert row.split() == [row.split()[0], "tcp", "10.0.0.2:40000", "192.0.2.9:443", "20",
                           "spotify", "0.875", "packets", "3.5"]  # fmt: skip
    assert row.split()[0].endswith(".250") and len(HEADER.split()) == 9
    assert render(d, as_json=True).startswith('{"time": 1700000000.25, "proto": 6')
