#!/usr/bin/env bash
# Builds the test world's binaries (kube-apiserver, kube-controller-manager, kubectl, kubelet,
# kube-scheduler, etcd, helm) from
# their pinned Go modules under hack/, into a cache outside the repository keyed by version.
# A binary already in the cache is not rebuilt. Prints the path of the bin directory last.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${BOTSECRET_CACHE:-$HOME/.cache/botsecret}

pinned() { # module dir, module path -> version required by go.mod
  awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == "require") ? $3 : $2; exit }' "$1/go.mod"
}

k8s_version=$(pinned "$here/k8s" k8s.io/kubernetes)
etcd_version=$(pinned "$here/etcd" go.etcd.io/etcd/server/v3)
helm_version=$(pinned "$here/helm" helm.sh/helm/v3)
bin="$cache/bin"
mkdir -p "$bin"
# Several test runs (or engineers) may share the cache: one build at a time, the others wait.
exec 9>"$cache/.build.lock"
flock 9

build() { # module dir, package, output name, ldflags
  local dir=$1 pkg=$2 out=$3 ldflags=$4
  if [[ -x "$bin/$out" ]]; then
    echo "build-binaries: $out cached" >&2
    return
  fi
  local start=$SECONDS
  echo "build-binaries: building $out (go build; minutes on a cold cache)" >&2
  (cd "$dir" && go build -buildvcs=false -trimpath -ldflags "-s -w $ldflags" -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
  echo "build-binaries: built $out in $((SECONDS - start)) s" >&2
}

minor=${k8s_version#v1.}; minor=${minor%%.*}
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

total=$SECONDS
build "$here/etcd" go.etcd.io/etcd/server/v3 "etcd-$etcd_version" ""
build "$here/k8s" k8s.io/kubernetes/cmd/kube-apiserver "kube-apiserver-$k8s_version" "$k8s_ldflags"
build "$here/k8s" k8s.io/kubernetes/cmd/kube-controller-manager "kube-controller-manager-$k8s_version" "$k8s_ldflags"
build "$here/k8s" k8s.io/kubernetes/cmd/kubectl "kubectl-$k8s_version" "$k8s_ldflags"
# The node that runs pods (tests/harness/node.py): built from the same pinned module.
build "$here/k8s" k8s.io/kubernetes/cmd/kubelet "kubelet-$k8s_version" "$k8s_ldflags"
build "$here/k8s" k8s.io/kubernetes/cmd/kube-scheduler "kube-scheduler-$k8s_version" "$k8s_ldflags"
build "$here/helm" helm.sh/helm/v3/cmd/helm "helm-$helm_version" \
  "-X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
echo "build-binaries: control plane and helm ready in $((SECONDS - total)) s" >&2

# Stable names for the harness, pointing at the pinned versions.
ln -sf "etcd-$etcd_version" "$bin/etcd"
ln -sf "kube-apiserver-$k8s_version" "$bin/kube-apiserver"
ln -sf "kube-controller-manager-$k8s_version" "$bin/kube-controller-manager"
ln -sf "kubectl-$k8s_version" "$bin/kubectl"
ln -sf "kubelet-$k8s_version" "$bin/kubelet"
ln -sf "kube-scheduler-$k8s_version" "$bin/kube-scheduler"
ln -sf "helm-$helm_version" "$bin/helm"
echo "$bin"
