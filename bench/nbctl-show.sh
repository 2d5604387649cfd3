#!/usr/bin/env bash
# Benchmark: `kubectl ko nbctl show` (release build) against Kube-OVN's own bash
# kubectl-ko (`KO_PEER_SCRIPT`, fetched by you, never committed), in the same run,
# alternating, with API requests per run and the machine's load. Run as root:
#   KO_PEER_SCRIPT=/work/peer/kubectl-ko bench/nbctl-show.sh [--name bench] [--runs 30]
set -euo pipefail
name=bench
runs=30
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

ours() { "$ko" nbctl show; }
bash_script() { bash "$peer" nbctl show; }
ours >/dev/null || { echo "kubectl-ko nbctl show failed" >&2; exit 1; }
bash_script >/dev/null || { echo "the bash script's nbctl show failed" >&2; exit 1; }

echo "sandbox $name, nbctl show, $runs runs each, alternating"
echo "$(nproc) CPUs, load before $(load); kubectl-ko: $ko; bash: $peer"
run_pair "$runs" "kubectl-ko nbctl show" ours "bash kubectl-ko nbctl show" bash_script
echo "load after $(load)"
