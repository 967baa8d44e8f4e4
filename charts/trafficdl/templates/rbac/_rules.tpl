{{/*
The operator's permissions: exactly the API calls it makes, no more
(tests/unit/chart/test_chart_rbac.py derives them from the operator's code
and compares). "framework" rules are what kopf itself does to watch jobs,
keep its bookkeeping on them, write the handlers' status patches and post
events; "application" rules are the trafficdl handlers' own calls
(trafficdl_operator/kube.py) on a job's children. The same list serves the
namespaced Roles and the ClusterRole, so the two scopes cannot drift apart.
*/}}
{{- define "trafficdl.rbac.rules" -}}
# framework: kopf lists and watches jobs and patches its progress annotations on them.
- apiGroups: ["trafficdl.io"]
  resources: ["traffictrainingjobs"]
  verbs: ["list", "watch", "patch"]
# framework: kopf writes the handlers' status patches through the status subresource.
- apiGroups: ["trafficdl.io"]
  resources: ["traffictrainingjobs/status"]
  verbs: ["patch"]
# (OwnerReferencesPermissionEnforcement allows blockOwnerDeletion only with this.)
# framework: kopf.adopt() sets blockOwnerDeletion on the children it owns.
- apiGroups: ["trafficdl.io"]
  resources: ["traffictrainingjobs/finalizers"]
  verbs: ["update"]
# framework: kopf.event() posts core/v1 Events on the job.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# application: a finished job is deleted after its TTL (children follow by ownerReferences).
- apiGroups: ["trafficdl.io"]
  resources: ["traffictrainingjobs"]
  verbs: ["delete"]
# application: master and worker pods are listed, created, and deleted to restart or clean up.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "create", "delete"]
# application: the master's Service, which workers dial.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create"]
# The TLS Secret is patched when its certificates are renewed; a user's CA Secret
# (spec.security.caSecretName) is read to sign the job's certificates.
# application: the per-run token and TLS Secrets, created once and read back after a restart.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "get", "patch"]
{{- end -}}
