//! `env-check`: upstream runs `/kube-ovn/env-check.sh` in every kube-ovn-cni pod and
//! prints whatever it echoes. Here the same questions are asked natively, through
//! exec with argv arrays in each node's kube-ovn-cni pod (files under /proc and /etc,
//! the process list), and answered as named checks (pass/warn/fail, node, message,
//! hint). When the image has the script it is run too and its output kept (`--raw`
//! prints only that, like upstream).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use crate::check::{Check, Scope, Status};
use crate::cli::EnvCheckArgs;
use crate::cluster::{Cluster, Output, PodRef, container, locate::unusable_reason};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{Render, Style};

const SCRIPT: &str = "/kube-ovn/env-check.sh";
const CNI_DIR: &str = "/etc/cni/net.d";
const MTU_PROBING: &str = "/proc/sys/net/ipv4/tcp_mtu_probing";
const TW_RECYCLE: &str = "/proc/sys/net/ipv4/tcp_tw_recycle";
const RESOLV_CONF: &str = "/etc/resolv.conf";
const SNMP: &str = "/proc/net/snmp";
const UDP: &str = "/proc/net/udp";
const UDP6: &str = "/proc/net/udp6";
const GENEVE_PORT: u16 = 6081;
/// Process-name fragments upstream's script looks for: host firewalls and security
/// agents that are known to drop or mangle cross-node traffic.
const SECURITY_NAMES: &[&str] = &["firewall", "security", "qax", "safe", "defence", "vmsec"];

/// The node files read in one exec (see [`files_argv`]) and split back by path.
const FILES: [&str; 6] = [MTU_PROBING, TW_RECYCLE, RESOLV_CONF, SNMP, UDP, UDP6];

/// The files read in one exec: `grep -s -H .` prints `path:line` for every non-empty
/// line of the files that exist and skips the others (tcp_tw_recycle is gone since
/// Linux 4.12).
fn files_argv() -> Vec<&'static str> {
    let mut argv = vec!["grep", "-s", "-H", "."];
    argv.extend(FILES);
    argv
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvCheckReport {
    /// No check failed.
    pub healthy: bool,
    pub nodes: Vec<NodeEnv>,
    #[serde(skip)]
    raw: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeEnv {
    pub node: String,
    /// The kube-ovn-cni pod the checks ran in.
    pub pod: String,
    pub checks: Vec<Check>,
    /// `/kube-ovn/env-check.sh`'s output, when the image has the script.
    pub script: Option<ScriptRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScriptRun {
    pub exit_code: i32,
    pub output: String,
}

fn tag(s: &Style, st: Status) -> String {
    match st {
        Status::Fail => s.bad("FAIL"),
        Status::Warn => s.warn("WARN"),
        Status::Pass => s.ok("PASS"),
    }
}

impl Render for EnvCheckReport {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        if self.raw {
            for n in &self.nodes {
                writeln!(out, "=== {SCRIPT} on node {} ({})", n.node, n.pod)?;
                match &n.script {
                    Some(r) => {
                        out.write_all(r.output.as_bytes())?;
                        if !r.output.is_empty() && !r.output.ends_with('\n') {
                            writeln!(out)?;
                        }
                        if r.exit_code != 0 {
                            writeln!(out, "{}", s.bad(&format!("exit {}", r.exit_code)))?;
                        }
                    }
                    None => writeln!(out, "{}", s.bad(&format!("{SCRIPT} is not in this image")))?,
                }
            }
            return Ok(());
        }
        let all: Vec<&Check> = self.nodes.iter().flat_map(|n| &n.checks).collect();
        let count = |st: Status| all.iter().filter(|c| c.status == st).count();
        let verdict = if self.healthy {
            s.ok("OK")
        } else {
            s.bad("PROBLEMS")
        };
        writeln!(
            out,
            "env-check on {} node(s): {verdict} — {} failed, {} warnings, {} passed",
            self.nodes.len(),
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Pass)
        )?;
        for n in &self.nodes {
            writeln!(out)?;
            writeln!(out, "{}", s.bold(&format!("node {} ({})", n.node, n.pod)))?;
            let mut checks: Vec<&Check> = n.checks.iter().collect();
            checks.sort_by_key(|c| c.status);
            for c in checks {
                writeln!(out, "  {} {:<18} {}", tag(s, c.status), c.name, c.message)?;
                if !c.hint.is_empty() && c.status != Status::Pass {
                    writeln!(out, "       {} {}", s.dim("hint:"), c.hint)?;
                }
            }
            if let Some(r) = &n.script {
                writeln!(
                    out,
                    "  {} (exit {}):",
                    s.dim(&format!("output of {SCRIPT}")),
                    r.exit_code
                )?;
                for l in r.output.lines() {
                    writeln!(out, "    {l}")?;
                }
            }
        }
        Ok(())
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// `path → lines` from `grep -H` output. Paths are the ones asked for, so the split
/// is on the known prefix, not on the first ':' (values contain colons).
pub fn split_grep<'a>(text: &'a str, paths: &[&str]) -> BTreeMap<String, Vec<&'a str>> {
    let mut out: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for line in text.lines() {
        for p in paths {
            if let Some(rest) = line.strip_prefix(p).and_then(|r| r.strip_prefix(':')) {
                out.entry(p.to_string()).or_default().push(rest);
                break;
            }
        }
    }
    out
}

pub fn cni_config(node: &str, listing: &std::result::Result<Output, String>) -> Check {
    let scope = Scope::node(node);
    let hint_dir = format!(
        "kube-ovn-cni writes its config to {CNI_DIR} at start: check the kube-ovn-cni pod on {node} (`kubectl -n <ns> logs <pod> -c cni-server`)"
    );
    let o = match listing {
        Err(e) => {
            return Check::warn(
                "cni-config",
                scope,
                format!("could not list {CNI_DIR}: {e}"),
                "",
            );
        }
        Ok(o) => o,
    };
    if !o.success() {
        return Check::fail(
            "cni-config",
            scope,
            format!(
                "{CNI_DIR} is missing or unreadable: {}",
                o.stderr_str().trim()
            ),
            hint_dir,
        );
    }
    let files: Vec<String> = o
        .stdout_str()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let ours: Vec<&String> = files
        .iter()
        .filter(|f| f.contains("kube-ovn.conflist"))
        .collect();
    let others: Vec<&String> = files
        .iter()
        .filter(|f| !f.contains("kube-ovn.conflist"))
        .collect();
    if ours.is_empty() {
        return Check::fail(
            "cni-config",
            scope,
            format!(
                "no kube-ovn conflist in {CNI_DIR} (found: {})",
                if files.is_empty() {
                    "nothing".to_string()
                } else {
                    files.join(", ")
                }
            ),
            hint_dir,
        );
    }
    if !others.is_empty() {
        let list: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
        return Check::warn(
            "cni-config",
            scope,
            format!(
                "{CNI_DIR} has other CNI configs besides {}: {}",
                ours[0],
                list.join(", ")
            ),
            "the kubelet uses the first config by name: remove configs of other CNIs that are no longer in use",
        );
    }
    Check::pass(
        "cni-config",
        scope,
        format!("{CNI_DIR} has {} only", ours[0]),
    )
}

fn sysctl_value(files: &BTreeMap<String, Vec<&str>>, path: &str) -> Option<i64> {
    files.get(path)?.first()?.trim().parse().ok()
}

pub fn mtu_probing(node: &str, files: &BTreeMap<String, Vec<&str>>) -> Check {
    let scope = Scope::node(node);
    match sysctl_value(files, MTU_PROBING) {
        None => Check::warn(
            "tcp-mtu-probing",
            scope,
            format!("could not read {MTU_PROBING}"),
            "",
        ),
        Some(0) => Check::warn(
            "tcp-mtu-probing",
            scope,
            "net.ipv4.tcp_mtu_probing is 0: TCP will not discover a smaller path MTU when ICMP 'fragmentation needed' is lost",
            "set it to 1 on the node (`sysctl -w net.ipv4.tcp_mtu_probing=1`, and in /etc/sysctl.d to keep it)",
        ),
        Some(v) => Check::pass(
            "tcp-mtu-probing",
            scope,
            format!("net.ipv4.tcp_mtu_probing is {v}"),
        ),
    }
}

pub fn tw_recycle(node: &str, files: &BTreeMap<String, Vec<&str>>) -> Check {
    let scope = Scope::node(node);
    match sysctl_value(files, TW_RECYCLE) {
        None => Check::pass(
            "tcp-tw-recycle",
            scope,
            "net.ipv4.tcp_tw_recycle does not exist (removed in Linux 4.12)",
        ),
        Some(1) => Check::fail(
            "tcp-tw-recycle",
            scope,
            "net.ipv4.tcp_tw_recycle is 1: connections through NodePort Services from clients behind NAT get dropped",
            "set it to 0 on the node (`sysctl -w net.ipv4.tcp_tw_recycle=0`, and in /etc/sysctl.d to keep it)",
        ),
        Some(v) => Check::pass(
            "tcp-tw-recycle",
            scope,
            format!("net.ipv4.tcp_tw_recycle is {v}"),
        ),
    }
}

/// `InCsumErrors` per protocol from /proc/net/snmp (header line, value line).
pub fn csum_errors(snmp: &[&str]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for pair in snmp.windows(2) {
        let (Some((p1, head)), Some((p2, vals))) =
            (pair[0].split_once(':'), pair[1].split_once(':'))
        else {
            continue;
        };
        if p1 != p2 || head.trim().starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let heads: Vec<&str> = head.split_whitespace().collect();
        let values: Vec<&str> = vals.split_whitespace().collect();
        if heads.len() != values.len() || !values.iter().all(|v| v.parse::<i64>().is_ok()) {
            continue;
        }
        if let Some(i) = heads.iter().position(|h| *h == "InCsumErrors")
            && let Ok(n) = values[i].parse::<u64>()
        {
            out.insert(p1.to_string(), n);
        }
    }
    out
}

/// `before` is the first reading; `after` a second one a second later, taken only
/// when the first had errors (a count that grows is what matters).
pub fn checksum(
    node: &str,
    before: &BTreeMap<String, u64>,
    after: Option<&BTreeMap<String, u64>>,
) -> Check {
    let scope = Scope::node(node);
    if before.is_empty() {
        return Check::warn(
            "checksum-errors",
            scope,
            format!("no InCsumErrors counters in {SNMP}"),
            "",
        );
    }
    let nonzero: Vec<String> = before
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    if nonzero.is_empty() {
        return Check::pass(
            "checksum-errors",
            scope,
            "InCsumErrors is 0 for every protocol",
        );
    }
    let hint = "if it keeps growing, turn checksum offload off on the NIC that carries pod traffic (`ethtool -K <nic> tx off`)";
    let growing: Vec<String> = after
        .map(|a| {
            a.iter()
                .filter(|(p, n)| before.get(*p).is_some_and(|b| *n > b))
                .map(|(p, n)| format!("{p} {} → {n}", before.get(p).copied().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    if growing.is_empty() {
        Check::warn(
            "checksum-errors",
            scope,
            format!(
                "packets with bad checksums were received ({}), not growing over 1 s",
                nonzero.join(", ")
            ),
            hint,
        )
    } else {
        Check::fail(
            "checksum-errors",
            scope,
            format!(
                "packets with bad checksums are arriving now (InCsumErrors {})",
                growing.join(", ")
            ),
            hint,
        )
    }
}

pub fn dns(node: &str, files: &BTreeMap<String, Vec<&str>>) -> Check {
    let scope = Scope::node(node);
    let Some(lines) = files.get(RESOLV_CONF) else {
        return Check::warn(
            "dns-search",
            scope,
            format!("could not read {RESOLV_CONF}"),
            "",
        );
    };
    let mut search = Vec::new();
    let mut servers = Vec::new();
    for l in lines {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("search" | "domain") => search.extend(w.map(String::from)),
            Some("nameserver") => servers.extend(w.next().map(String::from)),
            _ => {}
        }
    }
    let public: Vec<&String> = search.iter().filter(|d| d.contains(".com")).collect();
    let summary = format!(
        "search [{}], nameservers [{}]",
        search.join(" "),
        servers.join(" ")
    );
    if public.is_empty() {
        Check::pass("dns-search", scope, summary)
    } else {
        Check::warn(
            "dns-search",
            scope,
            format!(
                "{RESOLV_CONF} searches public domains ({}): {summary}",
                public
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "pods inherit the node's search list: with ndots:5 every lookup of a short name also goes to these domains; make sure they are intended",
        )
    }
}

pub fn security(node: &str, comms: &std::result::Result<Output, String>) -> Check {
    let scope = Scope::node(node);
    let o = match comms {
        Ok(o) if o.success() => o,
        Ok(o) => {
            return Check::warn(
                "security-software",
                scope,
                format!(
                    "could not list processes: ps exited {}: {}",
                    o.exit_code,
                    o.stderr_str().trim()
                ),
                "",
            );
        }
        Err(e) => {
            return Check::warn(
                "security-software",
                scope,
                format!("could not list processes: {e}"),
                "",
            );
        }
    };
    let text = o.stdout_str();
    let mut found: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|c| {
            let lc = c.to_ascii_lowercase();
            SECURITY_NAMES.iter().any(|n| lc.contains(n))
        })
        .map(String::from)
        .collect();
    found.sort();
    found.dedup();
    if found.is_empty() {
        Check::pass(
            "security-software",
            scope,
            "no firewall or security agent process (firewalld, *security*, *qax*, *safe*, *defence*, *vmsec*)",
        )
    } else {
        Check::warn(
            "security-software",
            scope,
            format!("running: {}", found.join(", ")),
            "host firewalls and security agents can drop geneve (UDP 6081) and pod traffic between nodes: make sure their rules allow it",
        )
    }
}

/// Whether a UDP socket is bound to `port` in /proc/net/udp or udp6 lines.
pub fn udp_listening(lines: &[&str], port: u16) -> bool {
    let want = format!("{port:04X}");
    lines.iter().any(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|local| local.rsplit_once(':'))
            .is_some_and(|(_, p)| p.eq_ignore_ascii_case(&want))
    })
}

/// The socket lines of /proc/net/udp and udp6.
fn udp_lines<'a>(files: &BTreeMap<String, Vec<&'a str>>) -> Vec<&'a str> {
    [UDP, UDP6]
        .iter()
        .filter_map(|p| files.get(*p))
        .flatten()
        .copied()
        .collect()
}

pub fn geneve(
    node: &str,
    files: &BTreeMap<String, Vec<&str>>,
    node_count: usize,
    datapath_type: Option<&str>,
) -> Check {
    let scope = Scope::node(node);
    if udp_listening(&udp_lines(files), GENEVE_PORT) {
        return Check::pass(
            "geneve-port",
            scope,
            format!("a UDP socket is bound to port {GENEVE_PORT} (geneve)"),
        );
    }
    if datapath_type == Some("netdev") {
        return Check::pass(
            "geneve-port",
            scope,
            format!(
                "no kernel socket on UDP {GENEVE_PORT}, as expected: br-int uses the userspace (netdev) datapath, which receives geneve in ovs-vswitchd"
            ),
        );
    }
    let hint = format!(
        "check the ovs-ovn pod on {node} (`kubectl ko vsctl {node} show` lists the geneve ports) and that nothing else holds UDP {GENEVE_PORT}"
    );
    if node_count <= 1 {
        return Check::warn(
            "geneve-port",
            scope,
            format!("nothing listens on UDP {GENEVE_PORT}; harmless while this is the only node"),
            hint,
        );
    }
    Check::fail(
        "geneve-port",
        scope,
        format!(
            "nothing listens on UDP {GENEVE_PORT}: geneve traffic from the other nodes cannot arrive"
        ),
        hint,
    )
}

async fn exec(
    cluster: &Cluster,
    pod: &PodRef,
    argv: &[&str],
) -> std::result::Result<Output, String> {
    let c = pod.container_or_default(container::CNI_SERVER);
    cluster
        .exec_capture(pod, c, argv)
        .await
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
}

/// Process names on the node (kube-ovn-cni runs with hostPID): `ps`, or where the
/// image has none, every `/proc/<pid>/comm` through find (still an argv, no shell).
async fn process_names(cluster: &Cluster, pod: &PodRef) -> std::result::Result<Output, String> {
    let ps = exec(cluster, pod, &["ps", "-e", "-o", "comm="]).await;
    if matches!(&ps, Ok(o) if o.success()) {
        return ps;
    }
    let argv = [
        "find",
        "/proc",
        "-mindepth",
        "2",
        "-maxdepth",
        "2",
        "-name",
        "comm",
        "-exec",
        "cat",
        "{}",
        "+",
    ];
    match exec(cluster, pod, &argv).await {
        // Processes that exit during the walk make find exit 1; the rest were read.
        Ok(mut o) if !o.stdout.is_empty() => {
            o.exit_code = 0;
            Ok(o)
        }
        _ => ps,
    }
}

async fn run_script(cluster: &Cluster, pod: &PodRef) -> Option<ScriptRun> {
    match exec(cluster, pod, &["test", "-f", SCRIPT]).await {
        Ok(o) if o.success() => {}
        _ => return None,
    }
    Some(match exec(cluster, pod, &["bash", SCRIPT]).await {
        Ok(o) => ScriptRun {
            exit_code: o.exit_code,
            output: format!("{}{}", o.stdout_str(), o.stderr_str()),
        },
        Err(e) => ScriptRun {
            exit_code: -1,
            output: format!("{e}\n"),
        },
    })
}

async fn check_node(cluster: &Cluster, pod: &Pod, node_count: usize, raw: bool) -> NodeEnv {
    let r = PodRef::from_pod(pod);
    let node = r.node.clone().unwrap_or_else(|| "?".into());
    let mut env = NodeEnv {
        node: node.clone(),
        pod: r.name.clone(),
        checks: Vec::new(),
        script: None,
    };
    if let Some(why) = unusable_reason(pod) {
        env.checks.push(Check::fail(
            "cni-pod",
            Scope::node(&node),
            format!("kube-ovn-cni pod {} is not usable: {why}", r.name),
            format!("`kubectl -n {} describe pod {}`", r.namespace, r.name),
        ));
        return env;
    }
    if raw {
        env.script = run_script(cluster, &r).await;
        return env;
    }
    let files_argv = files_argv();
    let (listing, files, comms, script) = tokio::join!(
        exec(cluster, &r, &["ls", "-1A", CNI_DIR]),
        exec(cluster, &r, &files_argv),
        process_names(cluster, &r),
        run_script(cluster, &r),
    );
    env.script = script;
    env.checks.push(cni_config(&node, &listing));
    let text = match files {
        // grep exits 2 when a listed file is missing (tcp_tw_recycle); the lines of
        // the others are still there.
        Ok(o) => o.stdout_str(),
        Err(e) => {
            env.checks.push(Check::fail(
                "cni-pod",
                Scope::node(&node),
                format!("could not read the node's settings in pod {}: {e}", r.name),
                "kubectl-ko needs create on pods/exec in the Kube-OVN namespace",
            ));
            return env;
        }
    };
    let files = split_grep(&text, &FILES);
    env.checks.push(mtu_probing(&node, &files));
    env.checks.push(tw_recycle(&node, &files));
    env.checks.push(dns(&node, &files));
    env.checks.push(security(&node, &comms));

    let before = csum_errors(files.get(SNMP).map(Vec::as_slice).unwrap_or_default());
    let after = if before.values().any(|n| *n > 0) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match exec(cluster, &r, &["cat", SNMP]).await {
            Ok(o) if o.success() => {
                let t = o.stdout_str();
                let lines: Vec<&str> = t.lines().collect();
                Some(csum_errors(&lines))
            }
            _ => None,
        }
    } else {
        None
    };
    env.checks.push(checksum(&node, &before, after.as_ref()));

    let datapath = if udp_listening(&udp_lines(&files), GENEVE_PORT) {
        None
    } else {
        exec(
            cluster,
            &r,
            &[
                "ovs-vsctl",
                "--timeout=5",
                "--if-exists",
                "get",
                "Bridge",
                "br-int",
                "datapath_type",
            ],
        )
        .await
        .ok()
        .filter(Output::success)
        .map(|o| o.stdout_str().trim().trim_matches('"').to_string())
    };
    env.checks
        .push(geneve(&node, &files, node_count, datapath.as_deref()));
    env
}

pub async fn env_check(ctx: &Ctx, args: &EnvCheckArgs) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let ns = cluster.namespace().to_string();
    let pods = cluster
        .list_pods(Some(&ns), Some("app=kube-ovn-cni"))
        .await?;
    if pods.is_empty() {
        return Err(Error::Cluster(crate::cluster::Error::NotFound {
            what: format!("kube-ovn-cni pods (app=kube-ovn-cni) in namespace {ns}"),
            detail: String::new(),
            hint: "pass --kube-ovn-namespace (or KUBE_OVN_NS) if Kube-OVN runs elsewhere".into(),
        }));
    }
    let n = pods.len();
    let mut nodes = join_all(pods.iter().map(|p| check_node(cluster, p, n, args.raw))).await;
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let failed = if args.raw {
        nodes
            .iter()
            .any(|n| n.script.as_ref().is_none_or(|s| s.exit_code != 0))
    } else {
        nodes
            .iter()
            .flat_map(|n| &n.checks)
            .any(|c| c.status == Status::Fail)
    };
    let report = EnvCheckReport {
        healthy: !failed,
        nodes,
        raw: args.raw,
    };
    Ok(Outcome::report(
        report,
        ctx.output(args.output.output),
        i32::from(failed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        ko_testkit::fixture!(&format!("env-check/{name}"))
    }

    fn out(stdout: &str, code: i32) -> std::result::Result<Output, String> {
        Ok(Output {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            exit_code: code,
        })
    }

    #[test]
    fn sandbox_node_files() {
        let text = fixture("files.txt");
        let files = split_grep(&text, &FILES);
        assert_eq!(sysctl_value(&files, MTU_PROBING), Some(0));
        assert_eq!(mtu_probing("n", &files).status, Status::Warn);
        // Linux ≥ 4.12 has no tcp_tw_recycle.
        assert!(!files.contains_key(TW_RECYCLE));
        assert_eq!(tw_recycle("n", &files).status, Status::Pass);
        let counters = csum_errors(&files[SNMP]);
        for p in ["Icmp", "Tcp", "Udp", "UdpLite"] {
            assert!(counters.contains_key(p), "{counters:?}");
        }
        assert_eq!(dns("n", &files).status, Status::Pass);
        // The sandbox's userspace datapath has no kernel geneve socket.
        assert!(!udp_listening(&files[UDP], GENEVE_PORT));
        assert_eq!(geneve("n", &files, 3, Some("netdev")).status, Status::Pass);
        assert_eq!(geneve("n", &files, 3, Some("system")).status, Status::Fail);
        assert_eq!(geneve("n", &files, 1, None).status, Status::Warn);
    }

    #[test]
    fn cni_dir_listing() {
        let ok = cni_config("n", &out(&fixture("ls-cni.txt"), 0));
        assert_eq!(ok.status, Status::Pass, "{ok:?}");
        let extra = cni_config("n", &out("01-kube-ovn.conflist\n10-flannel.conflist\n", 0));
        assert_eq!(extra.status, Status::Warn);
        assert!(extra.message.contains("10-flannel.conflist"));
        assert_eq!(
            cni_config("n", &out("10-calico.conflist\n", 0)).status,
            Status::Fail
        );
        assert_eq!(cni_config("n", &out("", 2)).status, Status::Fail);
    }

    #[test]
    fn kernel_geneve_socket_and_sysctls() {
        // A kernel-datapath node: the geneve vport's socket on 0.0.0.0:6081.
        let udp = format!(
            "{UDP}:  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n{UDP}:  1: 00000000:17C1 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0000000000000000 0\n{MTU_PROBING}:1\n{TW_RECYCLE}:1\n{RESOLV_CONF}:search corp.example.com\n"
        );
        let files = split_grep(&udp, &FILES);
        assert_eq!(geneve("n", &files, 3, None).status, Status::Pass);
        assert_eq!(mtu_probing("n", &files).status, Status::Pass);
        assert_eq!(tw_recycle("n", &files).status, Status::Fail);
        assert_eq!(dns("n", &files).status, Status::Warn);
    }

    #[test]
    fn checksum_errors_that_grow_fail() {
        let snmp =
            "Tcp: RtoAlgorithm InCsumErrors\nTcp: 1 5\nUdp: InDatagrams InCsumErrors\nUdp: 10 0\n";
        let lines: Vec<&str> = snmp.lines().collect();
        let before = csum_errors(&lines);
        assert_eq!(before["Tcp"], 5);
        assert_eq!(checksum("n", &before, Some(&before)).status, Status::Warn);
        let mut after = before.clone();
        after.insert("Tcp".into(), 9);
        let c = checksum("n", &before, Some(&after));
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("Tcp 5 → 9"), "{}", c.message);
        let zero = csum_errors(&["Tcp: InCsumErrors", "Tcp: 0"]);
        assert_eq!(checksum("n", &zero, None).status, Status::Pass);
    }

    #[test]
    fn security_processes() {
        let c = security("n", &out("systemd\nfirewalld\nsshd\nfirewalld\n", 0));
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.message, "running: firewalld");
        let ps = fixture("ps.txt");
        // The sandbox node runs no firewall or security agent.
        let c = security("n", &out(&ps, 0));
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert_eq!(security("n", &out("", 1)).status, Status::Warn);
    }

    #[test]
    fn garbage_never_panics() {
        for t in [
            "",
            ":",
            "a:b:c",
            "\u{0}",
            "/proc/net/snmp:Tcp:",
            "/proc/net/udp: 1: zz",
        ] {
            let files = split_grep(t, &FILES);
            let _ = (
                mtu_probing("n", &files),
                tw_recycle("n", &files),
                dns("n", &files),
                geneve("n", &files, 2, None),
                csum_errors(files.get(SNMP).map(Vec::as_slice).unwrap_or_default()),
            );
        }
    }
}
