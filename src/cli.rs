//! clap definitions only.
//!
//! Global options come before the subcommand (as in DESIGN §2) so that
//! passthrough arguments such as `nbctl -v` or `vsctl n1 -- --if-exists ...`
//! are never mistaken for ours. Structured commands also accept `-o` after
//! the subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::render::{ColorChoice, OutputFormat};

const AFTER_HELP: &str = "\
Exit codes:
  0    success (passthrough commands: the remote command's own exit code)
  1    a check or trace found a problem
  2    usage error (unknown subcommand, bad argument, invalid name)
  3    could not run: API server unreachable, forbidden, object not found,
       no OVN leader, pod not Running
  4    a remote call did not finish within --timeout
  5    a remote tool failed or printed output kubectl-ko could not understand
  6    a local file could not be written or read
  7    not supported by this version of kubectl-ko
  130  interrupted (Ctrl-C)

Environment: KUBECONFIG, KUBE_OVN_NS (Kube-OVN namespace), NO_COLOR; for diagnose,
as in the bash script: TCP_CONN_CHECK_PORT (8100), UDP_CONN_CHECK_PORT (8101),
WITHOUT_KUBE_PROXY (true skips the kube-proxy check).";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-ko",
    bin_name = "kubectl ko",
    version,
    about = "Troubleshoot Kube-OVN: OVN/OVS tools in the right pod, database operations, traces and checks",
    after_help = AFTER_HELP,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace Kube-OVN is installed in
    #[arg(
        long = "kube-ovn-namespace",
        env = "KUBE_OVN_NS",
        default_value = "kube-system",
        value_name = "NS"
    )]
    pub kube_ovn_namespace: String,

    /// Output format of structured commands
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Colour in text output (NO_COLOR disables `auto`)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Timeout of each API call and captured remote command, e.g. 30s, 2m, 500ms
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub timeout: Duration,

    /// More log output on stderr (-v, -vv, -vvv)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `-o` after a structured subcommand (overrides the global one).
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArg {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<OutputFormat>,
}

/// Raw arguments passed through byte-for-byte.
#[derive(Debug, Clone, Args)]
pub struct PassArgs {
    /// Arguments for the tool, passed through unchanged
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// A node plus raw arguments.
#[derive(Debug, Clone, Args)]
pub struct NodePassArgs {
    /// Node whose ovs-ovn pod runs the tool
    pub node: String,
    /// Arguments for the tool, passed through unchanged
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run ovn-nbctl in the OVN NB leader
    #[command(disable_help_flag = true)]
    Nbctl(PassArgs),
    /// Run ovn-sbctl in the OVN SB leader
    #[command(disable_help_flag = true)]
    Sbctl(PassArgs),
    /// Run ovn-ic-nbctl in the OVN IC NB leader
    #[command(disable_help_flag = true)]
    Icnbctl(PassArgs),
    /// Run ovn-ic-sbctl in the OVN IC SB leader
    #[command(disable_help_flag = true)]
    Icsbctl(PassArgs),
    /// Run ovs-vsctl in the ovs-ovn pod on NODE
    Vsctl(NodePassArgs),
    /// Run ovs-ofctl in the ovs-ovn pod on NODE
    Ofctl(NodePassArgs),
    /// Run ovs-dpctl in the ovs-ovn pod on NODE (`ovs-appctl dpctl/...` on the userspace datapath)
    Dpctl(NodePassArgs),
    /// Run ovs-appctl in the ovs-ovn pod on NODE
    Appctl(NodePassArgs),
    /// OVN Northbound database: status, kick, backup, dbstatus, restore
    Nb(DbArgs),
    /// OVN Southbound database: status, kick, backup, dbstatus, restore
    Sb(DbArgs),
    /// Capture a pod's traffic with tcpdump (inside the pod's network namespace)
    Tcpdump(TcpdumpArgs),
    /// Trace a packet through OVN logical flows and OVS OpenFlow
    #[command(after_help = TRACE_AFTER_HELP)]
    Trace(TraceArgs),
    /// Trace a packet through OVN logical flows only
    #[command(name = "ovn-trace", after_help = TRACE_AFTER_HELP)]
    OvnTrace(TraceArgs),
    /// Which OpenFlow rules a pod's real packets hit, which drops are growing, and whose they are
    #[command(after_help = FLOWS_AFTER_HELP)]
    Flows(FlowsArgs),
    /// Check that Kubernetes, OVN and OVS agree and that the control plane is healthy
    #[command(
        long_about = "Check that Kubernetes, OVN and OVS agree and that the control plane is healthy: Kube-OVN CRDs and workloads, NB/SB RAFT (one leader, members connected and caught up), one active ovn-northd, leader labels and ovn-nb/ovn-sb/ovn-northd EndpointSlices; per node: SB chassis, encap IP, ovn-controller, br-int flows, tunnels; version skew (ovn-northd vs each node's ovn-controller, OVS across nodes, with the numbers); per pod: its LSP, addresses vs annotations, Port_Binding chassis and up; then a connectivity matrix from the pinger pod on each node (pods, node IPs, kube-dns, --external-address). Where the pinger pods have /kube-ovn/kube-ovn-pinger it also runs `--mode=job` as upstream does, and a node's pinger-job check fails on the problems its log reports (upstream's job exits 0 after lost pings); the job gets --timeout, and a job cut there is judged on what it logged until then (upstream's job waits 30 s for each node that does not answer). Failures are listed first, each with a hint; -o json|yaml gives healthy and checks[].{name,scope,status,message,hint}.\n\n`kubectl ko diagnose` without a scope runs `all`, as the bash script does.\n\nExit codes: 0 healthy, 1 a check failed, 2 bad input (malformed IPPorts, an invalid name, Kube-OVN not found in the namespace), 3 the cluster could not be used or the node or subnet does not exist (like every other \"not found\"), 4 a call timed out."
    )]
    Diagnose(DiagnoseArgs),
    /// Check each node's environment (CNI config, sysctls, checksum errors, DNS, firewalls, geneve port)
    #[command(
        name = "env-check",
        long_about = "Check each node's environment from its kube-ovn-cni pod, like upstream's /kube-ovn/env-check.sh but as named checks (pass/warn/fail, node, message, hint): the CNI config in /etc/cni/net.d, net.ipv4.tcp_mtu_probing and tcp_tw_recycle, InCsumErrors in /proc/net/snmp (growing = fail), public search domains in /etc/resolv.conf, firewall/security-agent processes, and a UDP 6081 (geneve) listener. When the image has /kube-ovn/env-check.sh its output is included; --raw prints only that.\n\nExit codes: 0 no check failed, 1 a check failed (with --raw: a script is missing or failed), 3 the cluster could not be used."
    )]
    EnvCheck(EnvCheckArgs),
    /// Restart all Kube-OVN components (deletes their pods)
    Reload(ReloadArgs),
    /// Collect logs into ./kubectl-ko-log/<node>/...
    Log(LogArgs),
    /// Collect everything needed to report a problem into one .tar.gz (diagnose, OVN state, backups, flows, logs, objects)
    #[command(long_about = BUNDLE_LONG_ABOUT)]
    Bundle(BundleArgs),
    /// Network performance between test pods: latency, bandwidth, loss (qperf, iperf3, iperf)
    #[command(after_help = PERF_AFTER_HELP)]
    Perf(PerfArgs),
    /// Print the kubectl-ko version
    Version,
    /// Print a shell completion script
    Completion(CompletionArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DbAction {
    /// RAFT cluster status: members, roles, term, leader, connections, lag
    Status {
        /// Print ovn-appctl cluster/status output as upstream did
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Remove a server from the RAFT cluster (cluster/kick)
    Kick {
        /// Server ID (from `status`, 4 hex digits or the full UUID) or address
        sid: String,
        /// Do it without asking
        #[arg(long)]
        yes: bool,
    },
    /// Back up the database (cluster-to-standalone) into ./ovn<nb|sb>_db.<time>.backup
    Backup {
        /// Directory to write the backup into
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
    },
    /// NB and SB storage status (ok / inconsistent data) of every ovn-central pod, whichever of nb/sb is given
    Dbstatus {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Rebuild the RAFT cluster from the leader's data (takes a backup first)
    Restore {
        /// Do it without asking
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TcpdumpArgs {
    /// Pod as <namespace>/<name> (or <name> in namespace default)
    pub pod: String,
    /// tcpdump arguments; `-w FILE` writes a pcap file locally
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

const TRACE_AFTER_HELP: &str = "\
Examples:
  kubectl ko trace default/client-1 10.16.0.13 tcp 5432      pod to pod
  kubectl ko trace client-1 -n default 10.96.0.10 udp 53     through a Service
  kubectl ko trace default/client-1 default/db tcp 5432      to a pod by name
  kubectl ko trace default/client-1 svc/default/web tcp      to a Service (its ClusterIP and port)
  kubectl ko trace node//worker-1 10.16.0.7 icmp             from a node
  kubectl ko trace default/vm-1 10.16.0.1 arp request
  kubectl ko trace default/client-1 172.18.0.200 icmp        leaving the cluster
  kubectl ko trace default/client-1 10.16.0.13 tcp 5432 -o yaml   machine-readable
  kubectl ko trace default/client-1 10.16.0.13 tcp 5432 --full    every stage and table
  kubectl ko trace default/client-1 10.16.0.13 tcp 5432 --raw     the tools' own output

Text shows the verdict, then only the logical stages that decided the packet's
fate (dropped, rejected, load-balanced, routed, NATed, set the outport, hit an
ACL or port-security rule) with a count of those passed silently, then the OVS
hops; --full shows the whole annotated walk. -o json|yaml always has everything.

The verdict names the objects that decided: the ACL and its NetworkPolicy,
SecurityGroup or Subnet; the Service load balancer and backend; on a router,
the static route, the router policy (with what Kube-OVN made it for, e.g. the
29000 distributed-gateway reroute) and NAT rules (\"routed by\", `routing` in -o json).

The OVS path is labelled by the cluster itself: each OpenFlow rule's logical
flow (its cookie) names its stage, and ovn-controller's own tables are named
for the node's OVN release (23.03 to 26.03); a table not known for that
release is left unnamed. The header (and `versions` in -o json) shows the OVN
and OVS versions seen: ovn-northd, and ovn-controller and ovs-vswitchd on each
node traced; a mismatch between them is reported as a warning.

Verdicts (first line; `verdict` and `cause` in -o json): DELIVERED (the port that
owns the destination gets it), DROPPED, REJECTED (OVN answers the sender with a TCP
RST / ICMP unreachable), FLOODED (no port owns the destination; the copies are
listed), UNRESOLVED (a router waits for the ARP/ND answer of a next hop), ERROR.
The object to blame is named: NetworkPolicy, AdminNetworkPolicy and
BaselineAdminNetworkPolicy (with the rule, spec.ingress[i]), SecurityGroup (for
Kube-OVN's deny-all group, the pod's own groups), Subnet ACL, Service (also one
whose VIP Kube-OVN removed for lack of ready endpoints: no pod receives it, and
what the sender sees then is up to the node the packet is routed to), load
balancer, Vpc route or policy.
Warnings right under the verdict say when no ovn-northd is active or the SB is
behind the NB (a recent NB change is then not in the trace), and when an
ovn-controller on the path is down, disconnected or behind the SB, which makes
the OVS half stale. A broadcast or multicast destination without a MAC goes to
its group MAC (ff:ff:ff:ff:ff:ff, 01:00:5e:.., 33:33:..).

Exit codes: 0 the trace ran, whatever the verdict (like upstream's script), 2 usage,
3 could not run (pod Pending/not running/being deleted, node or leader missing),
5 error verdict (ovn-trace could not trace the packet). With --exit-code the verdict
decides: 0 delivered, 1 dropped/rejected/flooded/unresolved, 5 error.

--reply traces the reply direction too (icmp/tcp/udp): from the port the forward
packet was delivered to, back to the source, with conntrack state est,rpl (ovn-trace
--ct, ofproto/trace --ct-next). The first line says whether the round trip works,
then the forward verdict, then the reply's; with --exit-code the worse one decides.
The reply is traced only when the forward packet was delivered to a pod or node
port (a reply from outside OVN is not traced).";

/// `trace|ovn-trace <target> <dst-ip> [dst-mac] <icmp|tcp|udp> [port] | arp [request|reply]`
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Source: <namespace>/<pod>, <pod> (with -n), or node//<node>
    pub target: String,
    /// Destination: an IP address (upstream's form), <namespace>/<pod>,
    /// svc/<namespace>/<name> (its ClusterIP; its port when none is given) or node//<node>
    #[arg(value_name = "DESTINATION")]
    pub dst_ip: String,
    /// [dst-mac] <icmp|tcp|udp> [port] | [dst-mac] arp [request|reply]
    #[arg(num_args = 1..=3, required = true, value_name = "PROTO")]
    pub rest: Vec<String>,
    /// Namespace of the pod when TARGET has no namespace
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Print the tools' own traces as upstream did
    #[arg(long)]
    pub raw: bool,
    /// Text: every logical stage and OpenFlow table, annotated (default: the
    /// verdict, the decisive stages and the OVS hops)
    #[arg(long, alias = "detail", conflicts_with = "raw")]
    pub full: bool,
    /// Exit with the verdict: 0 delivered, 1 dropped/rejected/flooded/unresolved, 5 error
    /// (with --reply: the worse of the two directions)
    #[arg(long)]
    pub exit_code: bool,
    /// Also trace the way back: the server's reply (ports swapped, SYN+ACK or echo
    /// reply) as conntrack's established reply, from the port the packet was
    /// delivered to (a Service's chosen backend); one verdict per direction
    #[arg(long)]
    pub reply: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

const FLOWS_AFTER_HELP: &str = "\
Polls `ovs-ofctl dump-flows br-int` on the pod's node (and on the nodes of
--peer) once per --interval, keeps the rules that can carry the pod's packets
(in_port = its OVS port, metadata = its logical switch, reg14/reg15 = its port),
and shows the rules whose counters moved: packets/s, stage, what the rule does
and whose it is (ACL -> NetworkPolicy / AdminNetworkPolicy / SecurityGroup /
Subnet ACL, load balancer, route / router policy / NAT, logical switch port ->
pod). Growing
drops come first with their cause. A counter that other pods' packets also
move (a datapath-wide rule, another port's egress, a conjunctive match) is
marked shared. Counter resets (ovn-controller re-installing rules) are
detected and counted from zero, never shown as negative rates.

Views: on a terminal a live table refreshed in place until Ctrl-C (then a
summary); otherwise (or with --for) one summary after DURATION (default 5s).
-o json|yaml: intervals[].flows[].{table,stage,cookie,packets,bytes,rate_pps,
action,drop,owner,shared}, intervals[].drops[], drops[] (whole run), expect[].

Examples:
  kubectl ko flows default/db                         live, until Ctrl-C
  kubectl ko flows client-1 -n default --for 5s -o json
  kubectl ko flows default/client-1 --peer 10.16.0.13 --drops
  kubectl ko flows default/vm-1 --expect dhcp --for 30s  did DHCP requests reach the responder?

Exit codes: 0 no drop grew, 1 a drop grew during a --for run, 2 usage,
3 could not run (pod, node, leader or ovs-ovn missing), 5 a tool failed.";

/// `flows <ns/pod | pod -n ns> [--for D | --watch] [--interval D] [--peer X] [--expect W]`
#[derive(Debug, Clone, Args)]
pub struct FlowsArgs {
    /// Pod as <namespace>/<name>, or <name> with -n (default namespace `default`)
    pub pod: String,
    /// Namespace of the pod when POD has no namespace
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Watch for DURATION, then print one summary (default when stdout is not a terminal: 5s)
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION", conflicts_with = "watch")]
    pub for_: Option<Duration>,
    /// Live table until Ctrl-C, even when stdout is not a terminal
    #[arg(long)]
    pub watch: bool,
    /// Time between two dumps
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub interval: Duration,
    /// Also watch the path to/from this pod (<ns>/<name>) or IP: its datapath, port and node
    #[arg(long, value_name = "IP|POD")]
    pub peer: Vec<String>,
    /// Logical flows of the pod's switch real traffic should hit: dhcp, arp, a stage name (ls_in_dhcp_options), or match:<text> (repeatable)
    #[arg(long, value_name = "WHAT")]
    pub expect: Vec<String>,
    /// Show only dropping rules
    #[arg(long)]
    pub drops: bool,
    /// Show only rules whose stage contains TEXT (e.g. acl, lb, port_sec)
    #[arg(long, value_name = "TEXT")]
    pub stage: Option<String>,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// What to check; without one, `all` (as in the bash script)
    #[command(subcommand)]
    pub scope: Option<DiagnoseScope>,
    /// An address outside the cluster to test egress against
    #[arg(long, global = true, value_name = "IP")]
    pub external_address: Option<String>,
    /// Probe every source to every target, and run kube-ovn-pinger --mode=job in
    /// every pinger pod. By default, past 9 probing or 9 probed nodes each node
    /// probes 8 peer pods and 8 peer nodes (together covering every node and
    /// subnet) plus the control plane, Services and other shared targets, and the
    /// pinger job runs only in the pinger pods (at most 4) of nodes whose matrix
    /// row failed (each run pings every pinger pod and node, one after another)
    #[arg(long, global = true)]
    pub full_mesh: bool,
    /// Output format (also accepted after all/node/subnet/IPPorts)
    #[arg(short = 'o', long = "output", value_enum, global = true)]
    pub output: Option<OutputFormat>,
    /// Probe every node's TCP conn-check listener on this port (upstream's
    /// TCP_CONN_CHECK_PORT; default 8100 where kube-ovn-cni runs with
    /// --enable-verbose-conn-check, which otherwise turns these probes on)
    #[arg(long, env = "TCP_CONN_CHECK_PORT", global = true, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub tcp_conn_check_port: Option<u16>,
    /// Probe every node's UDP conn-check listener on this port (upstream's
    /// UDP_CONN_CHECK_PORT; default 8101, as for --tcp-conn-check-port)
    #[arg(long, env = "UDP_CONN_CHECK_PORT", global = true, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub udp_conn_check_port: Option<u16>,
    /// The cluster runs without kube-proxy: skip the kube-proxy check
    /// (upstream's WITHOUT_KUBE_PROXY=true; "false" or unset keeps the check)
    #[arg(long, env = "WITHOUT_KUBE_PROXY", global = true)]
    pub without_kube_proxy: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DiagnoseScope {
    /// Everything: control plane, every node, connectivity
    All,
    /// One node
    Node { node: String },
    /// One subnet
    Subnet { subnet: String },
    /// Connectivity from every node to <proto>-<ip>-<port>[,...], e.g. tcp-10.96.0.10-53
    ///
    /// From the pinger pod on each node. tcp: a connect (a refusal counts as
    /// reached). udp: one datagram; a reply or an ICMP port unreachable (reached,
    /// nothing listening) is ok, silence is "open|filtered" (a warning: a listener
    /// that ignores the datagram and a drop look alike), ICMP host unreachable fails.
    #[command(name = "IPPorts", alias = "ipports")]
    IpPorts { targets: String },
}

#[derive(Debug, Clone, Args)]
pub struct EnvCheckArgs {
    /// Print only the output of the image's /kube-ovn/env-check.sh, like upstream
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Args)]
pub struct ReloadArgs {
    /// Do it without asking
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogComponent {
    #[value(name = "kube-ovn")]
    KubeOvn,
    Ovn,
    Ovs,
    Linux,
    All,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Which logs to collect
    #[arg(value_enum)]
    pub component: LogComponent,
    /// Directory to write into
    #[arg(long, default_value = "kubectl-ko-log", value_name = "DIR")]
    pub dir: PathBuf,
}

const BUNDLE_LONG_ABOUT: &str = "\
Collect everything needed to report a Kube-OVN problem into one .tar.gz, to attach to an issue:
  diagnose.json                 kubectl ko diagnose all -o json
  ovn/{nb,sb}-status.json       kubectl ko nb|sb status -o json
  ovn/{nb,sb}-cluster-status.txt  ovn-appctl cluster/status in the leader
  ovn/dbstatus.json             kubectl ko nb dbstatus -o json
  ovn/ovn{nb,sb}_db.<time>.backup  kubectl ko nb|sb backup (checksum-verified)
  ovn/lflow-list.txt            ovn-sbctl lflow-list in the SB leader
  nodes/<node>/                 ovs-vsctl show, ovs-ofctl dump-flows br-int, OVN/OVS versions
  logs/<node>/                  kubectl ko log kube-ovn|ovn|ovs (ovn-controller, ovs-vswitchd, ...)
  kubeovn/<plural>.json         every kubeovn.io custom resource (subnets, vpcs, ips, ...)
  k8s/                          nodes, pods in the Kube-OVN namespace and Kube-OVN-annotated pods,
                                services, endpoints, networkpolicies (never Secrets or ConfigMaps)
  versions/                     kubectl-ko, and OVN/OVS in ovn-central
  MANIFEST, manifest.json       every file with its source command and size, and every item
                                that could not be collected with its error

Items are collected concurrently (8 at a time; a progress bar on a terminal). The archive is
written to a hidden temporary file next to the destination and renamed into place when
complete: on an error or Ctrl-C (exit 130) nothing is left behind (Ctrl-C also removes the
backups' temporary copies from the ovn-central pods). Prints the path and
`N items (B bytes), M failed`; -o json|yaml gives the manifest.

Exit codes: 0 the bundle was written (items that failed are listed in it), 1 nothing could be
collected, 3 the cluster could not be used, 6 the file could not be written, 130 Ctrl-C.";

#[derive(Debug, Clone, Args)]
pub struct BundleArgs {
    /// Where to write the bundle (default: ./kubectl-ko-bundle-<time>.tar.gz)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Tests `perf --only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PerfTest {
    /// pod to pod across nodes
    Pod,
    /// hostNetwork pod to hostNetwork pod (node to node)
    Host,
    /// pod to a Service VIP (OVN load balancer)
    Service,
    /// pod and host multicast with iperf 2
    Multicast,
}

const PERF_AFTER_HELP: &str = "\
Creates pods test-server and test-host-server (hostNetwork) on the first node, test-client
and test-host-client (hostNetwork) on the second (label app=PerfTest, in the Kube-OVN
namespace), a Service and an OVN load balancer test-server (waiting up to 10 s for every
chassis to install it); starts qperf and iperf3 -s over exec and measures from the clients. Everything is removed afterwards, also on error
or Ctrl-C. Refuses to start if app=PerfTest objects exist (another run) unless --force.

Examples:
  kubectl ko perf                                   upstream's test image, all tests
  kubectl ko perf --duration 2 --sizes 64,1k -o json
  kubectl ko perf --only pod,host my-registry/kube-ovn-test:v1.13.0
  kubectl ko perf --leader-recover --yes            also time OVN leader recovery (deletes pods)

Exit codes: 0 all measured, 1 a measurement or the cleanup failed (see the errors),
2 usage or not confirmed, 3 could not run (pods not Ready, no NB leader), 130 Ctrl-C.";

#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// Test image with qperf, iperf3 and iperf
    #[arg(default_value = "docker.io/kubeovn/test:v1.13.0")]
    pub image: String,
    /// Seconds each measurement runs
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECS")]
    pub duration: u64,
    /// Message sizes in bytes (k = 1024), comma-separated
    #[arg(long, default_value = "64,128,512,1k,4k", value_parser = parse_sizes_arg, value_name = "LIST")]
    pub sizes: Sizes,
    /// Tests to run, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "pod,host,service,multicast",
        value_name = "LIST"
    )]
    pub only: Vec<PerfTest>,
    /// Parallel iperf3 streams
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=128), value_name = "N")]
    pub parallel: u32,
    /// Node for the servers (default: the first node)
    #[arg(long, value_name = "NODE")]
    pub server_node: Option<String>,
    /// Node for the clients (default: another node than the servers')
    #[arg(long, value_name = "NODE")]
    pub client_node: Option<String>,
    /// How long to wait for the test pods to be Ready
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub ready_timeout: Duration,
    /// Also time OVN NB/SB/northd leader recovery by deleting the leader pods (needs --yes)
    #[arg(long)]
    pub leader_recover: bool,
    /// Confirm --leader-recover
    #[arg(long)]
    pub yes: bool,
    /// Delete app=PerfTest objects left by an earlier run before starting
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Subcommands whose arguments (after an optional leading word, see
/// [`passthrough_lead`]) are forwarded verbatim.
const PASSTHROUGH: &[(&str, usize)] = &[
    ("nbctl", 0),
    ("sbctl", 0),
    ("icnbctl", 0),
    ("icsbctl", 0),
    ("vsctl", 1),
    ("ofctl", 1),
    ("dpctl", 1),
    ("appctl", 1),
    ("tcpdump", 1),
];

/// How many leading words (node or pod) a passthrough subcommand takes before its raw arguments.
pub fn passthrough_lead(sub: &str) -> Option<usize> {
    PASSTHROUGH.iter().find(|(n, _)| *n == sub).map(|(_, l)| *l)
}

/// Parse the command line. clap would swallow the first `--` of a
/// passthrough command (`vsctl n1 -- --if-exists del-br x`), so the raw
/// arguments of passthrough subcommands are taken from argv as they are and
/// only the part before them goes through clap.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let Some(sub_at) = subcommand_index(&args) else {
        return Cli::try_parse_from(args);
    };
    let Some(lead) = args[sub_at].to_str().and_then(passthrough_lead) else {
        return Cli::try_parse_from(args);
    };
    let lead_end = sub_at + 1 + lead;
    // `vsctl --help` / a missing node: let clap explain.
    let lead_words = &args[sub_at + 1..args.len().min(lead_end)];
    if lead_words.len() < lead
        || lead_words
            .iter()
            .any(|w| w.to_string_lossy().starts_with('-'))
    {
        return Cli::try_parse_from(args);
    }
    let mut raw = Vec::with_capacity(args.len() - lead_end);
    for a in &args[lead_end..] {
        match a.to_str() {
            Some(s) => raw.push(s.to_string()),
            None => {
                return Err(Cli::command().error(
                    clap::error::ErrorKind::InvalidUtf8,
                    format!("argument {a:?} is not valid UTF-8; the Kubernetes exec API only carries UTF-8 text"),
                ));
            }
        }
    }
    let mut cli = Cli::try_parse_from(&args[..lead_end])?;
    match &mut cli.command {
        Command::Nbctl(p) | Command::Sbctl(p) | Command::Icnbctl(p) | Command::Icsbctl(p) => {
            p.args = raw
        }
        Command::Vsctl(p) | Command::Ofctl(p) | Command::Dpctl(p) | Command::Appctl(p) => {
            p.args = raw
        }
        Command::Tcpdump(t) => t.args = raw,
        _ => {}
    }
    Ok(cli)
}

/// Index of the subcommand word in argv, skipping global options and their values.
fn subcommand_index(args: &[std::ffi::OsString]) -> Option<usize> {
    let cmd = Cli::command();
    let takes_value = |word: &str| -> Option<bool> {
        // Some(true) = option that takes a separate value, Some(false) = flag or
        // inline value, None = not an option.
        if let Some(long) = word.strip_prefix("--") {
            if long.contains('=') {
                return Some(false);
            }
            let a = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
            return Some(a.get_action().takes_values());
        }
        let short = word.strip_prefix('-')?;
        let c = short.chars().next()?;
        let a = cmd.get_arguments().find(|a| a.get_short() == Some(c))?;
        Some(a.get_action().takes_values() && short.len() == 1)
    };
    let mut i = 1;
    while i < args.len() {
        let w = args[i].to_str()?;
        if w == "--" {
            return None;
        }
        if w.starts_with('-') && w.len() > 1 {
            match takes_value(w) {
                Some(true) => i += 2,
                Some(false) => i += 1,
                None => return None,
            }
            continue;
        }
        return Some(i);
    }
    None
}

/// Parse `30s`, `2m`, `500ms`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 30s, 2m, 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}; use ms, s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

// `perf --sizes`: parsed here, where clap reads it.

/// A message size as given on the command line (`64`, `1k`, `4k`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgSize {
    /// As the user wrote it; passed to qperf/iperf unchanged.
    pub label: String,
    pub bytes: u32,
}

/// Largest UDP payload over IPv4 (iperf3 refuses more).
const MAX_MSG: u32 = 65507;

/// Parse `64`, `1k`, `4K`, `1m` (k = 1024, like qperf and iperf).
pub fn parse_size(s: &str) -> Result<MsgSize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024u64),
        Some((i, 'm' | 'M')) => (&t[..i], 1024 * 1024),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not a message size; use bytes or k, e.g. 64,128,512,1k,4k")
    })?;
    let bytes = n.saturating_mul(mult);
    if bytes == 0 || bytes > u64::from(MAX_MSG) {
        return Err(format!(
            "message size {s:?} must be between 1 and {MAX_MSG} bytes (largest UDP datagram)"
        ));
    }
    Ok(MsgSize {
        label: t.to_string(),
        bytes: bytes as u32,
    })
}

/// The parsed `--sizes` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<MsgSize>);

/// clap value parser for `--sizes`.
pub fn parse_sizes_arg(s: &str) -> Result<Sizes, String> {
    parse_sizes(s).map(Sizes)
}

/// `--sizes 64,128,1k`.
pub fn parse_sizes(s: &str) -> Result<Vec<MsgSize>, String> {
    let sizes = s
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(parse_size)
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() {
        return Err("give at least one message size, e.g. --sizes 64,1k".into());
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3d").is_err());
    }

    fn parse(args: &[&str]) -> Cli {
        parse_from(std::iter::once("kubectl-ko").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn passthrough_keeps_arguments_exactly() {
        let cli = parse(&["nbctl", "--format=csv", "list", "Logical_Switch"]);
        let Command::Nbctl(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.args, ["--format=csv", "list", "Logical_Switch"]);

        let cli = parse(&["nbctl", "-v", "--help", "--", "a b", "'q'", ";", "x=y"]);
        let Command::Nbctl(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.args, ["-v", "--help", "--", "a b", "'q'", ";", "x=y"]);

        let cli = parse(&["vsctl", "node1", "--", "--columns=name", "list", "bridge"]);
        let Command::Vsctl(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.node, "node1");
        assert_eq!(p.args, ["--", "--columns=name", "list", "bridge"]);

        let cli = parse(&[
            "-v",
            "--timeout",
            "5s",
            "nbctl",
            "--",
            "--may-exist",
            "ls-add",
            "x",
        ]);
        let Command::Nbctl(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.args, ["--", "--may-exist", "ls-add", "x"]);
        assert_eq!(cli.global.verbose, 1);

        let cli = parse(&[
            "-ojson",
            "--context=c",
            "tcpdump",
            "ns/p",
            "-c",
            "3",
            "--",
            "icmp",
        ]);
        let Command::Tcpdump(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.pod, "ns/p");
        assert_eq!(t.args, ["-c", "3", "--", "icmp"]);

        let cli = parse(&["appctl", "node1", "-t", "ovn-controller", "--help"]);
        let Command::Appctl(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.args, ["-t", "ovn-controller", "--help"]);
    }

    #[test]
    fn trace_forms() {
        let cli = parse(&["trace", "default/p1", "10.16.0.9", "tcp", "80"]);
        let Command::Trace(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.rest, ["tcp", "80"]);
        let cli = parse(&[
            "ovn-trace",
            "node//n1",
            "10.16.0.9",
            "aa:bb:cc:dd:ee:ff",
            "arp",
            "reply",
        ]);
        let Command::OvnTrace(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.target, "node//n1");
        assert_eq!(t.rest.len(), 3);
    }

    #[test]
    fn global_options_before_subcommand() {
        let cli = parse(&[
            "--kube-ovn-namespace",
            "kube-ovn",
            "-o",
            "json",
            "nb",
            "status",
        ]);
        assert_eq!(cli.global.kube_ovn_namespace, "kube-ovn");
        assert_eq!(cli.global.output, OutputFormat::Json);
        let cli = parse(&["nb", "status", "-o", "yaml"]);
        let Command::Nb(DbArgs {
            action: DbAction::Status { output, .. },
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!(output.output, Some(OutputFormat::Yaml));
    }
}
