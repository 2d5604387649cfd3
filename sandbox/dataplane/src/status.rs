//! `status`: what is running, who leads RAFT, which faults are active, and the
//! documented traffic pairs tests rely on. Text for people, `-o json` for tests.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::argv;
use crate::ctx::Ctx;
use crate::exec::{in_pod, run_raw};
use crate::fault;
use crate::plan::{self, Pod};
use crate::state::Paths;

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Is the daemon whose pidfile is `<pod dir>/<sub>/<file>` running?
pub fn daemon_running(ctx: &Ctx, pod: &Pod, sub: &str, file: &str) -> bool {
    std::fs::read_to_string(ctx.pod_dir(pod, sub).join(file))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(pid_alive)
}

/// RAFT role of a central pod's NB or SB member ("leader", "follower", ... or "down").
pub fn raft_role(ctx: &Ctx, pod: &Pod, db: &str, dbname: &str) -> String {
    let Ok(pid) = ctx.pid(pod) else {
        return "down".into();
    };
    let ctl = format!("/var/run/ovn/{db}.ctl");
    let out = run_raw(
        &in_pod(
            pid,
            &argv!["ovn-appctl", "-t", ctl, "cluster/status", dbname],
        ),
        None,
        std::time::Duration::from_secs(5),
    );
    match out {
        Ok(o) if o.ok() => o
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("Role:").map(|r| r.trim().to_string()))
            .unwrap_or_else(|| "unknown".into()),
        _ => "down".into(),
    }
}

/// What the daemons of a pod report when asked `version` (their running binaries,
/// not what is installed): {"ovn": "25.03.0", "ovs": "3.5.0"}; null for pods without
/// OVN daemons, a field null when its daemon does not answer.
pub fn running_versions(ctx: &Ctx, pod: &Pod) -> Value {
    let (ovn_ask, ovs_ask) = match pod.role {
        plan::Role::OvnCentral => (
            argv!["ovn-appctl", "-t", "ovn-northd", "version"],
            argv!["ovs-appctl", "-t", "/var/run/ovn/ovnnb_db.ctl", "version"],
        ),
        plan::Role::OvsOvn => (
            argv!["ovn-appctl", "-t", "ovn-controller", "version"],
            argv!["ovs-appctl", "-t", "ovs-vswitchd", "version"],
        ),
        _ => return Value::Null,
    };
    let Ok(pid) = ctx.pid(pod) else {
        return Value::Null;
    };
    let ask = |a: &[String]| -> Value {
        run_raw(&in_pod(pid, a), None, std::time::Duration::from_secs(5))
            .ok()
            .filter(|o| o.ok())
            .and_then(|o| o.stdout.lines().next().and_then(crate::image::version_of))
            .map_or(Value::Null, Value::String)
    };
    json!({"ovn": ask(&ovn_ask), "ovs": ask(&ovs_ask)})
}

pub fn collect(paths: &Paths) -> Result<Value> {
    let ctx = Ctx::load(paths.clone())?;
    let plan = &ctx.plan;
    let ready = std::fs::read_to_string(paths.ready_file()).ok();
    let api_port = crate::api::port(paths).ok();
    let api_ok = api_port
        .and_then(|p| crate::api::request(p, "GET", "/version", None).ok())
        .is_some_and(|(c, _)| c == 200);
    let nodes: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| {
            let ovs = ctx.ovs_pod(n.index - 1).ok();
            json!({
                "name": n.name, "netns": n.netns, "ip4": n.ip4, "ip6": n.ip6,
                "join_ip4": n.join_ip4, "join_ip6": n.join_ip6, "central": n.central,
                "ovn_controller": ovs.is_some_and(|o| daemon_running(&ctx, o, "run-ovn", "ovn-controller.pid")),
                "ovs_vswitchd": ovs.is_some_and(|o| daemon_running(&ctx, o, "run-ovs", "ovs-vswitchd.pid")),
            })
        })
        .collect();
    // Asked concurrently: two `version` calls per ovn-central/ovs-ovn pod.
    let versions: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .pods
            .iter()
            .map(|p| s.spawn(|| running_versions(&ctx, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Value::Null))
            .collect()
    });
    let pods: Vec<Value> = plan
        .pods
        .iter()
        .zip(versions)
        .map(|(p, versions)| {
            let pid = ctx.pid(p).ok();
            json!({
                "namespace": p.namespace, "name": p.name, "node": plan.nodes[p.node].name,
                "ip4": p.ip4, "ip6": p.ip6, "netns": p.netns, "host_network": p.host_network,
                "subnet": p.subnet, "container": p.container, "pid": pid, "veth": p.veth,
                "alive": pid.is_some_and(pid_alive),
                "root": if ctx.image_of(p).is_some() { "image" } else { "host" },
                "versions": versions,
            })
        })
        .collect();
    let central: Vec<Value> = plan
        .central_pods()
        .into_iter()
        .map(|p| {
            json!({
                "pod": p.name, "node": plan.nodes[p.node].name,
                "nb": raft_role(&ctx, p, "ovnnb_db", "OVN_Northbound"),
                "sb": raft_role(&ctx, p, "ovnsb_db", "OVN_Southbound"),
                "northd": daemon_running(&ctx, p, "run-ovn", "ovn-northd.pid"),
            })
        })
        .collect();
    let leader = |db: &str| {
        central
            .iter()
            .find(|c| c[db] == "leader")
            .map(|c| c["pod"].clone())
            .unwrap_or(Value::Null)
    };
    let ul = plan.subnet(plan::UNDERLAY_SUBNET);
    let vpc = plan.subnet(plan::VPC_SUBNET);
    let pods_in = |subnet: &str| -> Vec<String> {
        plan.pods
            .iter()
            .filter(|p| p.subnet.as_deref() == Some(subnet))
            .map(|p| p.key())
            .collect()
    };
    let mut problems: Vec<String> = Vec::new();
    if ready.is_none() {
        problems.push("up did not complete".into());
    }
    for p in pods.iter().filter(|p| p["alive"] != true) {
        problems.push(format!(
            "holder of {}/{} is not running",
            p["namespace"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or("")
        ));
    }
    if !api_ok {
        problems.push("the API emulator does not answer".into());
    }
    for n in nodes.iter().filter(|n| n["ovn_controller"] != true) {
        problems.push(format!(
            "ovn-controller on {} is not running",
            n["name"].as_str().unwrap_or("")
        ));
    }
    for c in &central {
        for db in ["nb", "sb"] {
            if c[db] == "down" {
                problems.push(format!(
                    "{} member of {} is down",
                    db.to_uppercase(),
                    c["pod"].as_str().unwrap_or("")
                ));
            }
        }
    }
    let kubelet_pid = crate::kubelet::running_pid(paths);
    let kubelet_pods: Vec<Value> = crate::kubelet::managed(paths)
        .values()
        .map(|m| {
            json!({
                "namespace": m.pod.namespace, "name": m.pod.name,
                "node": plan.nodes.get(m.pod.node).map(|n| n.name.clone()),
                "ip4": m.pod.ip4, "ip6": m.pod.ip6, "netns": m.pod.netns,
                "host_network": m.pod.host_network, "pid": m.pid, "alive": pid_alive(m.pid),
            })
        })
        .collect();
    if ready.is_some() && kubelet_pid.is_none() {
        problems.push(
            "the sandbox kubelet is not running (pods created through the API stay Pending); `up` starts it again"
                .into(),
        );
    }
    let controller_pid = crate::controller::running_pid(paths);
    if ready.is_some() && controller_pid.is_none() {
        problems.push(
            "the sandbox controller is not running (NetworkPolicies, Services and SecurityGroups no longer reach the NB); `up` starts it again"
                .into(),
        );
    }
    let faults = fault::active(paths);
    if !faults.is_empty() {
        problems.push(format!("{} fault(s) active", faults.len()));
    }
    Ok(json!({
        "name": plan.name,
        "up": ready.is_some(),
        "healthy": problems.is_empty(),
        "problems": problems,
        "up_seconds": ready.and_then(|s| s.trim().parse::<f64>().ok()),
        "kubeconfig": paths.kubeconfig().display().to_string(),
        "api_port": api_port,
        "api_answers": api_ok,
        "dual_stack": plan.dual_stack,
        "kube_proxy": plan.kube_proxy,
        "ovn": {"version": plan.ovn, "image": plan.image},
        "nodes": nodes,
        "central": central,
        "nb_leader": leader("nb"),
        "sb_leader": leader("sb"),
        "pods": pods,
        "network_policy": plan.policy,
        "underlay": {
            "subnet": plan::UNDERLAY_SUBNET, "cidr": ul.map(|s| s.cidr_block()),
            "gateway": ul.map(|s| s.gateway()), "gateway_netns": plan.netns_gw,
            "provider_network": plan::PROVIDER, "vlan": plan::VLAN, "pods": pods_in(plan::UNDERLAY_SUBNET),
        },
        "custom_vpc": {
            "vpc": plan::VPC_NAME, "namespace": plan::VPC_NAMESPACE, "subnet": plan::VPC_SUBNET,
            "cidr": vpc.map(|s| s.cidr_block()), "pods": pods_in(plan::VPC_SUBNET),
        },
        "external_host": plan.external,
        "services": plan.services.iter().map(|s| json!({
            "namespace": s.namespace, "name": s.name, "cluster_ip4": s.cluster_ip4,
            "cluster_ip6": s.cluster_ip6, "backends": s.backends,
        })).collect::<Vec<_>>(),
        "faults": faults,
        "kubelet": {"pid": kubelet_pid, "running": kubelet_pid.is_some(), "pods": kubelet_pods},
        "controller": {"pid": controller_pid, "running": controller_pid.is_some(),
                       "passes": crate::controller::passes(paths)},
    }))
}

/// The text report (`status` without `-o json`).
pub fn render_text(v: &Value) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    macro_rules! line {
        ($($arg:tt)*) => {{
            let _ = writeln!(out, $($arg)*);
        }};
    }
    let s = |x: &Value| x.as_str().unwrap_or("-").to_string();
    line!(
        "sandbox {}: {}{}",
        s(&v["name"]),
        if v["healthy"] == true {
            "up and healthy"
        } else if v["up"] == true {
            "up but DEGRADED"
        } else {
            "not up"
        },
        v["up_seconds"]
            .as_f64()
            .map(|t| format!(" (started in {t:.1}s)"))
            .unwrap_or_default()
    );
    for p in v["problems"].as_array().into_iter().flatten() {
        line!("  problem: {}", s(p));
    }
    line!("KUBECONFIG={}", s(&v["kubeconfig"]));
    line!("dual-stack: {}", v["dual_stack"]);
    line!("kube-proxy: {}", v["kube_proxy"]);
    line!(
        "OVN {} from {}",
        s(&v["ovn"]["version"]),
        v["ovn"]["image"]
            .as_str()
            .map(|i| format!("the image {i} (ovn-central, ovs-ovn, kube-ovn-cni, pinger pods)"))
            .unwrap_or_else(|| "the host's packages".into())
    );
    line!("nodes:");
    for n in v["nodes"].as_array().into_iter().flatten() {
        line!(
            "  {:<24} {:<12} join {:<12} netns {:<14} {}ovn-controller {}",
            s(&n["name"]),
            s(&n["ip4"]),
            s(&n["join_ip4"]),
            s(&n["netns"]),
            if n["central"] == true {
                "ovn-central, "
            } else {
                ""
            },
            if n["ovn_controller"] == true {
                "running"
            } else {
                "STOPPED"
            }
        );
    }
    let pods = v["pods"].as_array().cloned().unwrap_or_default();
    let alive = pods.iter().filter(|p| p["alive"] == true).count();
    line!("pods: {alive}/{} holders alive", pods.len());
    for p in pods.iter().filter(|p| p["versions"].is_object()) {
        line!(
            "  {:<32} running OVN {} OVS {}",
            s(&p["name"]),
            s(&p["versions"]["ovn"]),
            s(&p["versions"]["ovs"])
        );
    }
    for c in v["central"].as_array().into_iter().flatten() {
        line!(
            "  {:<32} on {:<24} NB {:<9} SB {:<9} northd {}",
            s(&c["pod"]),
            s(&c["node"]),
            s(&c["nb"]),
            s(&c["sb"]),
            if c["northd"] == true {
                "running"
            } else {
                "STOPPED"
            }
        );
    }
    let np = &v["network_policy"];
    line!(
        "NetworkPolicy {} on {} ({}): allowed {} ({}) -> it; denied {} ({}) -> it",
        s(&np["policy"]),
        s(&np["target"]),
        s(&np["target_ip"]),
        s(&np["allowed_from"]),
        s(&np["allowed_from_ip"]),
        s(&np["denied_from"]),
        s(&np["denied_from_ip"])
    );
    let ul = &v["underlay"];
    line!(
        "underlay: subnet {} {} gateway {} (netns {}), pods {}",
        s(&ul["subnet"]),
        s(&ul["cidr"]),
        s(&ul["gateway"]),
        s(&ul["gateway_netns"]),
        ul["pods"]
    );
    let vpc = &v["custom_vpc"];
    line!(
        "custom VPC {}: subnet {} {}, pods {}",
        s(&vpc["vpc"]),
        s(&vpc["subnet"]),
        s(&vpc["cidr"]),
        vpc["pods"]
    );
    line!(
        "external host: {} (netns {})",
        s(&v["external_host"]["ip4"]),
        s(&v["external_host"]["netns"])
    );
    for svc in v["services"].as_array().into_iter().flatten() {
        if svc["backends"].as_array().is_some_and(|b| !b.is_empty()) {
            line!(
                "service {}/{} {} -> {}",
                s(&svc["namespace"]),
                s(&svc["name"]),
                s(&svc["cluster_ip4"]),
                svc["backends"]
            );
        }
    }
    let k = &v["kubelet"];
    let kpods = k["pods"].as_array().cloned().unwrap_or_default();
    line!(
        "kubelet: {}, {} pod(s) created through the API",
        k["pid"]
            .as_u64()
            .map(|p| format!("running (pid {p})"))
            .unwrap_or_else(|| "NOT RUNNING".into()),
        kpods.len()
    );
    for p in kpods {
        line!(
            "  {}/{} on {} {}",
            s(&p["namespace"]),
            s(&p["name"]),
            s(&p["node"]),
            s(&p["ip4"])
        );
    }
    let c = &v["controller"];
    line!(
        "controller: {}, {} reconcile pass(es)",
        c["pid"]
            .as_u64()
            .map(|p| format!("running (pid {p})"))
            .unwrap_or_else(|| "NOT RUNNING".into()),
        c["passes"].as_u64().unwrap_or(0)
    );
    let faults = v["faults"].as_array().cloned().unwrap_or_default();
    if faults.is_empty() {
        line!("faults: none");
    } else {
        line!("faults ({}; `fault heal` restores):", faults.len());
        for f in faults {
            line!("  {f}");
        }
    }
    out
}
