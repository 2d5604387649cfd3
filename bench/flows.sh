#!/usr/bin/env bash
# Benchmarks of `kubectl ko flows` (results in bench/flows.md):
#  1. the dump-flows scanner and one tracker round on a synthetic N-flow dump
#     (ovn/examples/flows_bench.rs; wall and on-CPU MB/s);
#  2. one polling round on a sandbox node carrying >= 50k flows: 50 000 extra
#     rules are added to br-int table 250 of kube-ovn-worker2 (cookie
#     0xf10f0000, half of them on the watched switch's metadata so the filter
#     keeps them), `flows default/client-3 --for 10s -o json` reports its cost,
#     /usr/bin/time its CPU and max RSS; the rules are removed afterwards;
#  3. memory over a long --watch: RSS of `flows --watch --interval 300ms`
#     sampled every 10 s for 90 s while client-1 pings db.
# Usage: KUBECONFIG=<sandbox kubeconfig> bench/flows.sh [N]   (as root, sandbox up)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
KO=${BENCH_BIN:-target/debug}/kubectl-ko
echo "== machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo run --release -q -p ko-ovn --example flows_bench "$N"

O=$(kubectl -n kube-system get pods -l app=ovs -o wide | awk '/worker2/{print $1}')
python3 -c "
for i in range(50000):
    md = '0x2' if i % 2 == 0 else '0x99'
    print(f'table=250,cookie=0xf10f0000,priority=10,ip,metadata={md},nw_dst=10.{(i>>16)&255}.{(i>>8)&255}.{i&255},actions=drop')
" > /tmp/flows-50k.txt
kubectl -n kube-system exec -i "$O" -- ovs-ofctl add-flows br-int - < /tmp/flows-50k.txt
trap 'kubectl -n kube-system exec "$O" -- ovs-ofctl del-flows br-int cookie=0xf10f0000/-1' EXIT
kubectl -n kube-system exec "$O" -- ovs-ofctl dump-aggregate br-int
for i in 1 2 3; do
  /usr/bin/time -f "kubectl exec ovs-ofctl dump-flows alone: %e s" \
    kubectl -n kube-system exec "$O" -- ovs-ofctl --no-names dump-flows br-int > /dev/null
done
echo "== machine: load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v "$KO" flows default/client-3 --for 10s -o json > /tmp/bench50k.json 2> /tmp/bench50k.time || true
python3 -c "import json; d=json.load(open('/tmp/bench50k.json')); print('cost', d['cost'], 'duration_s', d['duration_s'])"
grep -E "Maximum resident|Elapsed|User time|System time" /tmp/bench50k.time

"$KO" flows default/client-1 --watch --interval 300ms -o json > /tmp/watch.json 2>/dev/null &
P=$!
kubectl exec client-1 -- ping -c 250 -i 0.3 -W 1 10.16.0.13 > /dev/null 2>&1 &
for i in $(seq 1 9); do sleep 10; echo "t=$((i * 10))s rss_kb=$(awk '/VmRSS/{print $2}' /proc/$P/status)"; done
kill -INT $P; wait $P || true
python3 -c "import json; d=json.load(open('/tmp/watch.json')); print('watch cost', d['cost'], 'duration_s', d['duration_s'])"
