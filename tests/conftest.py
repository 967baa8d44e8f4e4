"""Suite-wide test settings: one torch thread per process, and the honest-count plugin.

torch keeps to one thread so parallel processes share the 2 cores;
support/plugin.py fails the run when a test file is not collected and turns
skips for tools listed in TRAFFICDL_REQUIRE into failures.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

pytest_plugins = ["pytester", "support.plugin"]
