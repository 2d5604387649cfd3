#!/usr/bin/env bash
# Benchmark (not a test): `kubectl ko nbctl show` end to end against a sandbox,
# with the number of API round trips, compared with what the bash plugin does
# for the same command (one `kubectl get` per leader lookup it makes, then
# `kubectl exec`). Run as root from the repo root:
#   bench/nbctl-show.sh [iterations]      (default 50)
# Uses sandbox `bench` (brought up if needed, left running; `e2e/sandbox down --name bench`).
# BENCH_BIN=<dir> uses prebuilt kubectl-ko, ko-sandbox and ko-apiserver from <dir>
# instead of building release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
if [[ -z "${BENCH_BIN:-}" ]]; then
  cargo build -q --release -p kubectl-ko -p ko-sandbox -p ko-apiserver
  BENCH_BIN=$PWD/target/release
fi
KO_SANDBOX_BIN=$BENCH_BIN
export KO_SANDBOX_BIN
kc=$(e2e/sandbox up --name bench | tail -1 | cut -d= -f2)
ko=$BENCH_BIN/kubectl-ko
log=/run/kubectl-ko-sandbox/bench/api/apiserver.log
ns=kube-system

# Requests made by one run, from the API server's access log. The server also
# logs its own leader probes, which are not HTTP requests; only request lines count.
count_requests() {
  local before after
  before=$(grep -cE 'ko_apiserver::api: [A-Z]+ /' "$log" || true)
  "$@" >/dev/null
  after=$(grep -cE 'ko_apiserver::api: [A-Z]+ /' "$log" || true)
  echo $((after - before))
}

upstream_like() {
  # getOvnCentralPod: nb, sb and northd leader lookups plus the cni image lookup, then exec.
  for l in ovn-nb-leader ovn-sb-leader ovn-northd-leader; do
    kubectl --kubeconfig "$kc" get pod -n $ns -l "$l=true" >/dev/null
  done
  kubectl --kubeconfig "$kc" -n $ns get pods -l app=kube-ovn-cni -o jsonpath='{.items[0].spec.containers[0].image}' >/dev/null
  pod=$(kubectl --kubeconfig "$kc" get pod -n $ns -l ovn-nb-leader=true -o jsonpath='{.items[0].metadata.name}')
  kubectl --kubeconfig "$kc" exec "$pod" -n $ns -c ovn-central -- ovn-nbctl show
}

time_runs() {
  local i t0 t1
  for ((i = 0; i < n; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | sort -n | awk '{a[NR]=$1} END {printf "min %.1f ms  median %.1f ms  p90 %.1f ms  (n=%d)\n", a[1]/1000, a[int((NR+1)/2)]/1000, a[int(NR*0.9)]/1000, NR}'
}

echo "$($ko version) against sandbox bench, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kubectl ko nbctl show:    $(count_requests $ko --kubeconfig "$kc" nbctl show) API round trips; $(time_runs $ko --kubeconfig "$kc" nbctl show)"
echo "bash-plugin equivalent:   $(count_requests upstream_like) API round trips; $(time_runs upstream_like)"
