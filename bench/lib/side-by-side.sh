# Shared by bench/trace.sh and bench/nbctl-show.sh: bring a sandbox up, run two
# commands alternately, time each run, count the API requests each run made (from
# the emulator's request log), and print one line per command. Source it with $repo
# set, then call side_by_side_setup.

# side_by_side_setup <default name> <default runs> [--name N] [--runs N]: reads the
# options, checks both binaries, brings the sandbox up. Sets name, runs, peer, ko,
# kc and log (its apiserver.log); exports KUBECONFIG.
side_by_side_setup() {
  name=$1
  runs=$2
  shift 2
  while [[ $# -gt 0 ]]; do
    case $1 in
      --name) name=$2; shift 2 ;;
      --runs) runs=$2; shift 2 ;;
      *) echo "usage: $0 [--name N] [--runs N]" >&2; exit 2 ;;
    esac
  done
  peer=${KO_PEER_SCRIPT:?set KO_PEER_SCRIPT to the bash kubectl-ko of Kube-OVN, dist/images/kubectl-ko}
  ko=${KO_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/kubectl-ko}
  [[ -x $ko ]] || { echo "build the release binary first (cargo build --release -p kubectl-ko)" >&2; exit 1; }
  kc=$("$repo/e2e/sandbox" up --name "$name" | sed -n 's/^KUBECONFIG=//p' | tail -1)
  log=$(dirname "$kc")/apiserver.log
  export KUBECONFIG=$kc
  unset KUBE_OVN_NS NO_COLOR
}

# Request lines in the emulator's log ("ko_apiserver::api: GET /... -> 200").
requests() { grep -cE 'ko_apiserver::api: [A-Z]+ /' "$log" || true; }
now_ns() { date +%s%N; }

# run_pair <runs> <label-a> <fn-a> <label-b> <fn-b>: alternates a, b, a, b, ...
# after one warm-up each; prints median/min/p90 wall time and requests per run.
run_pair() {
  local runs=$1 la=$2 fa=$3 lb=$4 fb=$5 i t0 t1 r0 r1
  local -a ta=() tb=() qa=() qb=()
  $fa >/dev/null 2>&1 || true
  $fb >/dev/null 2>&1 || true
  for ((i = 0; i < runs; i++)); do
    r0=$(requests); t0=$(now_ns); $fa >/dev/null 2>&1; t1=$(now_ns); r1=$(requests)
    ta+=($(((t1 - t0) / 1000))); qa+=($((r1 - r0)))
    r0=$(requests); t0=$(now_ns); $fb >/dev/null 2>&1; t1=$(now_ns); r1=$(requests)
    tb+=($(((t1 - t0) / 1000))); qb+=($((r1 - r0)))
  done
  summary "$la" "${ta[*]}" "${qa[*]}"
  summary "$lb" "${tb[*]}" "${qb[*]}"
  local ma mb
  ma=$(median "${ta[*]}"); mb=$(median "${tb[*]}")
  awk -v a="$ma" -v b="$mb" -v la="$la" -v lb="$lb" \
    'BEGIN {printf "ratio: %s takes %.3f of %s (%.1fx faster)\n", la, a/b, lb, b/a}'
}

median() { tr ' ' '\n' <<<"$1" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

summary() { # summary <label> <times-us> <requests>
  local label=$1 times=$2 reqs=$3
  tr ' ' '\n' <<<"$times" | sort -n | awk -v l="$label" -v q="$(median "$reqs")" \
    '{a[NR]=$1} END {printf "%-28s median %8.1f ms  min %8.1f ms  p90 %8.1f ms  API requests/run %s  (n=%d)\n", l, a[int((NR+1)/2)]/1000, a[1]/1000, a[int(NR*0.9+0.5)]/1000, q, NR}'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
