"""The process kubelet: runs pods as local processes (see __main__.py)."""
