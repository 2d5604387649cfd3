#!/usr/bin/env bash
# Benchmark: one `kubectl ko trace` against the sandbox, next to the same trace
# done the way Kube-OVN's bash kubectl-ko does it (one kubectl process per
# lookup, in its order: pod fields one by one, leaders, ovs pod, NB lookups,
# ovn-trace, ofport, ofproto/trace).
#
# Measures wall time per trace (median of --runs) and API round trips per
# trace, counted from the emulator's request log (every HTTP request the API
# server answered, discovery included).
#
# Usage (root): bench/trace.sh [--name trace] [--runs 10]
# Needs: a built kubectl-ko (cargo build --release recommended), kubectl.
# Results are recorded in bench/trace-baseline.md.
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
ko=${KO_BIN:-$repo/target/release/kubectl-ko}
[[ -x $ko ]] || ko=$repo/target/debug/kubectl-ko
[[ -x $ko ]] || { echo "build kubectl-ko first (cargo build --release)" >&2; exit 1; }

kc=$("$repo/e2e/sandbox" up --name "$name" | sed -n 's/^KUBECONFIG=//p' | tail -1)
log=$(dirname "$kc")/apiserver.log
export KUBECONFIG=$kc
unset KUBE_OVN_NS NO_COLOR
ns=kube-system
src_ns=default src_pod=client-1
dst=$(kubectl get pod web-2 -n default -o jsonpath='{.status.podIP}')
port=8080

requests() { grep -c 'ko_apiserver::api:' "$log" || true; }
now() { date +%s.%N; }

# --- A: kubectl-ko
ko_trace() { "$ko" -o json trace "$src_ns/$src_pod" "$dst" tcp "$port" >/dev/null; }

# --- B: the bash way, one kubectl per lookup
jp() { kubectl get "$@"; }
bash_trace() {
  local nb sb node host ips ovs ls cidr mac dmac lspuuid vm inport
  nb=$(kubectl get pod -n $ns -l ovn-nb-leader=true -o jsonpath='{.items[0].metadata.name}')
  sb=$(kubectl get pod -n $ns -l ovn-sb-leader=true -o jsonpath='{.items[0].metadata.name}')
  node=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.spec.nodeName}')
  host=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.spec.hostNetwork}')
  ips=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.metadata.annotations.ovn\.kubernetes\.io/ip_address}')
  ovs=$(kubectl get pod -n $ns -l app=ovs -o jsonpath="{.items[?(@.spec.nodeName==\"$node\")].metadata.name}")
  ls=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.metadata.annotations.ovn\.kubernetes\.io/logical_switch}')
  cidr=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.metadata.annotations.ovn\.kubernetes\.io/cidr}')
  mac=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.metadata.annotations.ovn\.kubernetes\.io/mac_address}')
  dmac=$(kubectl exec "$nb" -n $ns -c ovn-central -- ovn-nbctl --data=bare --no-heading --columns=addresses list logical_switch_port \
    | grep -w "$dst" | awk '{print $1}' | head -1)
  lspuuid=$(kubectl exec "$nb" -n $ns -c ovn-central -- ovn-nbctl --data=bare --no-heading --columns=_uuid find logical_switch_port name="$src_pod.$src_ns")
  vm=$(jp pod "$src_pod" -n "$src_ns" -o jsonpath='{.metadata.ownerReferences[?(@.kind=="VirtualMachineInstance")].name}')
  kubectl exec "$sb" -n $ns -c ovn-central -- ovn-trace --ct=new --ct=new --ct=new --ct=new "$ls" \
    "inport == \"$src_pod.$src_ns\" && ip.ttl == 64 && eth.src == $mac && ip4.src == ${ips%%,*} && eth.dst == $dmac && ip4.dst == $dst && tcp.src == 30000 && tcp.dst == $port && tcp.flags == 2" >/dev/null
  inport=$(kubectl exec "$ovs" -n $ns -c openvswitch -- ovs-vsctl --format=csv --data=bare --no-heading --columns=ofport find interface external_id:iface-id="$src_pod.$src_ns")
  kubectl exec "$ovs" -n $ns -c openvswitch -- ovs-appctl ofproto/trace br-int \
    "in_port=$inport,tcp,nw_ttl=64,nw_src=${ips%%,*},nw_dst=$dst,dl_src=$mac,dl_dst=$dmac,tcp_src=30000,tcp_dst=$port" >/dev/null
  : "$host" "$cidr" "$lspuuid" "$vm"
}

measure() { # measure <label> <fn>
  local label=$1 fn=$2 times=() r0 r1 t0 t1
  $fn  # warm-up (connections, kubectl discovery cache)
  r0=$(requests)
  for _ in $(seq "$runs"); do
    t0=$(now); $fn; t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  r1=$(requests)
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
  printf '%-34s median %6.3f s   min %6.3f s   max %6.3f s   API requests/trace %s\n' \
    "$label" "$med" "$(printf '%s\n' "${times[@]}" | sort -n | head -1)" \
    "$(printf '%s\n' "${times[@]}" | sort -n | tail -1)" "$(( (r1 - r0) / runs ))"
}

echo "sandbox $name, trace $src_ns/$src_pod -> $dst tcp/$port (cross-node), $runs runs each, $(nproc) CPUs"
echo "kubectl-ko: $ko"
measure "kubectl-ko trace (one process)" ko_trace
measure "bash way (one kubectl per lookup)" bash_trace
