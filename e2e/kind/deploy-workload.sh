#!/usr/bin/env bash
# Create the workload the e2e journeys trace between: two pods on the overlay in
# namespace ko-e2e, on different nodes when the cluster has more than one.
#
# Usage: e2e/kind/deploy-workload.sh
# Environment: KO_E2E_IMAGE (default registry.k8s.io/pause:3.10)
set -euo pipefail

IMAGE=${KO_E2E_IMAGE:-registry.k8s.io/pause:3.10}
NS=ko-e2e
log() { printf '[deploy-workload] %s\n' "$*"; }

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
for name in e2e-a e2e-b; do
  # Anti-affinity spreads the two pods so a trace crosses the geneve tunnel.
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $NS
  labels:
    app: ko-e2e
spec:
  terminationGracePeriodSeconds: 0
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                app: ko-e2e
  containers:
    - name: pause
      image: $IMAGE
YAML
done
kubectl -n "$NS" wait pod -l app=ko-e2e --for=condition=Ready --timeout=5m
kubectl -n "$NS" get pods -o wide
log "workload ready in namespace $NS"
