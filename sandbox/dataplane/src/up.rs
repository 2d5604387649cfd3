//! `up`: build the whole sandbox, or reuse a healthy one. On failure everything
//! created so far is removed again (unless KO_SANDBOX_KEEP_FAILED=1, for debugging).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::ctx::Ctx;
use crate::exec::ip_batch;
use crate::state::{self, Created, Paths};
use crate::{
    api, argv, controller, down, image, kubelet, nb, node, objects, plan, pods, preflight, underlay,
};

pub struct UpOpts {
    pub nodes: usize,
    pub dual_stack: bool,
    pub api_port: u16,
    /// OVN version (`image::RELEASES`).
    pub ovn: String,
    /// `--without-kube-proxy`.
    pub without_kube_proxy: bool,
}

/// Container paths bound in pods; created on the host if missing (and recorded).
const MOUNT_POINTS: &[&str] = &[
    "/var/run/ovn",
    "/etc/ovn",
    "/var/log/ovn",
    "/var/run/openvswitch",
    "/etc/openvswitch",
    "/var/log/openvswitch",
    "/var/log/kube-ovn",
    // Parent first: down removes recorded directories in reverse order.
    "/etc/cni",
    "/etc/cni/net.d",
];

pub fn up(paths: &Paths, opts: &UpOpts) -> Result<PathBuf> {
    state::validate_name(&paths.name)?;
    if !(plan::MIN_NODES..=plan::MAX_NODES).contains(&opts.nodes) {
        bail!(
            "--nodes {} is out of range: use {} to {}",
            opts.nodes,
            plan::MIN_NODES,
            plan::MAX_NODES
        );
    }
    let release = image::release(&opts.ovn)?;
    let on_host = image::host_provides(release);
    preflight::check(opts.api_port, on_host)?;
    let _lock = state::lock(paths)?;
    if paths.dir().exists() {
        if let Some(plan) = healthy(paths) {
            if plan.nodes.len() != opts.nodes
                || plan.dual_stack != opts.dual_stack
                || plan.ovn != opts.ovn
                || plan.kube_proxy == opts.without_kube_proxy
            {
                bail!(
                    "sandbox `{}` is already up with {} nodes{}{} on OVN {}; run `e2e/sandbox down --name {}` first to change its shape or version",
                    paths.name,
                    plan.nodes.len(),
                    if plan.dual_stack { " (dual-stack)" } else { "" },
                    if plan.kube_proxy {
                        ""
                    } else {
                        " without kube-proxy"
                    },
                    plan.ovn,
                    paths.name
                );
            }
            eprintln!("sandbox `{}` is already up; reusing it", paths.name);
            // a kubelet that died (or a sandbox from before it existed) comes back
            kubelet::start(paths, &state::Recorder::new(paths))?;
            controller::start(paths, &state::Recorder::new(paths))?;
            crate::kube_proxy::start(paths, &state::Recorder::new(paths))?;
            return Ok(paths.kubeconfig());
        }
        eprintln!(
            "sandbox `{}` was left half-created or broken; removing it first",
            paths.name
        );
        down::down(paths)?;
    } else {
        let stray = down::owned_netns(paths, &BTreeSet::new());
        if !stray.is_empty() {
            bail!(
                "network namespaces {} already exist but no sandbox `{}` is recorded: remove them with `e2e/sandbox down --name {}` or choose another --name",
                stray.join(", "),
                paths.name,
                paths.name
            );
        }
    }
    // Before the clock starts: a first build is the image's cost, not `up`'s.
    let image = if on_host {
        None
    } else {
        let (dir, info) = image::ensure(release)?;
        eprintln!(
            "OVN {} / OVS {} from the image {}",
            info.ovn_version,
            info.ovs_version,
            dir.display()
        );
        Some(dir.display().to_string())
    };
    let start = Instant::now();
    std::fs::create_dir_all(paths.logs())
        .with_context(|| format!("creating {}", paths.logs().display()))?;
    let mut plan = plan::build(&paths.name, opts.nodes, opts.dual_stack);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    plan.created = plan::rfc3339(now);
    plan.ovn = release.ovn.to_string();
    plan.image = image;
    if opts.without_kube_proxy {
        plan.drop_kube_proxy();
    }
    state::write_json(&paths.plan_file(), &plan)?;
    let ctx = Ctx::new(paths.clone(), plan);
    match build(&ctx, opts) {
        Ok(()) => {
            let secs = start.elapsed().as_secs_f64();
            std::fs::write(paths.ready_file(), format!("{secs:.1}\n"))
                .context("writing the ready marker")?;
            eprintln!("sandbox `{}` up in {secs:.1}s", paths.name);
            Ok(paths.kubeconfig())
        }
        Err(e) => {
            if std::env::var_os("KO_SANDBOX_KEEP_FAILED").is_some() {
                eprintln!(
                    "KO_SANDBOX_KEEP_FAILED is set: leaving the half-created sandbox for inspection"
                );
            } else if let Err(d) = down::down(paths) {
                eprintln!("cleaning up after the failed start also failed: {d:#}");
            }
            Err(e.context(format!(
                "bringing sandbox `{}` up failed (logs were in {})",
                paths.name,
                paths.logs().display()
            )))
        }
    }
}

/// The plan of a sandbox that is complete and running, or None.
pub fn healthy(paths: &Paths) -> Option<plan::Plan> {
    if !paths.ready_file().exists() {
        return None;
    }
    let ctx = Ctx::load(paths.clone()).ok()?;
    for p in &ctx.plan.pods {
        let pid = ctx.pid(p).ok()?;
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return None;
        }
    }
    let port = api::port(paths).ok()?;
    let (code, _) = api::request(port, "GET", "/version", None).ok()?;
    (code == 200).then_some(ctx.plan)
}

fn build(ctx: &Ctx, opts: &UpOpts) -> Result<()> {
    let plan = &ctx.plan;
    let paths = &ctx.paths;

    // Record first, then create: `down` may find a record of something that never
    // came to exist, never the opposite.
    let all_netns = plan.all_netns();
    for n in &all_netns {
        ctx.rec.record(&Created::Netns { name: n.clone() })?;
    }
    let lines: Vec<String> = all_netns.iter().map(|n| format!("netns add {n}")).collect();
    ip_batch(None, &lines).context("creating the sandbox network namespaces")?;
    for m in MOUNT_POINTS {
        if !Path::new(m).exists() {
            ctx.rec.record(&Created::HostDir {
                path: m.to_string(),
            })?;
            std::fs::create_dir_all(m).with_context(|| format!("creating mount point {m}"))?;
        }
    }

    // The emulator starts while the data plane comes up; it re-reads runtime.json.
    objects::write(plan, &paths.objects())?;
    state::write_json(&paths.api().join("runtime.json"), &json!({"pods": {}}))?;
    let api_pid = api::start(paths, &ctx.rec, opts.api_port)?;

    underlay::setup(plan).context("building the underlay network")?;

    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .nodes
            .iter()
            .map(|n| {
                s.spawn(move || -> Result<()> {
                    node::setup(ctx, n).with_context(|| format!("setting up node {}", n.name))?;
                    pods::setup(ctx, n)
                        .with_context(|| format!("setting up the pods of node {}", n.name))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a node setup thread panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    ctx.write_runtime()?;

    nb::apply(ctx)?;
    sync_hv(ctx)?;
    nb::tag_chassis(ctx, Duration::from_secs(30))?;
    let port = api::wait_ready(paths, api_pid, Duration::from_secs(30))?;
    api::wait_leaders(port, Duration::from_secs(30))?;
    kubelet::start(paths, &ctx.rec)?;
    crate::kube_proxy::start(paths, &ctx.rec)?;
    // The planned NetworkPolicy and Service VIPs reach the NB through the controller,
    // the same way as objects created later; every chassis has them before `up` ends.
    controller::start(paths, &ctx.rec)?;
    sync_hv(ctx)?;
    Ok(())
}

/// `ovn-nbctl --wait=hv sync`, restarting an ovn-controller that is not running
/// (seen rarely right after start) instead of waiting for it forever.
fn sync_hv(ctx: &Ctx) -> Result<()> {
    let mut last = None;
    // A controller that missed an update while RAFT settled acks the next nb_cfg, so
    // short attempts beat one long wait.
    for attempt in 1..=6 {
        restart_dead_controllers(ctx)?;
        match nb::nbctl_timeout(ctx, &argv!["--wait=hv", "sync"], 6) {
            Ok(_) => return Ok(()),
            Err(e) => {
                eprintln!(
                    "ovn-nbctl --wait=hv sync: attempt {attempt} did not finish in 6s, retrying"
                );
                last = Some(e);
            }
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context("waiting for every ovn-controller to program the NB"))
}

fn restart_dead_controllers(ctx: &Ctx) -> Result<()> {
    for n in &ctx.plan.nodes {
        let ovs = ctx.ovs_pod(n.index - 1)?;
        if !crate::status::daemon_running(ctx, ovs, "run-ovn", "ovn-controller.pid") {
            eprintln!(
                "ovn-controller on {} is not running; starting it again",
                n.name
            );
            node::start_controller(ctx, ovs, ctx.pid(ovs)?)?;
        }
    }
    Ok(())
}
