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
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bench/lib/side-by-side.sh"
side_by_side_setup trace 10 "$@"
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
