#!/usr/bin/env bash
# Benchmark `kubectl ko diagnose all` against sandboxes of growing size.
#   bench/diagnose.sh [NODES...]        (default: 3 6 12; the sandbox takes 1 to 32)
# For each node count: bring up sandbox `diag-bench-<n>`, run diagnose RUNS
# times (default 5) against the sandbox's own external host, record wall time
# and the report's counters, tear the sandbox down. Prints a Markdown table
# on stdout (bench/diagnose-baseline.md holds a recorded run). Needs root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-5}
counts=("$@")
[[ ${#counts[@]} -eq 0 ]] && counts=(3 6 12)

cargo build -q -p kubectl-ko --manifest-path "$repo/Cargo.toml" 1>&2
ko=${CARGO_TARGET_DIR:-$repo/target}/debug/kubectl-ko

echo "| nodes | pods | checks | probes | runs | min s | median s | max s | healthy |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for n in "${counts[@]}"; do
  name=diag-bench-$n
  kc=$("$repo/e2e/sandbox" up --name "$name" --nodes "$n" | sed -n 's/^KUBECONFIG=//p' | tail -1)
  # status exits 1 when it sees a problem; the JSON is printed either way
  ext=$({ "$repo/e2e/sandbox" status --name "$name" -o json || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["external_host"]["ip4"])')
  pods=$(kubectl --kubeconfig "$kc" get pods -A --no-headers | wc -l)
  times=()
  for _ in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    env -u KUBECONFIG -u NO_COLOR -u KUBE_OVN_NS "$ko" --kubeconfig "$kc" diagnose all \
      --external-address "$ext" -o json > "/tmp/$name.json" || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  read -r checks probes healthy < <(python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(len(d["checks"]), len((d.get("connectivity") or {}).get("probes",[])), str(d["healthy"]).lower())' "/tmp/$name.json")
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  min=$(echo "$sorted" | head -1); max=$(echo "$sorted" | tail -1)
  med=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
  printf '| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %s |\n' \
    "$n" "$pods" "$checks" "$probes" "$runs" "$min" "$med" "$max" "$healthy"
  "$repo/e2e/sandbox" down --name "$name" >/dev/null 2>&1 || true
  rm -f "/tmp/$name.json"
done
