"""Suite-wide test settings: keep torch to one thread so parallel processes share 2 cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
