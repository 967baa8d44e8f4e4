"""Data-parallel training with a parameter server: the run spec, the run directory, and
the local launcher (`launch.run_local`) behind `trafficdl train --workers N`.

The master and worker processes live in their own packages (trafficdl_master,
trafficdl_worker); this package never imports them, it starts them.
"""
