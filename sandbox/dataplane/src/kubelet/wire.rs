//! The data plane of one pod created through the API, as kube-ovn-cni and
//! kube-ovn-controller would make it: holder process, netns + veth + OVS port and the
//! LSP for pod-network pods; just a holder in the node's netns for hostNetwork pods.
//! `unwire` removes all of it again, step by step, whatever is left.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::argv;
use crate::ctx::Ctx;
use crate::down;
use crate::exec::{in_netns, in_pod, ip_batch, run_raw, run_with};
use crate::nb::{self, Txn};
use crate::node::start_holder;
use crate::plan::Pod;
use crate::pods;
use crate::state::Created;

/// How long the OVS port may take to get `ovn-installed` (ovn-controller programmed
/// its flows), like kube-ovn-cni's wait before it answers the CNI ADD.
const INSTALL_WAIT_SECS: u64 = 20;

/// Bring the pod's data plane up; returns the holder pid.
pub fn wire(ctx: &Ctx, pod: &Pod) -> Result<u32> {
    let node =
        ctx.plan.nodes.get(pod.node).with_context(|| {
            format!("node #{} of pod {} is not in the plan", pod.node, pod.key())
        })?;
    if pod.host_network {
        let pid = start_holder(ctx, pod)?;
        write_log(ctx, pod, &node.name)?;
        return Ok(pid);
    }
    let veth = pod
        .veth
        .as_deref()
        .context("pod-network pod without a veth name")?;
    if std::path::Path::new(&format!("/run/netns/{}", pod.netns)).exists() {
        // left by a kubelet that died half-way through this pod: start clean
        unwire(ctx, pod, None)?;
    }
    ctx.rec.record(&Created::Netns {
        name: pod.netns.clone(),
    })?;
    ip_batch(None, &[format!("netns add {}", pod.netns)])
        .with_context(|| format!("creating netns {}", pod.netns))?;
    // The LSP first: ovn-controller binds the OVS port as soon as it shows up.
    let mut t = Txn::default();
    nb::pod_port(&mut t, pod);
    if let Some(pg) = nb::pod_port_group(&ctx.plan, pod) {
        t.add(argv!["--id=@lsp", "get", "logical_switch_port", pod.lsp()]);
        t.add(argv!["add", "port_group", pg, "ports", "@lsp"]);
    }
    nb::nbctl_timeout(ctx, &t.argv(), 20)
        .with_context(|| format!("creating LSP {} in the NB", pod.lsp()))?;
    pods::wire(ctx, node, &[pod])?;
    write_log(ctx, pod, &node.name)?;
    let ovs_pid = ctx.pid(ctx.ovs_pod(pod.node)?)?;
    run_with(
        &in_pod(
            ovs_pid,
            &argv![
                "ovs-vsctl",
                format!("--timeout={INSTALL_WAIT_SECS}"),
                "wait-until",
                "interface",
                veth,
                "external_ids:ovn-installed=\"true\""
            ],
        ),
        None,
        Duration::from_secs(INSTALL_WAIT_SECS + 5),
    )
    .with_context(|| {
        format!(
            "ovn-controller on {} did not install port {} within {INSTALL_WAIT_SECS}s",
            node.name,
            pod.lsp()
        )
    })?;
    wait_gateway(ctx, pod)?;
    ctx.pid(pod)
}

/// Ping the subnet gateway from the pod until it answers, as kube-ovn-cni does before
/// it reports the network ready (the first packets through a new port can be lost).
fn wait_gateway(ctx: &Ctx, pod: &Pod) -> Result<()> {
    let Some(s) = pod.subnet.as_deref().and_then(|s| ctx.plan.subnet(s)) else {
        return Ok(());
    };
    let mut last = String::new();
    for _ in 0..10 {
        let out = run_raw(
            &in_netns(&pod.netns, &argv!["ping", "-c", "1", "-W", "1", s.gw4]),
            None,
            Duration::from_secs(5),
        )?;
        if out.ok() {
            return Ok(());
        }
        last = format!("{}{}", out.stdout.trim(), out.stderr.trim());
    }
    bail!(
        "pod {} cannot reach its gateway {} after 10 pings: {last}",
        pod.key(),
        s.gw4
    )
}

fn write_log(ctx: &Ctx, pod: &Pod, node: &str) -> Result<()> {
    let log = ctx.container_log(pod);
    std::fs::write(
        &log,
        format!(
            "{} started on {node} (the sandbox runs no container image: exec runs the host's binaries)\n",
            pod.container
        ),
    )
    .with_context(|| format!("writing {}", log.display()))
}

/// Remove everything `wire` may have created for the pod; every step runs even if an
/// earlier one failed, and the first failure is returned.
pub fn unwire(ctx: &Ctx, pod: &Pod, pid: Option<u32>) -> Result<()> {
    let mut errors: Vec<String> = Vec::new();
    kill_pod_processes(pod, pid);
    if !pod.host_network {
        if let Err(e) = nb::nbctl_timeout(ctx, &argv!["--if-exists", "lsp-del", pod.lsp()], 20) {
            errors.push(format!("removing LSP {}: {e:#}", pod.lsp()));
        }
        if let (Some(veth), Ok(ovs)) = (&pod.veth, ctx.ovs_pod(pod.node))
            && let Ok(ovs_pid) = ctx.pid(ovs)
        {
            let r = run_with(
                &in_pod(
                    ovs_pid,
                    &argv![
                        "ovs-vsctl",
                        "--timeout=20",
                        "--if-exists",
                        "del-port",
                        "br-int",
                        veth
                    ],
                ),
                None,
                Duration::from_secs(25),
            );
            if let Err(e) = r {
                errors.push(format!("removing OVS port {veth}: {e:#}"));
            }
        }
        if std::path::Path::new(&format!("/run/netns/{}", pod.netns)).exists() {
            let r = run_raw(
                &argv!["ip", "netns", "delete", pod.netns],
                None,
                Duration::from_secs(20),
            );
            match r {
                Ok(o) if o.ok() => {}
                Ok(o) => errors.push(format!("deleting netns {}: {}", pod.netns, o.stderr.trim())),
                Err(e) => errors.push(format!("deleting netns {}: {e:#}", pod.netns)),
            }
        }
    }
    let _ = std::fs::remove_file(ctx.container_log(pod));
    if let Some(first) = errors.first() {
        bail!("cleaning up pod {}: {first}", pod.key());
    }
    Ok(())
}

/// Kill every process of the pod, like a real pod deletion: the holder and whatever
/// `kubectl exec` left running in its mount namespace (an `iperf3 -s`), and anything
/// still in the pod's own netns.
fn kill_pod_processes(pod: &Pod, pid: Option<u32>) {
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    // pids get reused: only a `sleep` is still our holder
    let holder = pid.filter(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    if let Some(h) = holder {
        pids.insert(h);
        let own = down::ns_inode("/proc/self/ns/mnt");
        // Never scan by the host's own mount namespace: that would be every process.
        if let Some(ino) = down::ns_inode(&format!("/proc/{h}/ns/mnt")).filter(|i| Some(*i) != own)
        {
            pids.extend(down::pids_in_ns("mnt", &BTreeSet::from([ino])));
        }
    }
    if !pod.host_network
        && let Some(ino) = down::ns_inode(&format!("/run/netns/{}", pod.netns))
        && down::ns_inode("/proc/self/ns/net") != Some(ino)
    {
        pids.extend(down::pids_in_ns("net", &BTreeSet::from([ino])));
    }
    pids.remove(&std::process::id());
    let pids: Vec<u32> = pids.into_iter().collect();
    if pids.is_empty() {
        return;
    }
    down::kill(&pids, "KILL");
    let _ = crate::exec::poll(
        "the pod's processes to exit",
        Duration::from_secs(3),
        || {
            if let Some(h) = holder {
                reap(h);
            }
            pids.iter().all(|p| !down::alive(*p)).then_some(())
        },
    );
    if let Some(h) = holder {
        reap(h);
    }
}

/// Holders this kubelet started are its children: collect their exit so they do not
/// linger as zombies. Waits for that pid only, never for children of running tools.
fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid on one pid with WNOHANG only writes `status`; a pid that is not
    // our child (a holder adopted after a restart) just gets ECHILD.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}
