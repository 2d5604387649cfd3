#!/bin/bash
# The sandbox's stand-in for /kube-ovn/kube-ovn-pinger (written by ko-sandbox, not
# upstream code). It runs upstream's --mode=job connectivity checks for real from
# the pinger pod: 3 pings 100 ms apart to every pinger pod and every node, the
# --target-ip-ports and the --external-address, and logs in klog's format with
# upstream's messages, so `kubectl ko diagnose` reads it as it reads the real one.
# It takes every flag upstream's binary takes (pkg/pinger/config.go plus klog's) and
# honours --mode=job, --external-address, --target-ip-ports, --exit-code,
# --enable-verbose-conn-check, --tcp-conn-check-port and --udp-conn-check-port; the
# others are accepted and logged as without effect.
# Differences, each logged: the target list comes from `targets` next to this
# script (the stand-in does not query the API), and the OVS,
# ovn-controller, port-binding, API server and DNS checks are skipped (the stand-in
# reads no OVS metrics and the sandbox runs no DNS server).
# Exit status as upstream: 0 unless a check failed and --exit-code is not 0.
set -u

log() {
	# klog header: Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg
	printf '%s%s %7d kube-ovn-pinger-standin:%d] %s\n' "$1" "$(date -u +'%m%d %H:%M:%S.%6N')" $$ "${BASH_LINENO[0]}" "$2" >&2
}

mode=server external="" target_ip_ports="" exit_code=0
verbose_conn_check=false tcp_port=8100 udp_port=8101
# Every flag of upstream's kube-ovn-pinger (pkg/pinger/config.go) and klog's, as pflag
# takes them: --name=value or --name value; booleans also bare (--name).
value_flags=" port tcp-conn-check-port udp-conn-check-port kubeconfig interval mode exit-code
 internal-dns external-dns external-address target-ip-ports network-mode log-perm ovs.timeout
 ovs.poll-interval system.run.dir database.vswitch.name database.vswitch.socket.remote
 database.vswitch.file.data.path database.vswitch.file.log.path database.vswitch.file.pid.path
 database.vswitch.file.system.id.path service.vswitchd.file.log.path service.vswitchd.file.pid.path
 service.ovncontroller.file.log.path service.ovncontroller.file.pid.path
 v vmodule log_dir log_file log_file_max_size stderrthreshold log_backtrace_at "
bool_flags=" enable-verbose-conn-check enable-metrics logtostderr alsologtostderr add_dir_header
 skip_headers skip_log_headers one_output "
# one space around every name, line breaks included
value_flags=" ${value_flags//$'\n'/ } " bool_flags=" ${bool_flags//$'\n'/ } "
set_flag() {
	case $1 in
	mode) mode=$2 ;;
	external-address) external=$2 ;;
	target-ip-ports) target_ip_ports=$2 ;;
	exit-code) exit_code=$2 ;;
	enable-verbose-conn-check) verbose_conn_check=$2 ;;
	tcp-conn-check-port) tcp_port=$2 ;;
	udp-conn-check-port) udp_port=$2 ;;
	*) ignored+=("--$1=$2") ;;
	esac
}
ignored=()
all_args="$*"
while [ $# -gt 0 ]; do
	a=$1
	shift
	case $a in
	--*=* | -*=*)
		name=${a%%=*} name=${name#-} name=${name#-} value=${a#*=}
		if [[ $value_flags != *" $name "* && $bool_flags != *" $name "* ]]; then
			log E "unknown flag: --$name"
			exit 2
		fi
		set_flag "$name" "$value"
		;;
	-*)
		name=${a#-} name=${name#-}
		if [[ $bool_flags == *" $name "* ]]; then
			set_flag "$name" true
		elif [[ $value_flags == *" $name "* ]] && [ $# -gt 0 ]; then
			set_flag "$name" "$1"
			shift
		else
			log E "unknown flag: $a"
			exit 2
		fi
		;;
	*)
		log E "unexpected argument: $a"
		exit 2
		;;
	esac
done
if [ "$mode" != job ]; then
	log E "the sandbox stand-in only runs --mode=job (the sandbox kubelet runs no container commands, so nothing starts the server mode)"
	exit 2
fi
targets=$(dirname "$0")/targets
log I "sandbox stand-in: called with: $all_args"
if [ ${#ignored[@]} -gt 0 ]; then
	log I "sandbox stand-in: accepted without effect here: ${ignored[*]}"
fi

# upstream pings only the address families the pod itself has
has4=0 has6=0
while read -r fam _; do
	[ "$fam" = inet ] && has4=1
	[ "$fam" = inet6 ] && has6=1
done < <(ip -o addr show dev eth0 scope global | awk '{print $3, $4}')
family_ok() {
	case $1 in
	*:*) [ $has6 = 1 ] ;;
	*) [ $has4 = 1 ] ;;
	esac
}

failed=0
# ping3 <ip> <timeout s>: sets loss and avg (ms)
ping3() {
	local out recv
	out=$(ping -c 3 -i 0.1 -w "$2" "$1" 2>&1)
	recv=$(sed -n 's/.*, \([0-9][0-9]*\) received.*/\1/p' <<<"$out")
	recv=${recv:-0}
	loss=$((3 - recv))
	avg=$(sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
	avg=${avg:-0}
}

# tcp_check/udp_check <ip> <port>: upstream's util.TCPConnectivityCheck / UDPConnectivityCheck
# (connect; for UDP send and wait for the echo its conn-check server sends back)
tcp_check() {
	# shellcheck disable=SC2016 # $1/$2 expand in the inner shell: argv, not text
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}
udp_check() {
	# shellcheck disable=SC2016
	timeout 3 bash -c 'exec 3<>"/dev/udp/$1/$2"; printf x >&3; read -r -t 2 -N 1 -u 3 _' _ "$1" "$2" 2>/dev/null
}
# conn_check pod|node <name> <ip>: with --enable-verbose-conn-check, as upstream
conn_check() {
	[ "$verbose_conn_check" = true ] || return 0
	if tcp_check "$3" "$tcp_port"; then
		log I "TCP connectivity to $1 $2 $3 success"
	else
		log I "TCP connectivity to $1 $2 $3 failed"
		failed=1
	fi
	if udp_check "$3" "$udp_port"; then
		log I "UDP connectivity to $1 $2 $3 success"
	else
		log I "UDP connectivity to $1 $2 $3 failed"
		failed=1
	fi
}

log I "sandbox stand-in: skipping the ovs, ovn-controller and port binding checks (the stand-in does not read OVS metrics)"
log I "sandbox stand-in: skipping the apiserver check (the stand-in does not query the API)"

log I "start to check pod connectivity"
while read -r kind name ip; do
	if [ "$kind" != pod ] || ! family_ok "$ip"; then continue; fi
	conn_check pod "$name" "$ip"
	ping3 "$ip" 1
	log I "ping pod: $name $ip, count: 3, loss count $loss, average rtt ${avg}ms"
	[ "$loss" = 0 ] || failed=1
done <"$targets"

log I "start to check node connectivity"
while read -r kind name ip; do
	if [ "$kind" != node ] || ! family_ok "$ip"; then continue; fi
	conn_check node "$name" "$ip"
	ping3 "$ip" 30
	log I "ping node: $name $ip, count: 3, loss count $loss, average rtt ${avg}ms"
	[ "$loss" = 0 ] || failed=1
done <"$targets"

log I "sandbox stand-in: skipping the dns check (the sandbox runs no DNS server)"

if [ -n "$target_ip_ports" ]; then
	log I "start to check Service or externalIPPort connectivity"
	IFS=, read -r -a items <<<"$target_ip_ports"
	for item in "${items[@]}"; do
		log I "checking targetIPPort $item"
		proto=${item%%-*} rest=${item#*-}
		addr=${rest%-*} port=${rest##*-}
		if [ "$proto" = "$item" ] || [ "$addr" = "$rest" ]; then
			log I "targetIPPort format failed"
			continue
		fi
		family_ok "$addr" || continue
		shown=$addr
		case $addr in *:*) shown="[$addr]" ;; esac
		case $proto in
		tcp)
			# shellcheck disable=SC2016 # $1/$2 expand in the inner shell: argv, not text
			if tcp_check "$addr" "$port"; then
				log I "TCP connectivity to targetIPPort $shown:$port success"
			else
				log I "TCP connectivity to targetIPPort $shown:$port failed"
				failed=1
			fi
			;;
		udp)
			# upstream expects its own UDP responder to echo; so does this
			if udp_check "$addr" "$port"; then
				log I "UDP connectivity to target $shown:$port success"
			else
				log I "UDP connectivity to target $shown:$port failed"
				failed=1
			fi
			;;
		*) log I "unrecognized protocol $proto" ;;
		esac
	done
fi

if [ -n "$external" ]; then
	IFS=, read -r -a addrs <<<"$external"
	for addr in "${addrs[@]}"; do
		family_ok "$addr" || continue
		log I "start to check ping external to $addr"
		ping3 "$addr" 5
		log I "ping external address: $addr, total count: 3, loss count $loss, average rtt ${avg}ms"
		if [ "$loss" != 0 ]; then
			failed=1
			break
		fi
	done
fi

if [ $failed = 1 ] && [ "$exit_code" != 0 ]; then
	exit "$exit_code"
fi
exit 0
