"""A local Kubernetes control plane for tests and `make cluster-up`.

control.py starts etcd, kube-apiserver and kube-controller-manager built by
scripts/k8s/build.sh, plus the process kubelet (kubelet/), and stops them;
chart.py installs the trafficdl chart with real Helm. Not part of the
trafficdl package: the tests put scripts/k8s on sys.path.
"""
