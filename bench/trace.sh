#!/usr/bin/env bash
# Benchmark: `kubectl ko trace` (release build) against Kube-OVN's own bash
# kubectl-ko doing the same trace, in the same run, alternating, on the sandbox.
#
# The bash script is not part of this repository: fetch it yourself
# (kube-ovn's dist/images/kubectl-ko) and point KO_PEER_SCRIPT at it.
# Wall time per trace (median/min/p90 of --runs) and API requests per trace,
# counted from the emulator's request log (discovery included), plus the load.
#
# Usage (root): KO_PEER_SCRIPT=/work/peer/kubectl-ko bench/trace.sh [--name trace] [--runs 10]
# KO_BIN=<kubectl-ko> to use another binary than target/release/kubectl-ko.
set -euo pipefail
name=trace
runs=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) name=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--name N] [--runs N]" >&2; exit 2 ;;
  esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bench/lib/side-by-side.sh"
peer=${KO_PEER_SCRIPT:?set KO_PEER_SCRIPT to the bash kubectl-ko of Kube-OVN, dist/images/kubectl-ko}
ko=${KO_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/kubectl-ko}
[[ -x $ko ]] || { echo "build the release binary first (cargo build --release -p kubectl-ko)" >&2; exit 1; }

kc=$("$repo/e2e/sandbox" up --name "$name" | sed -n 's/^KUBECONFIG=//p' | tail -1)
log=$(dirname "$kc")/apiserver.log
export KUBECONFIG=$kc
unset KUBE_OVN_NS NO_COLOR
src=default/client-1
dst=$(kubectl get pod web-2 -n default -o jsonpath='{.status.podIP}')
port=8080

ours() { "$ko" trace "$src" "$dst" tcp "$port"; }
bash_script() { bash "$peer" trace "$src" "$dst" tcp "$port"; }

# both must succeed, or the comparison means nothing
ours >/dev/null || { echo "kubectl-ko trace failed" >&2; exit 1; }
bash_script >/dev/null || { echo "the bash script's trace failed" >&2; exit 1; }

echo "sandbox $name, trace $src -> $dst tcp/$port (cross-node), $runs runs each, alternating"
echo "$(nproc) CPUs, load before $(load); kubectl-ko: $ko; bash: $peer"
run_pair "$runs" "kubectl-ko trace" ours "bash kubectl-ko trace" bash_script
echo "load after $(load)"
