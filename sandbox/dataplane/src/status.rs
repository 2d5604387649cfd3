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
    let nodes = node_rows(&ctx);
    let pods = pod_rows(&ctx);
    let central = central_rows(&ctx);
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
    let kubelet_pid = crate::kubelet::running_pid(paths);
    let kubelet_pods = kubelet_rows(paths, plan);
    let controller_pid = crate::controller::running_pid(paths);
    let faults = fault::active(paths);
    // "healthy" and "problems" are judged from the rest once it is gathered
    let mut v = json!({
        "name": plan.name,
        "up": ready.is_some(),
        "healthy": false,
        "problems": [],
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
    });
    let problems = problems(&v);
    v["healthy"] = json!(problems.is_empty());
    v["problems"] = json!(problems);
    Ok(v)
}

/// One row per node: addresses, and whether ovn-controller and ovs-vswitchd run.
fn node_rows(ctx: &Ctx) -> Vec<Value> {
    ctx.plan
        .nodes
        .iter()
        .map(|n| {
            let ovs = ctx.ovs_pod(n.index - 1).ok();
            json!({
                "name": n.name, "netns": n.netns, "ip4": n.ip4, "ip6": n.ip6,
                "join_ip4": n.join_ip4, "join_ip6": n.join_ip6, "central": n.central,
                "ovn_controller": ovs.is_some_and(|o| daemon_running(ctx, o, "run-ovn", "ovn-controller.pid")),
                "ovs_vswitchd": ovs.is_some_and(|o| daemon_running(ctx, o, "run-ovs", "ovs-vswitchd.pid")),
            })
        })
        .collect()
}

/// One row per planned pod: addresses, its holder, the OVN/OVS it runs.
fn pod_rows(ctx: &Ctx) -> Vec<Value> {
    let plan = &ctx.plan;
    // Asked concurrently: two `version` calls per ovn-central/ovs-ovn pod.
    let versions: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .pods
            .iter()
            .map(|p| s.spawn(|| running_versions(ctx, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Value::Null))
            .collect()
    });
    plan.pods
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
        .collect()
}

/// One row per ovn-central pod: its NB and SB RAFT roles, and northd.
fn central_rows(ctx: &Ctx) -> Vec<Value> {
    let plan = &ctx.plan;
    plan.central_pods()
        .into_iter()
        .map(|p| {
            json!({
                "pod": p.name, "node": plan.nodes[p.node].name,
                "nb": raft_role(ctx, p, "ovnnb_db", "OVN_Northbound"),
                "sb": raft_role(ctx, p, "ovnsb_db", "OVN_Southbound"),
                "northd": daemon_running(ctx, p, "run-ovn", "ovn-northd.pid"),
            })
        })
        .collect()
}

/// The pods the sandbox kubelet runs (created through the API after `up`).
fn kubelet_rows(paths: &Paths, plan: &plan::Plan) -> Vec<Value> {
    crate::kubelet::managed(paths)
        .values()
        .map(|m| {
            json!({
                "namespace": m.pod.namespace, "name": m.pod.name,
                "node": plan.nodes.get(m.pod.node).map(|n| n.name.clone()),
                "ip4": m.pod.ip4, "ip6": m.pod.ip6, "netns": m.pod.netns,
                "host_network": m.pod.host_network, "pid": m.pid, "alive": pid_alive(m.pid),
            })
        })
        .collect()
}

/// What is wrong, read off the gathered status.
fn problems(v: &Value) -> Vec<String> {
    let up = v["up"] == true;
    let mut problems: Vec<String> = Vec::new();
    if !up {
        problems.push("up did not complete".into());
    }
    for p in v["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["alive"] != true)
    {
        problems.push(format!(
            "holder of {}/{} is not running",
            p["namespace"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or("")
        ));
    }
    if v["api_answers"] != true {
        problems.push("the API emulator does not answer".into());
    }
    for n in v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["ovn_controller"] != true)
    {
        problems.push(format!(
            "ovn-controller on {} is not running",
            n["name"].as_str().unwrap_or("")
        ));
    }
    for c in v["central"].as_array().into_iter().flatten() {
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
    if up && v["kubelet"]["running"] != true {
        problems.push(
            "the sandbox kubelet is not running (pods created through the API stay Pending); `up` starts it again"
                .into(),
        );
    }
    if up && v["controller"]["running"] != true {
        problems.push(
            "the sandbox controller is not running (NetworkPolicies, Services and SecurityGroups no longer reach the NB); `up` starts it again"
                .into(),
        );
    }
    let faults = v["faults"].as_array().map_or(0, Vec::len);
    if faults > 0 {
        problems.push(format!("{faults} fault(s) active"));
    }
    problems
}

/// Writes one line of the text report (writing to a String cannot fail).
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// A string field of the status, or `-`.
fn text(x: &Value) -> String {
    x.as_str().unwrap_or("-").to_string()
}

/// The text report (`status` without `-o json`).
pub fn render_text(v: &Value) -> String {
    let mut out = String::new();
    render_summary(v, &mut out);
    render_members(v, &mut out);
    render_topology(v, &mut out);
    render_background(v, &mut out);
    out
}

/// Health and problems, the kubeconfig, the OVN in use.
fn render_summary(v: &Value, out: &mut String) {
    line!(
        out,
        "sandbox {}: {}{}",
        text(&v["name"]),
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
        line!(out, "  problem: {}", text(p));
    }
    line!(out, "KUBECONFIG={}", text(&v["kubeconfig"]));
    line!(out, "dual-stack: {}", v["dual_stack"]);
    line!(out, "kube-proxy: {}", v["kube_proxy"]);
    line!(
        out,
        "OVN {} from {}",
        text(&v["ovn"]["version"]),
        v["ovn"]["image"]
            .as_str()
            .map(|i| format!("the image {i} (ovn-central, ovs-ovn, kube-ovn-cni, pinger pods)"))
            .unwrap_or_else(|| "the host's packages".into())
    );
}

/// The nodes, the pods' holders and releases, the ovn-central members.
fn render_members(v: &Value, out: &mut String) {
    line!(out, "nodes:");
    for n in v["nodes"].as_array().into_iter().flatten() {
        line!(
            out,
            "  {:<24} {:<12} join {:<12} netns {:<14} {}ovn-controller {}",
            text(&n["name"]),
            text(&n["ip4"]),
            text(&n["join_ip4"]),
            text(&n["netns"]),
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
    line!(out, "pods: {alive}/{} holders alive", pods.len());
    for p in pods.iter().filter(|p| p["versions"].is_object()) {
        line!(
            out,
            "  {:<32} running OVN {} OVS {}",
            text(&p["name"]),
            text(&p["versions"]["ovn"]),
            text(&p["versions"]["ovs"])
        );
    }
    for c in v["central"].as_array().into_iter().flatten() {
        line!(
            out,
            "  {:<32} on {:<24} NB {:<9} SB {:<9} northd {}",
            text(&c["pod"]),
            text(&c["node"]),
            text(&c["nb"]),
            text(&c["sb"]),
            if c["northd"] == true {
                "running"
            } else {
                "STOPPED"
            }
        );
    }
}

/// The documented traffic pairs: NetworkPolicy, underlay, custom VPC, external host, Services.
fn render_topology(v: &Value, out: &mut String) {
    let np = &v["network_policy"];
    line!(
        out,
        "NetworkPolicy {} on {} ({}): allowed {} ({}) -> it; denied {} ({}) -> it",
        text(&np["policy"]),
        text(&np["target"]),
        text(&np["target_ip"]),
        text(&np["allowed_from"]),
        text(&np["allowed_from_ip"]),
        text(&np["denied_from"]),
        text(&np["denied_from_ip"])
    );
    let ul = &v["underlay"];
    line!(
        out,
        "underlay: subnet {} {} gateway {} (netns {}), pods {}",
        text(&ul["subnet"]),
        text(&ul["cidr"]),
        text(&ul["gateway"]),
        text(&ul["gateway_netns"]),
        ul["pods"]
    );
    let vpc = &v["custom_vpc"];
    line!(
        out,
        "custom VPC {}: subnet {} {}, pods {}",
        text(&vpc["vpc"]),
        text(&vpc["subnet"]),
        text(&vpc["cidr"]),
        vpc["pods"]
    );
    line!(
        out,
        "external host: {} (netns {})",
        text(&v["external_host"]["ip4"]),
        text(&v["external_host"]["netns"])
    );
    for svc in v["services"].as_array().into_iter().flatten() {
        if svc["backends"].as_array().is_some_and(|b| !b.is_empty()) {
            line!(
                out,
                "service {}/{} {} -> {}",
                text(&svc["namespace"]),
                text(&svc["name"]),
                text(&svc["cluster_ip4"]),
                svc["backends"]
            );
        }
    }
}

/// The kubelet and controller stand-ins, and the active faults.
fn render_background(v: &Value, out: &mut String) {
    let k = &v["kubelet"];
    let kpods = k["pods"].as_array().cloned().unwrap_or_default();
    line!(
        out,
        "kubelet: {}, {} pod(s) created through the API",
        k["pid"]
            .as_u64()
            .map(|p| format!("running (pid {p})"))
            .unwrap_or_else(|| "NOT RUNNING".into()),
        kpods.len()
    );
    for p in kpods {
        line!(
            out,
            "  {}/{} on {} {}",
            text(&p["namespace"]),
            text(&p["name"]),
            text(&p["node"]),
            text(&p["ip4"])
        );
    }
    let c = &v["controller"];
    line!(
        out,
        "controller: {}, {} reconcile pass(es)",
        c["pid"]
            .as_u64()
            .map(|p| format!("running (pid {p})"))
            .unwrap_or_else(|| "NOT RUNNING".into()),
        c["passes"].as_u64().unwrap_or(0)
    );
    let faults = v["faults"].as_array().cloned().unwrap_or_default();
    if faults.is_empty() {
        line!(out, "faults: none");
    } else {
        line!(out, "faults ({}; `fault heal` restores):", faults.len());
        for f in faults {
            line!(out, "  {f}");
        }
    }
}
