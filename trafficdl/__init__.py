"""trafficdl: distributed deep-learning training for encrypted mobile-app traffic.

The core library (capture parsing, features, datasets, models, update rules,
evaluation, cost). It imports nothing from the master, worker or operator
packages, and importing it does not import torch: the operator image uses the
RPC stubs and the cost/status helpers without PyTorch.
"""

__version__ = "0.1.0"
