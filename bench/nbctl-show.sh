#!/usr/bin/env bash
# Benchmark: `kubectl ko nbctl show` (release build) against Kube-OVN's own bash
# kubectl-ko (`KO_PEER_SCRIPT`, fetched by you, never committed), in the same run,
# alternating, with API requests per run and the machine's load. Run as root:
#   KO_PEER_SCRIPT=/work/peer/kubectl-ko bench/nbctl-show.sh [--name bench] [--runs 30]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/bench/lib/side-by-side.sh"
side_by_side_setup bench 30 "$@"

ours() { "$ko" nbctl show; }
bash_script() { bash "$peer" nbctl show; }
ours >/dev/null || { echo "kubectl-ko nbctl show failed" >&2; exit 1; }
bash_script >/dev/null || { echo "the bash script's nbctl show failed" >&2; exit 1; }

echo "sandbox $name, nbctl show, $runs runs each, alternating"
echo "$(nproc) CPUs, load before $(load); kubectl-ko: $ko; bash: $peer"
run_pair "$runs" "kubectl-ko nbctl show" ours "bash kubectl-ko nbctl show" bash_script
echo "load after $(load)"
