#!/usr/bin/env bash
# Regenerate hack/k8s/go.mod for another Kubernetes release: require k8s.io/kubernetes at that
# release and replace every staging module it requires at v0.0.0 with the published v0.X.Y.
# Usage: hack/k8s/gen-gomod.sh v1.36.3   (then set K8S_RELEASE in hack/dscache_testbed/build.py)
set -euo pipefail
rel="${1:?usage: $0 vMAJOR.MINOR.PATCH}"
staging="v0.${rel#v1.}"
cd "$(dirname "$0")"
upstream=$(go mod download -json "k8s.io/kubernetes@$rel" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
{
  echo "// Wrapper module: builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and etcd"
  echo "// from the published k8s.io/kubernetes $rel module. Regenerate for another release with hack/k8s/gen-gomod.sh."
  echo "module dscache.dev/testbed/k8s"
  echo
  echo "go $(sed -n 's/^go //p' "$upstream")"
  echo
  echo "require k8s.io/kubernetes $rel"
  echo
  echo "replace ("
  grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$upstream" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
rm -f go.sum
go mod tidy
echo "hack/k8s/go.mod now pins k8s.io/kubernetes $rel (staging modules at $staging)"
