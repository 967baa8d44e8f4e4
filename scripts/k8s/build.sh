#!/usr/bin/env bash
# Build (or reuse) the control-plane binaries the k8s test suite and `make cluster-up` run:
# etcd, kube-apiserver, kube-controller-manager, kubectl and helm, from the pinned wrapper
# Go modules next to this script. Binaries land in a cache folder outside the repo, one
# folder per component version, so a rerun (or a second checkout) reuses them:
#   ${TRAFFICDL_K8S_CACHE:-~/.cache/trafficdl/k8s}/kube-v1.36.3/{kube-apiserver,kube-controller-manager,kubectl}
#   .../etcd-v3.6.16/etcd   .../helm-v3.22.0/helm
# Usage: build.sh [--print-paths]   (--print-paths: only print NAME=PATH lines, build nothing;
#        exit 1 if a binary is missing). Build times go to $CACHE/build-times.log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TRAFFICDL_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trafficdl/k8s}"

modver() { awk -v m="$2" '$1 == "require" && $2 == m {print $3} $1 == m && NF == 2 {print $2}' "$here/$1/go.mod" | head -1; }
kube_v="$(modver kube k8s.io/kubernetes)"
etcd_v="$(modver etcd go.etcd.io/etcd/server/v3)"
helm_v="$(modver helm helm.sh/helm/v3)"
kube_dir="$cache/kube-$kube_v"; etcd_dir="$cache/etcd-$etcd_v"; helm_dir="$cache/helm-$helm_v"

paths() {
  echo "ETCD=$etcd_dir/etcd"
  echo "KUBE_APISERVER=$kube_dir/kube-apiserver"
  echo "KUBE_CONTROLLER_MANAGER=$kube_dir/kube-controller-manager"
  echo "KUBECTL=$kube_dir/kubectl"
  echo "HELM=$helm_dir/helm"
  echo "KUBE_VERSION=$kube_v"
}
if [[ "${1:-}" == "--print-paths" ]]; then
  paths
  while IFS='=' read -r _ p; do [[ "$p" == /* && ! -x "$p" ]] && exit 1; done < <(paths)
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go not found (needs Go >= 1.26 and a module proxy)" >&2; exit 2; }
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9   # one build at a time per cache (parallel test sessions, make cluster-up)
# -mod=readonly: the committed go.mod/go.sum are complete; a build never edits them.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"

# build MODULE_DIR OUT PKG LDFLAGS
build() {
  local mod="$1" out="$2" pkg="$3" ld="$4" t0
  if [[ -x "$out" ]]; then echo "build.sh: reuse $out" >&2; return 0; fi
  mkdir -p "$(dirname "$out")"
  echo "build.sh: building $(basename "$out") from $pkg (this takes minutes the first time)" >&2
  t0=$(date +%s)
  (cd "$here/$mod" && go build -o "$out.tmp" -ldflags "-s -w $ld" "$pkg")
  mv "$out.tmp" "$out"
  echo "$(date -u +%FT%TZ) $(basename "$out") $((  $(date +%s) - t0 ))s" >> "$cache/build-times.log"
}

minor="${kube_v#v1.}"; minor="${minor%%.*}"
kv="k8s.io/component-base/version"
kube_ld="-X $kv.gitVersion=$kube_v -X $kv.gitMajor=1 -X $kv.gitMinor=$minor -X $kv.gitTreeState=clean -X $kv.buildDate=1970-01-01T00:00:00Z"
kube_ld="$kube_ld -X k8s.io/client-go/pkg/version.gitVersion=$kube_v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

build etcd "$etcd_dir/etcd" go.etcd.io/etcd/server/v3 ""
build kube "$kube_dir/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$kube_ld"
build kube "$kube_dir/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ld"
build helm "$helm_dir/helm" helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$helm_v"
build kube "$kube_dir/kubectl" k8s.io/kubernetes/cmd/kubectl "$kube_ld"
paths
