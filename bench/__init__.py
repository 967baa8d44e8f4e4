"""Benchmarks: `make bench` (python -m bench) runs every bench_*.py and prints one table.

Benchmarks are not tests: they measure, side by side in one run, our figure
and a peer's (tshark, NFStream, a bare PyTorch loop, a raw socket), and report
the ratio. Each module exposes `run(quick: bool) -> list[Row]`.
"""
