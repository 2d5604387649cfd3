#!/usr/bin/env bash
# Create a kind cluster shaped like Kube-OVN's own CI cluster, ready for
# e2e/kind/install-kube-ovn.sh: no default CNI, pod CIDR 10.16.0.0/16, service CIDR
# 10.96.0.0/12, one control-plane labelled kube-ovn/role=master, and 1..2 workers.
#
# Usage: e2e/kind/create-cluster.sh [--print-config]
#   --print-config   print the kind config and exit (nothing is created)
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default kube-ovn)
#   KIND_WORKERS        number of workers, 1 or 2 (default 2)
#   KIND_NODE_IMAGE     node image (default: the kind release's own default)
#   KUBECONFIG          where kind writes the credentials (default ~/.kube/config)
set -euo pipefail

NAME=${KIND_CLUSTER_NAME:-kube-ovn}
WORKERS=${KIND_WORKERS:-2}
log() { printf '[create-cluster] %s\n' "$*"; }
die() { printf '[create-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $WORKERS == 1 || $WORKERS == 2 ]] || die "KIND_WORKERS must be 1 or 2, not $WORKERS"
[[ $NAME =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "KIND_CLUSTER_NAME $NAME is not a valid cluster name"

render_config() {
  local image_line=''
  [[ -n ${KIND_NODE_IMAGE:-} ]] && image_line="    image: ${KIND_NODE_IMAGE}"
  cat <<YAML
---
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
  kubeProxyMode: iptables
  ipFamily: ipv4
  podSubnet: 10.16.0.0/16
  serviceSubnet: 10.96.0.0/12
nodes:
  - role: control-plane
${image_line:+$image_line
}    labels:
      kube-ovn/role: master
      type: kind
YAML
  local i
  for ((i = 0; i < WORKERS; i++)); do
    printf '  - role: worker\n'
    [[ -n $image_line ]] && printf '%s\n' "$image_line"
    printf '    labels:\n      type: kind\n'
  done
}

if [[ ${1:-} == --print-config ]]; then
  render_config
  exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument $1 (only --print-config)"

for tool in kind kubectl docker; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH (kind needs docker; see https://kind.sigs.k8s.io)"
done

if kind get clusters 2>/dev/null | grep -qx "$NAME"; then
  die "a kind cluster named $NAME already exists: delete it (kind delete cluster --name $NAME) or set KIND_CLUSTER_NAME"
fi

config=$(mktemp)
trap 'rm -f "$config"' EXIT
render_config >"$config"
log "creating cluster $NAME with $WORKERS worker(s)"
# Nodes stay NotReady until a CNI is installed, so do not wait for readiness here.
kind create cluster --name "$NAME" --config "$config" --wait 0s

# Kube-OVN's CI runs workloads on the control plane too.
kubectl taint nodes -l node-role.kubernetes.io/control-plane \
  node-role.kubernetes.io/control-plane:NoSchedule- 2>/dev/null || true
kubectl get nodes -o wide
log "cluster $NAME created (context kind-$NAME); next: e2e/kind/install-kube-ovn.sh"
