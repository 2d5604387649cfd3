#!/usr/bin/env bash
# Create the workload the e2e journeys trace between, in namespace ko-e2e:
#   e2e-a, e2e-b   two overlay pods on different nodes (when there are several);
#   e2e-db         a pod behind NetworkPolicy protect-e2e-db, which admits only pods
#                  labelled access=db (e2e-b), so e2e-a -> e2e-db must be dropped.
#
# Usage: e2e/kind/deploy-workload.sh
# Environment: KO_E2E_IMAGE (default registry.k8s.io/pause:3.10)
set -euo pipefail

IMAGE=${KO_E2E_IMAGE:-registry.k8s.io/pause:3.10}
NS=ko-e2e
log() { printf '[deploy-workload] %s\n' "$*"; }

pod() { # name role extra-label-line
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $NS
  labels:
    app: ko-e2e
    role: $2
$3
spec:
  terminationGracePeriodSeconds: 0
  affinity:
    # spread the pods so a trace between them crosses the geneve tunnel
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
}

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
pod e2e-a a ''
pod e2e-b b '    access: db'
pod e2e-db db ''
kubectl apply -f - <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: protect-e2e-db
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              access: db
YAML
kubectl -n "$NS" wait pod -l app=ko-e2e --for=condition=Ready --timeout=5m
kubectl -n "$NS" get pods -o wide --show-labels
log "workload ready in namespace $NS"
