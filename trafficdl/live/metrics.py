"""Prometheus metrics of `trafficdl classify --live` (one registry per classifier).

Names follow trafficdl_<component>_<noun>_<unit>; the only labels are the app
(bounded by the model's label names plus "unknown") and the decision reason
(packets, bytes, end, evicted), so cardinality is fixed by the model.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LiveMetrics:
    """The live classifier's counters, in their own registry (several may run per process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.flows = Counter(
            "trafficdl_live_flows_classified_total",
            "Biflows classified, by predicted app and by what triggered the decision "
            "(packets/bytes: enough input; end: the flow ended first; evicted: table full).",
            ["app", "reason"], registry=r,
        )  # fmt: skip
        self.packets = Counter("trafficdl_live_packets_total",
                               "Frames read from the interface.", registry=r)  # fmt: skip
        self.evicted = Counter("trafficdl_live_flows_evicted_total",
                               "Flows ended early because the flow table was full.",
                               registry=r)  # fmt: skip
        self.open = Gauge("trafficdl_live_flows_open", "Flows in the flow table.", registry=r)
        self.undecided = Gauge("trafficdl_live_flows_undecided",
                               "Open flows still waiting for enough input.",
                               registry=r)  # fmt: skip
        self.latency = Histogram(
            "trafficdl_live_decision_latency_seconds",
            "From the packet that completed a flow's input (or its last packet) to its decision.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )  # fmt: skip

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on host:port (0: any free port); returns the port."""
        from prometheus_client import start_http_server

        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
