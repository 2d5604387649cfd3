#!/usr/bin/env bash
# Kube-OVN's own e2e for kubectl-ko (test/e2e/kube-ovn/kubectl-ko/kubectl-ko.go in the
# Kube-OVN repository, followed as of its master in 2026), written down here as a
# command list: the same `kubectl ko ...` commands, the same objects (its pods, its
# NetworkPolicy, its Service), run with the real kubectl against a cluster.
# Differences, all because the sandbox must not reach outside addresses or run images:
#   - 8.8.8.8 (trace target) and 1.1.1.1 (diagnose IPPorts) are replaced by the
#     sandbox's external host ($UPSTREAM_E2E_EXTERNAL, default 172.18.0.200);
#   - the tcpdump pod's container command (a ping loop) is run with `kubectl exec`,
#     since the sandbox kubelet runs no container commands;
#   - IPv4 only (the sandbox default; upstream also runs the IPv6 targets on v6).
#
# Usage: KUBECONFIG=<path> e2e/upstream-kubectl-ko.sh <kubectl-ko executable>
#   The executable is put on PATH as `kubectl-ko`, so `kubectl ko` runs it (our
#   plugin, or Kube-OVN's bash script: see KO_PEER_SCRIPT in tests/upstream_e2e.rs).
#   UPSTREAM_E2E_USERSPACE_DPCTL_OK=1: `dpctl` may fail (the bash script's
#   `ovs-dpctl show` finds no kernel datapath on the sandbox's userspace datapath).
# Prints PASS/FAIL per command and a summary; exits 1 if any command failed.
set -uo pipefail

impl=${1:?usage: e2e/upstream-kubectl-ko.sh <kubectl-ko executable>}
[[ -x $impl ]] || {
  echo "upstream-e2e: $impl is not an executable file" >&2
  exit 2
}
: "${KUBECONFIG:?set KUBECONFIG to the cluster to test}"
export KUBECONFIG
external=${UPSTREAM_E2E_EXTERNAL:-172.18.0.200}
dpctl_may_fail=${UPSTREAM_E2E_USERSPACE_DPCTL_OK:-0}

work=$(mktemp -d /tmp/upstream-kubectl-ko.XXXXXX)
mkdir -p "$work/bin"
ln -s "$(realpath "$impl")" "$work/bin/kubectl-ko"
export PATH="$work/bin:$PATH"
# backup and log write into the current directory, as upstream runs them
cd "$work" || exit 2

suffix() { tr -dc 'a-z0-9' </dev/urandom | head -c 8; }
ns="kubectl-ko-$(suffix)"
passed=0 failed=0 allowed=0
failures=()
bg_pids=()

cleanup() {
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

note() { printf '[upstream-e2e] %s\n' "$*"; }

# run <ko args...>: `kubectl ko <args>` must exit 0 (upstream's execOrDie).
# Output is kept in $out for checks.
out="" err=""
run() {
  local rc=0
  # stdout alone, as upstream's ExecOrDie returns it (the bash script traces to stderr)
  out=$(timeout 300 kubectl ko "$@" 2>"$work/stderr") || rc=$?
  err=$(<"$work/stderr")
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    note "PASS  kubectl ko $*"
    return 0
  fi
  # The userspace datapath has no kernel datapath for `ovs-dpctl show` (bash script).
  if [[ $1 == dpctl && $dpctl_may_fail == 1 ]]; then
    allowed=$((allowed + 1))
    note "ALLOWED-FAIL (userspace datapath) kubectl ko $* (exit $rc)"
    return 0
  fi
  failed=$((failed + 1))
  failures+=("kubectl ko $* (exit $rc)")
  note "FAIL  kubectl ko $* (exit $rc)"
  printf '%s\n%s\n' "$out" "$err" | tail -15 | sed 's/^/    | /'
  return 1
}

# check <description> <condition status>: a check on the last output
check() {
  if [[ $2 -eq 0 ]]; then
    passed=$((passed + 1))
    note "PASS  check: $1"
  else
    failed=$((failed + 1))
    failures+=("check: $1")
    note "FAIL  check: $1"
    printf '%s\n' "$out" | tail -15 | sed 's/^/    | /'
  fi
}

random_mac() {
  printf '00:00:00:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256))
}

# make_pod <name> [hostNetwork true|false] [labels JSON]: framework.MakePod + CreateSync
make_pod() {
  local name=$1 host=${2:-false} labels=${3:-'{}'}
  kubectl -n "$ns" apply -f - >/dev/null <<EOF || return 1
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$name", "labels": $labels},
 "spec": {"hostNetwork": $host, "terminationGracePeriodSeconds": 0,
          "containers": [{"name": "container", "image": "docker.io/kubeovn/kube-ovn:v1.15.0",
                          "command": ["sleep", "infinity"]}]}}
EOF
  kubectl -n "$ns" wait --for=condition=Ready "pod/$name" --timeout=120s >/dev/null
}

pod_ipv4s() {
  kubectl -n "$ns" get pod "$1" -o jsonpath='{range .status.podIPs[*]}{.ip}{"\n"}{end}' | grep -v ':'
}

# trace_matrix <source>: upstream's arp reply, then per MAC "" and random:
# arp, arp request, icmp, tcp 80, udp 53 (IPv4 target)
trace_matrix() {
  local src=$1 mac
  mac=$(random_mac)
  run trace "$src" "$external" "$mac" arp reply
  for m in "" "$mac"; do
    # shellcheck disable=SC2086 # an empty MAC is no argument, as in upstream's Fields()
    run trace "$src" "$external" $m arp
    # shellcheck disable=SC2086
    run trace "$src" "$external" $m arp request
    # shellcheck disable=SC2086
    run trace "$src" "$external" $m icmp
    # shellcheck disable=SC2086
    run trace "$src" "$external" $m tcp 80
    # shellcheck disable=SC2086
    run trace "$src" "$external" $m udp 53
  done
}

kubectl create namespace "$ns" >/dev/null || {
  echo "upstream-e2e: cannot create namespace $ns" >&2
  exit 2
}
note "implementation: $impl; namespace $ns; outside address replaced by $external"
nodes=$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')

note "== should support \"kubectl ko nbctl show\" / \"sbctl show\""
run nbctl show
run sbctl show

note "== vsctl/ofctl/dpctl/appctl on every node"
for node in $nodes; do
  run vsctl "$node" show
  run ofctl "$node" show br-int
  run dpctl "$node" show
  run appctl "$node" list-commands
done

note "== nb/sb status/backup"
for db in nb sb; do
  for action in status backup; do
    run "$db" "$action"
  done
done

note "== tcpdump <pod> -c1"
pod="pod-$(suffix)"
if make_pod "$pod"; then
  # the pod's command in upstream: while true; do ping -c1 -w1 <target>; sleep 1; done
  kubectl -n "$ns" exec "$pod" -- sh -c "while true; do ping -c1 -w1 $external; sleep 1; done" >/dev/null 2>&1 &
  bg_pids+=($!)
  run tcpdump "$ns/$pod" -c1
  kill "${bg_pids[-1]}" 2>/dev/null
  kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null
else
  failed=$((failed + 1))
  failures+=("tcpdump: pod $pod did not become Ready")
fi

note "== trace <pod> <args...>"
pod="pod-$(suffix)"
if make_pod "$pod"; then
  for ip in $(pod_ipv4s "$pod"); do
    [[ -n $ip ]] && trace_matrix "$ns/$pod"
  done
  kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null
else
  failed=$((failed + 1))
  failures+=("trace: pod $pod did not become Ready")
fi

note "== trace <pod> <args...> for a pod with host network"
pod="pod-$(suffix)"
if make_pod "$pod" true; then
  trace_matrix "$ns/$pod"
  kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null
else
  failed=$((failed + 1))
  failures+=("trace hostNetwork: pod $pod did not become Ready")
fi

note "== trace node//<node> <args...>"
mapfile -t node_list <<<"$nodes"
node=${node_list[RANDOM % ${#node_list[@]}]}
trace_matrix "node//$node"

note "== \"kubectl ko trace ...\" should work with network policy"
pod2="pod-$(suffix)" pod="pod-$(suffix)" svc="svc-$(suffix)" netpol="netpol-$(suffix)"
tcp_port=$((8000 + RANDOM % 1000)) udp_port=$((8000 + RANDOM % 1000))
if make_pod "$pod2" false '{"foo": "bar"}'; then
  kubectl -n "$ns" apply -f - >/dev/null <<EOF
{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "$netpol"},
 "spec": {"policyTypes": ["Egress"],
          "egress": [{"ports": [{"protocol": "TCP", "port": $tcp_port}, {"protocol": "UDP", "port": $udp_port}],
                      "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"foo": "bar"}}}]}]}}
EOF
  kubectl -n "$ns" apply -f - >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "$svc"},
 "spec": {"type": "ClusterIP", "selector": {"foo": "bar"},
          "ports": [{"name": "tcp", "protocol": "TCP", "port": $tcp_port, "targetPort": $tcp_port},
                    {"name": "udp", "protocol": "UDP", "port": $udp_port, "targetPort": $udp_port}]}}
EOF
  ready=""
  for _ in $(seq 60); do
    ready=$(kubectl -n "$ns" get endpoints "$svc" -o jsonpath='{.subsets[*].addresses[*].ip}' 2>/dev/null)
    [[ -n $ready ]] && break
    sleep 1
  done
  out="endpoints of $svc: '${ready}'"
  check "endpoints $svc has at least one ready address" "$([[ -n $ready ]] && echo 0 || echo 1)"
  if make_pod "$pod"; then
    match="output to \"$pod2.$ns\""
    for proto_port in "tcp $tcp_port" "udp $udp_port"; do
      read -r proto port <<<"$proto_port"
      for ip in $(pod_ipv4s "$pod2"); do
        if run ovn-trace "$ns/$pod" "$ip" "$proto" "$port"; then
          last=$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -1)
          check "ovn-trace to pod $ip $proto $port ends with: $match" "$([[ $last == *"$match"* ]] && echo 0 || echo 1)"
        fi
      done
      # retried for 30 s, as upstream, to let the LB VIP reach OVN
      for ip in $(kubectl -n "$ns" get svc "$svc" -o jsonpath='{.spec.clusterIPs[*]}'); do
        ok=1
        for _ in $(seq 30); do
          if out=$(kubectl ko ovn-trace "$ns/$pod" "$ip" "$proto" "$port" 2>/dev/null); then
            last=$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -1)
            if [[ $last == *"$match"* ]]; then
              ok=0
              break
            fi
          fi
          sleep 1
        done
        check "ovn-trace to service $ip $proto $port reaches $pod2 within 30 s" "$ok"
      done
    done
  else
    failed=$((failed + 1))
    failures+=("network policy: pod $pod did not become Ready")
  fi
  kubectl -n "$ns" delete networkpolicy "$netpol" --wait=false >/dev/null
  kubectl -n "$ns" delete service "$svc" --wait=false >/dev/null
else
  failed=$((failed + 1))
  failures+=("network policy: pod $pod2 did not become Ready")
fi

note "== log kube-ovn|ovn|ovs|linux|all"
for component in kube-ovn ovn ovs linux all; do
  run log "$component"
done

note "== diagnose subnet / IPPorts"
run diagnose subnet ovn-default
run diagnose IPPorts "tcp-$external-53,udp-$external-53"

note "summary: $passed passed, $failed failed, $allowed allowed failures ($impl)"
for f in "${failures[@]}"; do note "  failed: $f"; done
[[ $failed -eq 0 ]]
