"""The trafficdl master: parameter server of a distributed run (see docs/distributed.md)."""
