"""The trafficdl Kubernetes operator: TrafficTrainingJob -> a master and N workers.

Shaped like Kubeflow's training operator but with kopf: the contract (names,
labels, env vars, conditions) lives in `contract`, pure spec -> dict builders
in `builders`, pure status/reconcile decisions in `status` and `reconcile`,
and `main` holds only thin kopf handlers that execute those decisions. This
package never imports torch: the operator image does not ship it.
"""
