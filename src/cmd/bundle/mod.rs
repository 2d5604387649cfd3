//! `bundle`: one `.tar.gz` to attach to a Kube-OVN issue: diagnose, RAFT
//! status, NB/SB backups, logical flows, per-node OVS state, logs, Kube-OVN CRs,
//! the relevant Kubernetes objects and versions, with a MANIFEST of every file
//! and every item that failed. Built next to the destination and renamed into
//! place at the end, so a failure or Ctrl-C leaves nothing partial behind.

mod archive;
mod items;
pub mod manifest;

use std::path::PathBuf;

use crate::cli::BundleArgs;
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use manifest::Manifest;

/// Ctrl-C drops [`build`], whose workspace removes the local files; the
/// remote backup copies are removed here.
pub async fn run(ctx: &Ctx, args: &BundleArgs) -> Result<Outcome> {
    tokio::select! {
        r = build(ctx, args) => r,
        _ = tokio::signal::ctrl_c() => Ok(interrupted(ctx).await),
    }
}

async fn build(ctx: &Ctx, args: &BundleArgs) -> Result<Outcome> {
    let created = chrono::Utc::now();
    let root = format!("kubectl-ko-bundle-{}", created.format("%Y%m%dT%H%M%SZ"));
    let dest = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{root}.tar.gz")));
    if dest.is_dir() {
        return Err(Error::Usage(format!(
            "{} is a directory; give a file path, e.g. -f {}",
            dest.display(),
            dest.join(format!("{root}.tar.gz")).display()
        )));
    }
    let cluster = ctx.cluster().await?;
    let nodes = node_names(cluster).await?;
    let ws = archive::Workspace::next_to(&dest)?;
    let mut manifest = Manifest {
        path: std::path::absolute(&dest).unwrap_or_else(|_| dest.clone()),
        root,
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        kubectl_ko_version: env!("CARGO_PKG_VERSION").into(),
        files: Vec::new(),
        failures: Vec::new(),
    };
    for item in items::collect_all(cluster, &ws.stage, &nodes).await {
        match item {
            Ok(f) => manifest.files.push(f),
            Err(f) => manifest.failures.push(f),
        }
    }
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.failures.sort_by(|a, b| a.item.cmp(&b.item));
    write(&ws, &manifest, &dest).await?;
    let exit = if manifest.files.is_empty() { 1 } else { 0 };
    Ok(Outcome::report(
        manifest,
        ctx.output(args.output.output),
        exit,
    ))
}

/// After Ctrl-C: remove the remote backup copies an interrupted backup left.
async fn interrupted(ctx: &Ctx) -> Outcome {
    eprintln!("interrupted; removing this run's temporary backups from the ovn-central pods");
    let Ok(cluster) = ctx.cluster().await else {
        return Outcome::Exit(crate::error::EXIT_INTERRUPTED);
    };
    let pods = cluster.central_pods().await.unwrap_or_default();
    let cleanups = pods.iter().map(|p| async move {
        let r = crate::cluster::PodRef::from_pod(p);
        if let Err(e) = crate::cmd::db::remove_leftovers(cluster, &r).await {
            eprintln!("warning: could not clean /etc/ovn in {r}: {e}");
        }
    });
    futures::future::join_all(cleanups).await;
    Outcome::Exit(crate::error::EXIT_INTERRUPTED)
}

/// The cluster's nodes; names that could not be directory names are refused.
async fn node_names(cluster: &crate::cluster::Cluster) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for n in cluster.list_nodes().await? {
        let name = n.metadata.name.unwrap_or_default();
        crate::cluster::validate_name("node name", &name)?;
        names.push(name);
    }
    Ok(names)
}

/// Archive the staged files into the temporary file, then rename it into place.
async fn write(ws: &archive::Workspace, manifest: &Manifest, dest: &std::path::Path) -> Result<()> {
    // Created here, not in the blocking task: after a Ctrl-C (which drops `ws`
    // and removes the file) the task can only write into the unlinked file.
    let file = std::fs::File::create(&ws.partial)
        .map_err(|e| Error::io(format!("create {}", ws.partial.display()), &e))?;
    let (stage, m) = (ws.stage.clone(), manifest.clone());
    let written = tokio::task::spawn_blocking(move || archive::write_tar_gz(file, &stage, &m))
        .await
        .map_err(|e| {
            Error::io(
                format!("write {}", ws.partial.display()),
                &std::io::Error::other(e),
            )
        })?;
    written.map_err(|e| Error::io(format!("write {}", ws.partial.display()), &e))?;
    std::fs::rename(&ws.partial, dest).map_err(|e| {
        Error::io(
            format!("rename {} to {}", ws.partial.display(), dest.display()),
            &e,
        )
    })
}
