//! Reading the connectivity matrix: each probe classified, then one check per
//! source row. A Service that does not answer is a warning (see below). A probe that gets no answer to a target (or from a source)
//! that a NetworkPolicy selects is reported as `blocked-by-policy` and makes
//! the row a warning, not a failure: the policy explains it, and an operator
//! reading "blocked by NetworkPolicy ns/np" knows whether that is intended.

use crate::check::{Check, Scope};
use crate::cmd::diagnose::model::{Matrix, ProbeResult, Source, Target, TargetKind};
use crate::cmd::diagnose::probe::{PingOutcome, TcpOutcome, UDP_WAIT_SECS, UdpOutcome};

/// Classify one ping.
pub fn classify_ping(
    outcome: &PingOutcome,
    source: &Source,
    target: &Target,
) -> (ProbeResult, String) {
    match outcome {
        PingOutcome::Reply { detail } => (ProbeResult::Ok, detail.clone()),
        PingOutcome::NoReply { detail } => no_answer(detail, source, target),
        PingOutcome::Error { detail } => (ProbeResult::Error, detail.clone()),
    }
}

/// Classify one TCP connect.
pub fn classify_tcp(
    outcome: &TcpOutcome,
    source: &Source,
    target: &Target,
) -> (ProbeResult, String) {
    match outcome {
        TcpOutcome::Connected => (ProbeResult::Ok, "TCP connected".into()),
        // a refusal is an RST from the far side: the path works, nothing listens
        TcpOutcome::Refused => (
            ProbeResult::Ok,
            "connection refused (reached, nothing listening)".into(),
        ),
        TcpOutcome::TimedOut => no_answer("TCP connect timed out", source, target),
        TcpOutcome::Error { detail } => (ProbeResult::Error, detail.clone()),
    }
}

pub fn classify_udp(
    outcome: &UdpOutcome,
    source: &Source,
    target: &Target,
) -> (ProbeResult, String) {
    match outcome {
        UdpOutcome::Reply => (ProbeResult::Ok, "UDP reply".into()),
        // like a TCP refusal: the far side's kernel answered
        UdpOutcome::Closed => (
            ProbeResult::Ok,
            "ICMP port unreachable (reached, nothing listening)".into(),
        ),
        UdpOutcome::NoReply => {
            let detail = format!(
                "no reply and no ICMP port unreachable within {UDP_WAIT_SECS} s: open|filtered (a listener that ignores this datagram, or a drop on the path)"
            );
            match no_answer(&detail, source, target) {
                (ProbeResult::Unreachable, d) => (ProbeResult::OpenOrFiltered, d),
                other => other,
            }
        }
        UdpOutcome::Unreachable { detail } => (ProbeResult::Unreachable, detail.clone()),
        UdpOutcome::Error { detail } => (ProbeResult::Error, detail.clone()),
    }
}

fn no_answer(detail: &str, source: &Source, target: &Target) -> (ProbeResult, String) {
    let mut pols: Vec<String> = target
        .policies
        .iter()
        .map(|p| format!("NetworkPolicy {p} (ingress of {})", target.label))
        .collect();
    pols.extend(
        source
            .policies
            .iter()
            .map(|p| format!("NetworkPolicy {p} (egress of {})", source.pod)),
    );
    if pols.is_empty() {
        (ProbeResult::Unreachable, detail.to_string())
    } else {
        (
            ProbeResult::BlockedByPolicy,
            format!("{detail}; explained by {}", pols.join(", ")),
        )
    }
}

/// One check per source row.
pub fn matrix_checks(m: &Matrix) -> Vec<Check> {
    let mut out = Vec::new();
    for (i, src) in m.sources.iter().enumerate() {
        let scope = if src.policy_probe {
            match src.pod.split_once('/') {
                Some((ns, name)) => Scope::pod(ns, name),
                None => Scope::node(&src.node),
            }
        } else {
            Scope::node(&src.node)
        };
        let mut failed = Vec::new();
        // warnings, by reason: each reason gets its own sentence and hint
        let mut blocked = Vec::new();
        let mut svc_silent = Vec::new();
        let mut not_runnable = Vec::new();
        let mut udp_silent = Vec::new();
        // the first failing / policy-blocked target: hints name a real command
        let mut first_failed: Option<&Target> = None;
        let mut first_blocked: Option<&Target> = None;
        let mut ok = 0;
        for p in m.probes.iter().filter(|p| p.from == i) {
            let Some(t) = m.targets.get(p.to) else {
                continue;
            };
            let what = format!("{} {} ({})", kind_word(t.kind), t.label, t.address);
            match p.result {
                ProbeResult::Ok => ok += 1,
                ProbeResult::BlockedByPolicy => {
                    first_blocked.get_or_insert(t);
                    blocked.push(format!("{what}: {}", p.detail))
                }
                // A Service that does not take a TCP connect may be a broken
                // load balancer or just backends that do not listen on that
                // port: a warning (the backends' readiness is its own check).
                ProbeResult::Unreachable if t.kind == TargetKind::Service => {
                    svc_silent.push(format!("{what}: {}", p.detail))
                }
                // a workload pod may lack ping: that says nothing about the network
                ProbeResult::Error if src.policy_probe => {
                    not_runnable.push(format!("{what}: {}", p.detail))
                }
                ProbeResult::OpenOrFiltered => udp_silent.push(format!("{what}: {}", p.detail)),
                ProbeResult::Unreachable | ProbeResult::Error => {
                    first_failed.get_or_insert(t);
                    failed.push(format!("{what}: {}", p.detail))
                }
            }
        }
        let from = format!("from pod {} on {}", src.pod, src.node);
        let warned = blocked.len() + svc_silent.len() + not_runnable.len() + udp_silent.len();
        if !failed.is_empty() {
            out.push(Check::fail(
                "connectivity",
                scope,
                format!(
                    "{from}: {} of {} probes failed: {}",
                    failed.len(),
                    ok + failed.len() + warned,
                    failed.join("; ")
                ),
                format!(
                    "trace one failing path: `{}`",
                    trace_command(&src.pod, first_failed)
                ),
            ));
        } else if warned > 0 {
            let mut parts = vec![format!("{from}: {ok} of {} probes answered", ok + warned)];
            let mut hints = Vec::new();
            let mut say = |items: &[String], what: &str, hint: String| {
                if !items.is_empty() {
                    parts.push(format!("{} {what}: {}", items.len(), items.join("; ")));
                    hints.push(hint);
                }
            };
            say(
                &blocked,
                "blocked by NetworkPolicy (expected if the policy is intended)",
                format!(
                    "if that traffic should pass, fix the policy ({}); `{}` names the dropping ACL",
                    describe_policies(first_blocked),
                    trace_command(&src.pod, first_blocked)
                ),
            );
            say(
                &svc_silent,
                "Service did not take a TCP connection",
                "check the Service's backends listen on its targetPort (`kubectl get endpointslices -n <ns>`)".into(),
            );
            say(
                &not_runnable,
                "probe could not run in this workload pod (says nothing about the network)",
                "the workload image may lack ping/curl/bash".into(),
            );
            say(
                &udp_silent,
                "UDP target open|filtered",
                "silence is what a UDP listener that ignores unknown datagrams also gives; check with the service's own client (e.g. `dig` for DNS)".into(),
            );
            out.push(Check::warn(
                "connectivity",
                scope,
                parts.join("; "),
                hints.join("; "),
            ));
        } else {
            out.push(Check::pass(
                "connectivity",
                scope,
                format!("{from}: all {ok} probes answered"),
            ));
        }
    }
    out
}

/// `kubectl ko trace <pod> <ip> icmp` (or `tcp|udp <port>` for ip:port
/// targets), ready to paste; `<dst-ip>` only when there is no target.
fn trace_command(pod: &str, t: Option<&Target>) -> String {
    let Some(t) = t else {
        return format!("kubectl ko trace {pod} <dst-ip> icmp");
    };
    match t.ip_port() {
        Some((ip, port)) => {
            let proto = if t.is_udp() { "udp" } else { "tcp" };
            format!("kubectl ko trace {pod} {ip} {proto} {port}")
        }
        None => format!("kubectl ko trace {pod} {} icmp", t.address),
    }
}

/// `kubectl describe networkpolicy -n <ns> <name>` for the target's policies.
fn describe_policies(t: Option<&Target>) -> String {
    let cmds: Vec<String> = t
        .map(|t| t.policies.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.split_once('/'))
        .map(|(ns, name)| format!("`kubectl describe networkpolicy -n {ns} {name}`"))
        .collect();
    if cmds.is_empty() {
        "`kubectl describe networkpolicy -n <ns> <name>`".into()
    } else {
        cmds.join(", ")
    }
}

fn kind_word(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Pod => "pod",
        TargetKind::Node => "node",
        TargetKind::Service => "service",
        TargetKind::External => "external",
        TargetKind::IpPort => "target",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::cmd::diagnose::model::Probe;
    use crate::cmd::diagnose::probe::parse_ping;

    fn fx(name: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/ping/{name}"))
    }

    fn src(node: &str) -> Source {
        Source {
            node: node.into(),
            pod: format!("kube-system/pinger-{node}"),
            ip: "10.16.0.2".into(),
            policies: vec![],
            policy_probe: false,
        }
    }
    fn tgt(label: &str, policies: &[&str]) -> Target {
        Target {
            kind: TargetKind::Pod,
            label: label.into(),
            address: "10.16.0.9".into(),
            node: Some("n2".into()),
            policies: policies.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn no_reply_to_a_policy_target_is_blocked_not_failed() {
        let timeout = parse_ping(1, &fx("timeout.txt"), "");
        let (r, d) = classify_ping(
            &timeout,
            &src("n1"),
            &tgt("default/web", &["default/deny-web"]),
        );
        assert_eq!(r, ProbeResult::BlockedByPolicy);
        assert!(d.contains("default/deny-web"));
        let (r, _) = classify_ping(&timeout, &src("n1"), &tgt("default/web", &[]));
        assert_eq!(r, ProbeResult::Unreachable);
        let reply = parse_ping(0, &fx("reply.txt"), "");
        assert_eq!(
            classify_ping(&reply, &src("n1"), &tgt("x", &["a/b"])).0,
            ProbeResult::Ok
        );
    }

    #[test]
    fn trace_commands_follow_the_target_kind() {
        let mut t = tgt("x", &[]);
        t.kind = TargetKind::IpPort;
        t.label = "udp-fd00::a-53".into();
        t.address = "[fd00::a]:53".into();
        assert_eq!(
            trace_command("ns/p", Some(&t)),
            "kubectl ko trace ns/p fd00::a udp 53"
        );
        t.kind = TargetKind::Service;
        t.label = "kube-system/kube-dns".into();
        t.address = "10.96.0.10:53".into();
        assert_eq!(
            trace_command("ns/p", Some(&t)),
            "kubectl ko trace ns/p 10.96.0.10 tcp 53"
        );
        // a Service is TCP even in a namespace whose name starts with "udp-"
        t.label = "udp-apps/dns".into();
        assert_eq!(
            trace_command("ns/p", Some(&t)),
            "kubectl ko trace ns/p 10.96.0.10 tcp 53"
        );
        assert_eq!(
            trace_command("ns/p", None),
            "kubectl ko trace ns/p <dst-ip> icmp"
        );
    }

    #[test]
    fn rows_become_checks() {
        let m = Matrix {
            strategy: Default::default(),
            execs: 0,
            sources: vec![src("n1"), src("n2")],
            targets: vec![
                tgt("kube-system/p2", &[]),
                tgt("default/web", &["default/deny-web"]),
            ],
            probes: vec![
                Probe {
                    from: 0,
                    to: 0,
                    result: ProbeResult::Ok,
                    detail: String::new(),
                },
                Probe {
                    from: 0,
                    to: 1,
                    result: ProbeResult::BlockedByPolicy,
                    detail: "x".into(),
                },
                Probe {
                    from: 1,
                    to: 0,
                    result: ProbeResult::Unreachable,
                    detail: "0 received".into(),
                },
            ],
        };
        let cs = matrix_checks(&m);
        assert_eq!(cs[0].status, Status::Warn);
        assert_eq!(cs[1].status, Status::Fail);
        assert_eq!(cs[1].scope, Scope::node("n2"));
        assert!(cs[1].message.contains("kube-system/p2"));
        // hints are commands to paste: the real source, destination and policy
        let dst = &m.targets[0].address;
        assert!(
            cs[1]
                .hint
                .contains(&format!("kubectl ko trace {} {dst} icmp", m.sources[1].pod)),
            "{}",
            cs[1].hint
        );
        assert!(
            cs[0]
                .hint
                .contains("kubectl describe networkpolicy -n default deny-web")
                && cs[0].hint.contains(&m.targets[1].address),
            "{}",
            cs[0].hint
        );
        let mut svc = m.clone();
        svc.targets[1].kind = TargetKind::Service;
        svc.targets[1].policies.clear();
        svc.probes[1].result = ProbeResult::Unreachable;
        svc.probes.truncate(2);
        let cs = matrix_checks(&svc);
        assert_eq!(cs[0].status, Status::Warn, "{cs:#?}");
        assert!(
            cs[0]
                .message
                .contains("Service did not take a TCP connection")
        );
        // UDP silence is a warning of its own kind, never a failure
        let mut udp = m.clone();
        udp.probes[1].result = ProbeResult::OpenOrFiltered;
        udp.probes.truncate(2);
        let cs = matrix_checks(&udp);
        assert_eq!(cs[0].status, Status::Warn, "{cs:#?}");
        assert!(cs[0].message.contains("open|filtered"), "{cs:#?}");
        assert!(!cs[0].message.contains("NetworkPolicy"), "{cs:#?}");
    }
}
