#!/usr/bin/env bash
# Benchmarks of `kubectl ko flows` (results in bench/flows.md):
#  parse  the dump-flows scanner and one tracker round on a synthetic N-flow dump
#         (ovn/examples/flows_bench.rs, release; wall and on-CPU MB/s);
#  round  one polling round on a sandbox node carrying >= 50k flows: 50 000 extra
#         rules are added to br-int table 250 of kube-ovn-worker2 (cookie
#         0xf10f0000, half of them on the watched switch's metadata so the filter
#         keeps them), `flows default/client-3 --for 10s -o json` reports its cost,
#         /usr/bin/time its CPU and max RSS; the rules are removed afterwards;
#  watch  memory over a long --watch: bench/flows-watch.sh (RSS sampled every 30 s).
# Usage: KUBECONFIG=<sandbox kubeconfig> bench/flows.sh [parse|round|watch]... [N=100000]
#        (as root, sandbox up; BENCH_BIN=<dir of kubectl-ko>, default target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
KO=${BENCH_BIN:-target/debug}/kubectl-ko
echo "== machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); binary $KO"

parse() {
  cargo run --release -q -p ko-ovn --example flows_bench "$N"
}

round() {
  O=$(kubectl -n kube-system get pods -l app=ovs -o wide | awk '/worker2/{print $1}')
  # the watched switch's datapath key (metadata) differs between OVN versions
  MD=$("$KO" sbctl --bare --columns=tunnel_key find Datapath_Binding external_ids:name=ovn-default 2>/dev/null || true)
  MD=$(printf '0x%x' "${MD:-2}")
  python3 -c "
for i in range(50000):
    md = '$MD' if i % 2 == 0 else '0x99'
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
}

watch() {
  bench/flows-watch.sh 720 30
}

for part in "${@:-parse round watch}"; do
  for p in $part; do "$p"; done
done
