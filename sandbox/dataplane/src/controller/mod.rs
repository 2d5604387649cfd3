//! `ko-sandbox controller`: the sandbox's stand-in for kube-ovn-controller (and the
//! Kubernetes endpoints/endpointslice controllers). One background process per
//! sandbox (started by `up`, killed by `down`) that watches the emulator and keeps the
//! NB in line with the API: VPCs (routers, routes, policies, peerings), Subnets (their
//! switches, overlay or underlay), node port groups, NetworkPolicies,
//! (Baseline)AdminNetworkPolicies, SecurityGroups, Subnet ACLs, Service VIPs, and the
//! Endpoints/EndpointSlices of Services with a selector. Each pass
//! reads everything and writes only the difference, so a restart adds nothing twice
//! and a deleted object's rows go away. Shapes follow Kube-OVN (see sandbox/README.md
//! for the version).

mod anp;
pub mod model;
mod nb_read;
mod nbsync;
pub mod netpol;
mod node_acl;
mod selector;
pub mod service;
pub mod sg;
mod subnet;
mod subnet_acl;
pub mod vpc;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::api;
use crate::background;
use crate::ctx::Ctx;
use crate::kubelet::watch;
use crate::state::{Paths, Recorder};

use model::Desired;
use nb_read::NbRead;
use service::ApiWrite;
use world::World;

/// Written after each pass that brought the NB and the API in line: the pass count.
fn synced_file(paths: &Paths) -> PathBuf {
    paths.dir().join("controller.synced")
}

/// The running controller's pid, if there is one.
pub fn running_pid(paths: &Paths) -> Option<u32> {
    background::running_pid(paths, "controller")
}

/// How many passes completed (0: none yet).
pub fn passes(paths: &Paths) -> u64 {
    std::fs::read_to_string(synced_file(paths))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Start the controller unless one runs, and wait for its first complete pass (so
/// `up` returns with the planned NetworkPolicy and Service VIPs in the NB).
pub fn start(paths: &Paths, rec: &Recorder) -> Result<u32> {
    if let Some(pid) = running_pid(paths) {
        return Ok(pid);
    }
    let _ = std::fs::remove_file(synced_file(paths));
    background::start(
        paths,
        rec,
        "controller",
        background::Ready {
            waiting_for: "the sandbox controller's first pass",
            within: Duration::from_secs(30),
            also: &|| passes(paths) > 0,
        },
    )
}

/// Watch every collection in `world::WATCHED`; each event wakes the main loop.
fn spawn_watches(port: u16, tx: &mpsc::Sender<()>) {
    for path in world::WATCHED {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut pause = Duration::from_secs(1);
            loop {
                let r = watch::resource(port, path, 300, |_| {
                    let _ = tx.send(());
                });
                if let Err(e) = r {
                    eprintln!(
                        "controller: watch of {path} ended: {e:#}; again in {}s",
                        pause.as_secs()
                    );
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(30));
                } else {
                    pause = Duration::from_secs(1);
                }
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
    }
}

/// The controller's main loop; returns when the sandbox is gone.
pub fn run(paths: &Paths, state_dir: &Path) -> Result<()> {
    let _lock = background::claim(paths, state_dir, "controller")?;
    let ctx = Ctx::load(paths.clone())?;
    let port = api::port(paths)?;
    let (tx, rx) = mpsc::channel::<()>();
    spawn_watches(port, &tx);
    eprintln!(
        "controller of sandbox `{}` running (pid {})",
        paths.name,
        std::process::id()
    );
    let mut count = 0u64;
    loop {
        if !paths.dir().exists() {
            eprintln!("controller: the sandbox state directory is gone; exiting");
            return Ok(());
        }
        match pass(&ctx, port) {
            Ok(()) => {
                count += 1;
                let _ = std::fs::write(synced_file(paths), format!("{count}\n"));
            }
            Err(e) => eprintln!("controller: {e:#}"),
        }
        // Events wake us; a periodic pass repairs NB drift nobody announces.
        let _ = rx.recv_timeout(Duration::from_secs(5));
        // let a burst (kubectl apply of several objects) settle into one pass
        std::thread::sleep(Duration::from_millis(50));
        while rx.try_recv().is_ok() {}
    }
}

/// One reconcile: read the API and the NB, write the differences to both. The NB
/// is read once, and again only after a step changed it (the next step builds on
/// the routers and switches the previous one made).
fn pass(ctx: &Ctx, port: u16) -> Result<()> {
    let mut w = World::fetch(port)?;
    let mut read = NbRead::fetch(ctx)?;
    // routers of new VPCs, then switches of new subnets: their ACLs, LBs and pods
    // need them; a failure here holds up only those objects (their status says so)
    let (mut subnet_writes, wrote) = vpc::sync(ctx, &w, &read).unwrap_or_else(|e| {
        eprintln!("controller: {e:#}");
        (Vec::new(), true)
    });
    if wrote {
        read = NbRead::fetch(ctx)?;
    }
    let (more, wrote) = subnet::sync(ctx, &w, &read);
    subnet_writes.extend(more);
    if wrote {
        read = NbRead::fetch(ctx)?;
    }
    let cur = nbsync::parse(&read)?;
    w.lsps = cur.lsps.clone();
    let mut slices = w.slices.clone();
    let mut writes = service::endpoint_writes(&w, &mut slices);
    let want = desired(&w, &slices, cur.tiers, &mut writes);
    let txn = nbsync::diff(&cur, &want);
    let args = txn.argv();
    if !args.is_empty() {
        crate::nb::nbctl_timeout(ctx, &args, 20).context("writing the controller's NB changes")?;
        eprintln!(
            "controller: NB updated ({} command(s))",
            args.iter().filter(|a| *a == "--").count() + 1
        );
    }
    // statuses say "synced" only after the NB transaction went through
    writes.extend(sg::status_writes(&w));
    writes.extend(subnet_writes);
    for wr in &writes {
        apply(port, wr)?;
    }
    Ok(())
}

/// Everything the controller wants in the NB, from one snapshot of the API.
pub fn desired(
    w: &World,
    slices: &[serde_json::Value],
    tiers: bool,
    writes: &mut Vec<ApiWrite>,
) -> Desired {
    let mut d = Desired::default();
    netpol::build_all(w, tiers, &mut d);
    sg::build_all(w, tiers, &mut d);
    subnet_acl::build_all(w, tiers, &mut d);
    node_acl::build_all(w, tiers, &mut d);
    anp::build_all(w, tiers, &mut d);
    writes.extend(service::lb_vips(w, slices, &mut d));
    d
}

fn apply(port: u16, wr: &ApiWrite) -> Result<()> {
    let body = wr.body.as_ref().map(serde_json::to_vec).transpose()?;
    let ctype = if wr.method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let (code, text) = api::request(
        port,
        wr.method,
        &wr.path,
        body.as_deref().map(|b| (ctype, b)),
    )?;
    // 404 on DELETE and 409 on POST: someone else got there first; the next pass sees it
    let tolerated = (wr.method == "DELETE" && code == 404) || code == 409;
    if !(200..300).contains(&code) && !tolerated {
        bail!(
            "{} {} on the emulator answered {code}: {}",
            wr.method,
            wr.path,
            text.trim()
        );
    }
    eprintln!("controller: {} {}", wr.method, wr.path);
    Ok(())
}
