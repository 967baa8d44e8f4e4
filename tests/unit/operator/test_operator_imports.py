"""Import boundary: the operator image has no torch, so the operator must never import it."""

from __future__ import annotations

import subprocess
import sys


def test_operator_and_the_cli_that_runs_it_do_not_import_torch():
    code = ("import sys, trafficdl_operator.main, trafficdl_operator.__main__, trafficdl.cli; "
            "bad = sorted(m for m in ('torch', 'numpy', 'scapy') if m in sys.modules); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == ""
