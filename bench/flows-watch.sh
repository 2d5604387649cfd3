#!/usr/bin/env bash
# Memory of a long `kubectl ko flows --watch` (results in bench/flows.md, section 3):
# `flows default/client-1 --watch --interval 300ms -o json` while client-1 pings db
# (denied by NetworkPolicy default/protect-db: a growing drop, an ACL owner inferred
# every interval on OVN >= 24.03), VmRSS sampled every STEP seconds for SECONDS, then
# SIGINT (the summary is printed, exit 0).
# Usage: KUBECONFIG=<sandbox kubeconfig> bench/flows-watch.sh [SECONDS] [STEP]   (sandbox up)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-720}
STEP=${2:-30}
KO=${BENCH_BIN:-target/debug}/kubectl-ko
echo "== $(date -u +%FT%TZ) binary $KO ($(file -b "$KO" | grep -o 'not stripped\|stripped' | head -1)), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
DB=$(kubectl get pod db -o jsonpath='{.status.podIP}')
"$KO" flows default/client-1 --watch --interval 300ms -o json > /tmp/flows-watch.json 2>/tmp/flows-watch.err &
P=$!
kubectl exec client-1 -- ping -q -c $((SECS * 10 / 3 + 20)) -i 0.3 -W 1 "$DB" > /dev/null 2>&1 &
PING=$!
for ((t = STEP; t <= SECS; t += STEP)); do
  sleep "$STEP"
  echo "t=${t}s rss_kb=$(awk '/VmRSS/{print $2}' /proc/$P/status) load=$(cut -d' ' -f1 /proc/loadavg)"
done
kill -INT $P
wait $P || echo "flows exited $?"
kill $PING 2>/dev/null || true
python3 -c "import json; d=json.load(open('/tmp/flows-watch.json')); print('watch cost', d['cost'], 'duration_s', round(d['duration_s'], 1), 'drops', [(x['stage'], x['packets'], (x.get('owner') or {}).get('name')) for x in d['drops']])"
