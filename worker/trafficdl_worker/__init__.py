"""A trafficdl worker: trains one partition and exchanges with the master (docs/distributed.md)."""
