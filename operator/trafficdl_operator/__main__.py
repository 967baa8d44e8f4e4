"""`python -m trafficdl_operator [flags]`: the same as `trafficdl operator [flags]`."""

from __future__ import annotations

import sys

from trafficdl.cli import main

if __name__ == "__main__":
    sys.exit(main(["operator", *sys.argv[1:]]))
