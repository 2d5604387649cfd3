#!/usr/bin/env bash
# Install a pinned Kube-OVN release into the current kubectl context (a cluster made
# by e2e/kind/create-cluster.sh), using the release's own install.sh, then wait until
# every Kube-OVN component is ready.
#
# Usage: e2e/kind/install-kube-ovn.sh
# Environment:
#   KUBE_OVN_VERSION   release tag to install (default below; CI pins it too)
#   KUBE_OVN_INSTALL   path of an install.sh already downloaded (skips the download)
set -euo pipefail

# Newest patch of a maintained release line when this was written; its upstream CI
# ran kind v0.31 with Kubernetes 1.35, which the workflow here uses as well.
KUBE_OVN_VERSION=${KUBE_OVN_VERSION:-v1.15.24}
log() { printf '[install-kube-ovn] %s\n' "$*"; }
die() { printf '[install-kube-ovn] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $KUBE_OVN_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "KUBE_OVN_VERSION $KUBE_OVN_VERSION is not a release tag like v1.15.24"
command -v kubectl >/dev/null || die "kubectl not found on PATH"
kubectl get nodes >/dev/null || die "cannot reach the cluster of the current kubectl context (create it with e2e/kind/create-cluster.sh)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
script=${KUBE_OVN_INSTALL:-}
if [[ -z $script ]]; then
  command -v curl >/dev/null || die "curl not found (or download install.sh yourself and set KUBE_OVN_INSTALL)"
  url="https://raw.githubusercontent.com/kubeovn/kube-ovn/${KUBE_OVN_VERSION}/dist/images/install.sh"
  log "downloading $url"
  curl -fsSL --retry 5 --retry-delay 5 -o "$work/install.sh" "$url" || die "could not download $url"
  script="$work/install.sh"
fi
[[ -f $script ]] || die "install script $script not found"

# The tag's install.sh names its own version; refuse a mismatch rather than
# silently testing another release.
script_version=$(sed -n 's/^VERSION="\(v[^"]*\)".*/\1/p' "$script" | head -1)
[[ $script_version == "$KUBE_OVN_VERSION" ]] || die "install.sh is for ${script_version:-an unknown version}, not $KUBE_OVN_VERSION"

log "installing Kube-OVN $KUBE_OVN_VERSION (IPv4, geneve overlay)"
# install.sh labels the control-plane nodes kube-ovn/role=master, deploys OVN and
# Kube-OVN, then runs the upstream `kubectl ko diagnose all` as its last step.
IPV6=false DUAL_STACK=false bash "$script"

log "waiting for every Kube-OVN component"
for workload in deployment/ovn-central deployment/kube-ovn-controller \
  daemonset/ovs-ovn daemonset/kube-ovn-cni daemonset/kube-ovn-pinger; do
  kubectl -n kube-system rollout status "$workload" --timeout=10m
done
kubectl wait nodes --all --for=condition=Ready --timeout=5m
kubectl -n kube-system get pods -o wide
log "Kube-OVN $KUBE_OVN_VERSION is ready"
