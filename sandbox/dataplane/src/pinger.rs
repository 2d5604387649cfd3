//! The stand-in for `/kube-ovn/kube-ovn-pinger` in the sandbox's pinger pods
//! (the sandbox has no Kube-OVN image). `kubectl ko diagnose` runs the pinger
//! in `--mode=job` where it exists, so the stand-in lets that path run against
//! real pings. What it does and skips is said at the top of the script.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::ctx::Ctx;
use crate::rootfs::Bind;
use crate::state::Created;

const SCRIPT: &str = include_str!("pinger-standin.sh");
/// Where pods see it, as in the Kube-OVN image.
pub const MOUNT: &str = "/kube-ovn";

/// Node setup threads install concurrently; one at a time writes.
static INSTALL: Mutex<()> = Mutex::new(());

/// `targets`: what upstream lists through the API (pinger pods, node
/// InternalIPs), one `pod|node <name> <ip>` per line and address (the stand-in
/// does not query the API itself).
fn targets(ctx: &Ctx) -> String {
    let plan = &ctx.plan;
    let mut out = String::new();
    for p in plan.pods.iter().filter(|p| p.container == "pinger") {
        for ip in p.ips() {
            out.push_str(&format!("pod {} {ip}\n", p.name));
        }
    }
    for n in &plan.nodes {
        for ip in n.ips() {
            out.push_str(&format!("node {} {ip}\n", n.name));
        }
    }
    out
}

/// Write the script and its target list under `<state>/kube-ovn/` (once per
/// sandbox) and return the bind that puts them at `/kube-ovn` in a pinger pod.
pub fn install(ctx: &Ctx) -> Result<Bind> {
    let dir = ctx.paths.dir().join("kube-ovn");
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new(MOUNT).exists() {
        // the bind needs a mount point on the host; `down` removes what it records
        ctx.rec.record(&Created::HostDir {
            path: MOUNT.to_string(),
        })?;
        std::fs::create_dir_all(MOUNT).with_context(|| format!("creating mount point {MOUNT}"))?;
    }
    let script = dir.join("kube-ovn-pinger");
    if !script.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("targets"), targets(ctx))
            .with_context(|| format!("writing {}/targets", dir.display()))?;
        std::fs::write(&script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", script.display()))?;
    }
    Ok(Bind {
        src: dir,
        dst: MOUNT.to_string(),
    })
}
