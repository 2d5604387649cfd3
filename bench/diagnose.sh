#!/usr/bin/env bash
# Benchmark `kubectl ko diagnose all` (release build) against sandboxes of growing
# size, next to Kube-OVN's bash `kubectl-ko diagnose all` (KO_PEER_SCRIPT, optional)
# in the same run, alternating.
#   bench/diagnose.sh [NODES...]        (default: 3 12; the sandbox takes 1 to 32)
# For each node count: bring up sandbox `db-<n>` (`$KO_SANDBOX_PREFIX<n>` when set), run both RUNS times (default 3)
# against the sandbox's own external host, record wall time, the report's counters
# (checks, probes, execs, matrix strategy, pinger-job strategy, healthy) and the load, tear the sandbox
# down. Prints a Markdown table on stdout. Needs root. The runs start once the
# bring-up's load has settled (SETTLE_LOAD, see below).
# KO_BIN=<kubectl-ko> to use another binary than target/release/kubectl-ko.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-3}
counts=("$@")
[[ ${#counts[@]} -eq 0 ]] && counts=(3 12)
ko=${KO_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/kubectl-ko}
[[ -x $ko ]] || { echo "build the release binary first (cargo build --release -p kubectl-ko)" >&2; exit 1; }
peer=${KO_PEER_SCRIPT:-}

echo "| nodes | pods | checks | probes | execs | strategy | pinger jobs | runs | ours min s | ours median s | bash median s (exit) | healthy | load before → after |"
echo "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|---|"
for n in "${counts[@]}"; do
  name=${KO_SANDBOX_PREFIX:-db-}$n
  kc=$("$repo/e2e/sandbox" up --name "$name" --nodes "$n" | sed -n 's/^KUBECONFIG=//p' | tail -1)
  # status exits 1 when it sees a problem; the JSON is printed either way
  ext=$({ "$repo/e2e/sandbox" status --name "$name" -o json || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["external_host"]["ip4"])')
  pods=$(kubectl --kubeconfig "$kc" get pods -A --no-headers | wc -l)
  # a fresh sandbox's ovn-controllers are still installing flows (load 20-40 at
  # 32 nodes for a minute): wait until the 1-minute load is under SETTLE_LOAD
  # (default 8), at most 180 s, so the runs measure diagnose, not the bring-up
  for _ in $(seq 1 36); do
    awk -v max="${SETTLE_LOAD:-8}" '{exit !($1 < max)}' /proc/loadavg && break
    sleep 5
  done
  load0=$(cut -d' ' -f1 /proc/loadavg)
  ours=() theirs=() rc=-
  for _ in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    env -u KUBECONFIG -u NO_COLOR -u KUBE_OVN_NS "$ko" --kubeconfig "$kc" diagnose all \
      --external-address "$ext" -o json > "/tmp/$name.json" || true
    end=$(date +%s.%N)
    ours+=("$(echo "$end - $start" | bc)")
    if [[ -n $peer ]]; then
      start=$(date +%s.%N)
      rc=0
      env -u NO_COLOR KUBECONFIG="$kc" bash "$peer" diagnose all >/dev/null 2>&1 || rc=$?
      end=$(date +%s.%N)
      theirs+=("$(echo "$end - $start" | bc)")
    fi
  done
  load1=$(cut -d' ' -f1 /proc/loadavg)
  read -r checks probes execs strategy pingers healthy < <(python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
m=d.get("connectivity") or {}
s=m.get("strategy",{})
st=s.get("kind","-")+(("/%d" % s["peers"]) if "peers" in s else "")
p=d.get("pinger_strategy") or {}
pj={"every": lambda: "every/%d" % p["pods"], "troubled": lambda: "troubled/%d-of-%d" % (p["ran"], p["of"]), "skipped": lambda: "skipped/0-of-%d" % p["of"]}.get(p.get("kind"), lambda: "-")()
print(len(d["checks"]), len(m.get("probes",[])), m.get("execs","-"), st, pj, str(d["healthy"]).lower())' "/tmp/$name.json")
  sorted=$(printf '%s\n' "${ours[@]}" | sort -n)
  min=$(echo "$sorted" | head -1)
  med=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
  bmed=-
  if [[ ${#theirs[@]} -gt 0 ]]; then
    bmed=$(printf '%s\n' "${theirs[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
    bmed=$(printf '%.2f (%s)' "$bmed" "$rc")
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %s | %s → %s |\n' \
    "$n" "$pods" "$checks" "$probes" "$execs" "$strategy" "$pingers" "$runs" "$min" "$med" "$bmed" "$healthy" "$load0" "$load1"
  # the last run's report stays in /tmp/<name>.json (a failing run is explained
  # there); KEEP=1 also leaves the sandbox up to look into
  if [[ -z ${KEEP:-} ]]; then
    "$repo/e2e/sandbox" down --name "$name" >/dev/null 2>&1 || true
  fi
done
