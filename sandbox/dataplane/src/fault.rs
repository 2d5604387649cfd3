//! Faults on demand (for `diagnose` tests) and `fault heal`. Active faults are kept in
//! `<state>/faults.json` with what is needed to undo them.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::argv;
use crate::ctx::Ctx;
use crate::exec::{in_pod, run};
use crate::plan::{Node, Pod};
use crate::state::{self, Paths};
use crate::{api, nb, node};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    StopController {
        node: String,
    },
    StopNb {
        pod: String,
    },
    StopSb {
        pod: String,
    },
    UnbindPort {
        pod: String,
        iface: String,
        iface_id: String,
    },
    DeleteChassis {
        node: String,
    },
    DriftAnnotation {
        pod: String,
        original: String,
        drifted: String,
    },
}

pub const KINDS: &str = "stop-controller <node>, stop-nb <central-pod|1-3>, stop-sb <central-pod|1-3>, unbind-port <ns/pod>, delete-chassis <node>, drift-annotation <ns/pod>, heal";

pub fn active(paths: &Paths) -> Vec<Fault> {
    std::fs::read_to_string(paths.faults_file())
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn save(paths: &Paths, faults: &[Fault]) -> Result<()> {
    state::write_json(&paths.faults_file(), &faults)
}

fn find_node<'a>(ctx: &'a Ctx, arg: &str) -> Result<&'a Node> {
    let by_index = arg
        .parse::<usize>()
        .ok()
        .and_then(|i| ctx.plan.nodes.get(i.wrapping_sub(1)));
    by_index
        .or_else(|| ctx.plan.nodes.iter().find(|n| n.name == arg))
        .with_context(|| {
            let names: Vec<&str> = ctx.plan.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "no node `{arg}`: use one of {} or its number 1-{}",
                names.join(", "),
                names.len()
            )
        })
}

fn find_central<'a>(ctx: &'a Ctx, arg: &str) -> Result<&'a Pod> {
    let central = ctx.plan.central_pods();
    let by_index = arg
        .parse::<usize>()
        .ok()
        .and_then(|i| central.get(i.wrapping_sub(1)).copied());
    by_index
        .or_else(|| {
            central
                .iter()
                .copied()
                .find(|p| p.name == arg || p.key() == arg)
        })
        .with_context(|| {
            let names: Vec<&str> = central.iter().map(|p| p.name.as_str()).collect();
            format!(
                "no ovn-central pod `{arg}`: use one of {} or 1-{}",
                names.join(", "),
                names.len()
            )
        })
}

/// A pod-network pod planned by `up` or started by the kubelet for the API.
fn find_pod(ctx: &Ctx, arg: &str) -> Result<Pod> {
    let key = if arg.contains('/') {
        arg.to_string()
    } else {
        format!("default/{arg}")
    };
    ctx.plan
        .pod(&key)
        .cloned()
        .or_else(|| {
            crate::kubelet::managed(&ctx.paths)
                .remove(&key)
                .map(|m| m.pod)
        })
        .filter(|p| !p.host_network)
        .with_context(|| {
            format!("no pod-network pod `{key}` in the sandbox (see `e2e/sandbox status`)")
        })
}

fn ovs_pid(ctx: &Ctx, node: &Node) -> Result<u32> {
    ctx.pid(ctx.ovs_pod(node.index - 1)?)
}

fn stop_controller(ctx: &Ctx, node: &Node) -> Result<()> {
    let pid = ovs_pid(ctx, node)?;
    // Twice at most: OVN 23.03's ovn-controller now and then crashes while exiting,
    // and its --monitor then starts a new one; the fault must leave none running.
    for _ in 0..2 {
        // --restart: exit without removing the chassis, like a crash (flows stay in OVS)
        let _ = crate::exec::run_raw(
            &in_pod(
                pid,
                &argv!["ovn-appctl", "-t", "ovn-controller", "exit", "--restart"],
            ),
            None,
            Duration::from_secs(5),
        );
        if wait_controller_gone(pid, Duration::from_secs(5)) {
            return Ok(());
        }
    }
    bail!(
        "ovn-controller on {} still answers after `ovn-appctl -t ovn-controller exit --restart` (twice); see its log in the state directory's logs/",
        node.name
    )
}

/// Whether ovn-controller in the ovs pod of holder `pid` answers on its control socket.
fn controller_answers(pid: u32) -> bool {
    answers(pid, "ovn-controller")
}

/// Waits until ovn-controller stops answering, and stays so briefly (a monitor
/// restarts a crashed one within about a second).
fn wait_controller_gone(pid: u32, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    let mut quiet_since: Option<std::time::Instant> = None;
    while start.elapsed() < limit {
        if controller_answers(pid) {
            quiet_since = None;
        } else if quiet_since
            .get_or_insert_with(std::time::Instant::now)
            .elapsed()
            >= Duration::from_millis(1500)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn start_controller(ctx: &Ctx, node: &Node) -> Result<()> {
    let ovs = ctx.ovs_pod(node.index - 1)?;
    let pid = ctx.pid(ovs)?;
    if controller_answers(pid) {
        return Ok(()); // already running again: nothing to undo
    }
    node::start_controller(ctx, ovs, pid)
}

fn db_of(kind_nb: bool) -> (&'static str, &'static str, u16, &'static str) {
    if kind_nb {
        (
            "ovnnb_db",
            "OVN_Northbound",
            node::NB_PORT,
            "ovsdb-server-nb.log",
        )
    } else {
        (
            "ovnsb_db",
            "OVN_Southbound",
            node::SB_PORT,
            "ovsdb-server-sb.log",
        )
    }
}

fn drift(ip: &str) -> String {
    // move the IPv4 address to another host of the same /24 (and v6 likewise)
    ip.split(',')
        .map(|a| match a.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => {
                let o = v4.octets();
                std::net::Ipv4Addr::new(o[0], o[1], o[2], o[3].wrapping_add(100).max(2)).to_string()
            }
            Ok(std::net::IpAddr::V6(v6)) => {
                std::net::Ipv6Addr::from(u128::from(v6) + 100).to_string()
            }
            Err(_) => a.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn annotation_patch(value: &str) -> serde_json::Value {
    json!({"metadata": {"annotations": {"ovn.kubernetes.io/ip_address": value}}})
}

/// Apply one fault; returns a one-line description.
pub fn apply(paths: &Paths, kind: &str, arg: Option<&str>) -> Result<String> {
    if kind == "heal" {
        return heal(paths);
    }
    let ctx = Ctx::load(paths.clone())?;
    let arg = arg.with_context(|| format!("`fault {kind}` needs an argument; faults: {KINDS}"))?;
    let f = match kind {
        "stop-controller" => {
            let n = find_node(&ctx, arg)?;
            Fault::StopController {
                node: n.name.clone(),
            }
        }
        "stop-nb" | "stop-sb" => {
            let p = find_central(&ctx, arg)?;
            if kind == "stop-nb" {
                Fault::StopNb { pod: p.key() }
            } else {
                Fault::StopSb { pod: p.key() }
            }
        }
        "unbind-port" => {
            let p = find_pod(&ctx, arg)?;
            let iface = p.veth.clone().context("pod without a veth")?;
            Fault::UnbindPort {
                pod: p.key(),
                iface,
                iface_id: p.lsp(),
            }
        }
        "delete-chassis" => {
            let n = find_node(&ctx, arg)?;
            Fault::DeleteChassis {
                node: n.name.clone(),
            }
        }
        "drift-annotation" => {
            let p = find_pod(&ctx, arg)?;
            let original = p.ips().join(",");
            Fault::DriftAnnotation {
                pod: p.key(),
                drifted: drift(&original),
                original,
            }
        }
        other => bail!("unknown fault `{other}`; faults: {KINDS}"),
    };
    let mut faults = active(paths);
    if faults.contains(&f) {
        bail!("fault {f:?} is already active; `e2e/sandbox fault heal` restores everything");
    }
    let touches_controller = |n: &str| {
        faults.iter().any(|x| matches!(x, Fault::StopController { node } | Fault::DeleteChassis { node } if node == n))
    };
    match &f {
        Fault::StopController { node } | Fault::DeleteChassis { node }
            if touches_controller(node) =>
        {
            bail!(
                "ovn-controller on {node} is already stopped by another fault; run `fault heal` first"
            )
        }
        _ => {}
    }
    inject(&ctx, &f)?;
    faults.push(f.clone());
    save(paths, &faults)?;
    Ok(format!("fault active: {}", serde_json::to_string(&f)?))
}

fn inject(ctx: &Ctx, f: &Fault) -> Result<()> {
    match f {
        Fault::StopController { node } => stop_controller(ctx, find_node(ctx, node)?),
        Fault::DeleteChassis { node } => {
            let n = find_node(ctx, node)?;
            stop_controller(ctx, n)?;
            nb::sbctl(ctx, &argv!["chassis-del", n.name]).map(|_| ())
        }
        Fault::StopNb { pod } | Fault::StopSb { pod } => {
            let p = find_central(ctx, pod)?;
            let (db, _, _, _) = db_of(matches!(f, Fault::StopNb { .. }));
            let ctl = format!("/var/run/ovn/{db}.ctl");
            let pid = ctx.pid(p)?;
            run(&in_pod(pid, &argv!["ovn-appctl", "-t", &ctl, "exit"]))?;
            // `exit` returns before the server is gone; a heal that starts the new
            // server while the old one still holds its pidfile would fail.
            crate::exec::poll(
                &format!("{db} to stop in {}", p.name),
                Duration::from_secs(15),
                || (!answers(pid, &ctl)).then_some(()),
            )
        }
        Fault::UnbindPort { pod, iface, .. } => {
            let p = find_pod(ctx, pod)?;
            let pid = ctx.pid(ctx.ovs_pod(p.node)?)?;
            run(&in_pod(
                pid,
                &argv![
                    "ovs-vsctl",
                    "remove",
                    "interface",
                    iface,
                    "external_ids",
                    "iface-id"
                ],
            ))
            .map(|_| ())
        }
        Fault::DriftAnnotation { pod, drifted, .. } => {
            let (ns, name) = pod.split_once('/').context("pod key without namespace")?;
            api::patch_pod(&ctx.paths, ns, name, &annotation_patch(drifted))
        }
    }
}

fn undo(ctx: &Ctx, f: &Fault) -> Result<()> {
    match f {
        Fault::StopController { node } | Fault::DeleteChassis { node } => {
            let n = find_node(ctx, node)?;
            start_controller(ctx, n)
        }
        Fault::StopNb { pod } | Fault::StopSb { pod } => {
            let p = find_central(ctx, pod)?;
            let n = &ctx.plan.nodes[p.node];
            let (db, _, port, log) = db_of(matches!(f, Fault::StopNb { .. }));
            let pid = ctx.pid(p)?;
            if answers(pid, &format!("/var/run/ovn/{db}.ctl")) {
                return Ok(()); // already running again: nothing to undo
            }
            let out = ctx.log_file(&format!("{}-heal.log", p.dir_name()));
            crate::exec::run_daemon(
                &in_pod(
                    pid,
                    &node::db_server_argv(db, port + p.port_offset, log, &n.ip4),
                ),
                &out,
            )
        }
        Fault::UnbindPort {
            pod,
            iface,
            iface_id,
        } => {
            let p = find_pod(ctx, pod)?;
            let pid = ctx.pid(ctx.ovs_pod(p.node)?)?;
            run(&in_pod(
                pid,
                &argv![
                    "ovs-vsctl",
                    "set",
                    "interface",
                    iface,
                    format!("external_ids:iface-id={iface_id}")
                ],
            ))
            .map(|_| ())
        }
        Fault::DriftAnnotation { pod, original, .. } => {
            let (ns, name) = pod.split_once('/').context("pod key without namespace")?;
            api::patch_pod(&ctx.paths, ns, name, &annotation_patch(original))
        }
    }
}

/// Whether the daemon behind control target `ctl` (a name or a .ctl path) in the pod
/// of holder `pid` answers.
fn answers(pid: u32, ctl: &str) -> bool {
    crate::exec::run_raw(
        &in_pod(pid, &argv!["ovn-appctl", "-t", ctl, "version"]),
        None,
        Duration::from_secs(5),
    )
    .map(|o| o.ok())
    .unwrap_or(false)
}

/// Undo every active fault (newest first), then wait until OVN is consistent again.
pub fn heal(paths: &Paths) -> Result<String> {
    let ctx = Ctx::load(paths.clone())?;
    let mut faults = active(paths);
    if faults.is_empty() {
        return Ok("no active fault".into());
    }
    let n = faults.len();
    while let Some(f) = faults.pop() {
        undo(&ctx, &f).with_context(|| format!("healing {f:?}"))?;
        save(paths, &faults)?;
    }
    // RAFT members rejoin and controllers re-register; then chassis get their tags back
    nb::nbctl(&ctx, &argv!["--wait=hv", "sync"])
        .context("waiting for every ovn-controller after healing")?;
    nb::tag_chassis(&ctx, Duration::from_secs(30))?;
    Ok(format!("healed {n} fault(s)"))
}
