//! `backup`: cluster-to-standalone in the leader, streamed back, written
//! atomically and verified against a checksum computed in the pod; the remote
//! temporary file is always removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;

use super::{Db, central_container};
use crate::cluster::{Cluster, PodRef};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::render::{Render, Style};

/// Where the backup went and how it was checked.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub database: String,
    pub pod: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl Render for BackupReport {
    fn render_text(&self, out: &mut dyn Write, _s: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "backup ovn-{} db to {} ({} bytes, sha256 {}, verified against {})",
            if self.database == "OVN_Northbound" {
                "nb"
            } else {
                "sb"
            },
            self.path.display(),
            self.bytes,
            self.sha256,
            self.pod
        )
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// A file sink that hashes and counts what it writes.
struct HashingFile {
    file: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl AsyncWrite for HashingFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ovnnb_db.20260102T030405Z.backup`-style name (sortable, no colons).
pub fn backup_name(db: Db, now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{}.backup", db.stem(), now.format("%Y%m%d%H%M%S"))
}

pub async fn backup(ctx: &Ctx, db: Db, dir: &Path) -> Result<Outcome> {
    let cluster = ctx.cluster().await?;
    let pod = cluster.leader(db.leader()).await?;
    let report = backup_from(cluster, db, &pod, dir).await?;
    Ok(Outcome::report(report, ctx.output(None), 0))
}

/// Take a backup from `pod` into `dir` (also used by `restore`).
pub async fn backup_from(
    cluster: &Cluster,
    db: Db,
    pod: &PodRef,
    dir: &Path,
) -> Result<BackupReport> {
    let now = chrono::Utc::now();
    let name = backup_name(db, now);
    // Unique in the pod: two backups in the same second (e.g. concurrent
    // `bundle` runs) must not collide on ovsdb-tool's "File exists".
    let remote = format!(
        "/etc/ovn/{name}.{}-{}",
        std::process::id(),
        now.timestamp_subsec_nanos()
    );
    let c = central_container(pod).to_string();
    let result = fetch(cluster, db, pod, &c, &remote, dir, &name).await;
    // Always remove the remote copy, even when the transfer failed.
    if let Err(e) = cluster
        .exec_capture(pod, &c, &["rm", "-f", remote.as_str()])
        .await
    {
        eprintln!("warning: could not remove {remote} in {pod}: {e}");
    }
    result
}

/// Remove the remote copies this process left in `pod` (an interrupted backup
/// never reaches its own `rm`); matched by our pid, so never anyone else's.
pub async fn remove_leftovers(cluster: &Cluster, pod: &PodRef) -> Result<()> {
    let pattern = format!("*.backup.{}-*", std::process::id());
    let argv = [
        "find",
        "/etc/ovn",
        "-maxdepth",
        "1",
        "-name",
        &pattern,
        "-delete",
    ];
    cluster.exec_ok(pod, central_container(pod), &argv).await?;
    Ok(())
}

async fn fetch(
    cluster: &Cluster,
    db: Db,
    pod: &PodRef,
    c: &str,
    remote: &str,
    dir: &Path,
    name: &str,
) -> Result<BackupReport> {
    let db_file = db.file();
    cluster
        .exec_ok(
            pod,
            c,
            &[
                "ovsdb-tool",
                "cluster-to-standalone",
                remote,
                db_file.as_str(),
            ],
        )
        .await?;
    let sum = cluster.exec_ok(pod, c, &["sha256sum", remote]).await?;
    let remote_sum = sum
        .split_whitespace()
        .next()
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Error::Remote {
            what: format!("computing the checksum of {remote} in {pod}"),
            detail: format!("unexpected sha256sum output {:?}", sum.trim()),
            hint: "check that sha256sum exists in the ovn-central image".into(),
        })?
        .to_ascii_lowercase();

    let final_path = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| Error::io(format!("create {}", partial.display()), &e))?;
    let mut sink = HashingFile {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut errbuf = Vec::new();
    // The transfer may be large: allow well beyond the per-call timeout.
    let limit = cluster.timeout() * 20;
    let code = cluster
        .exec_stream(
            pod,
            c,
            &["cat", remote],
            &mut sink,
            &mut errbuf,
            Some(limit),
        )
        .await;
    let cleanup = |p: &Path| {
        let _ = std::fs::remove_file(p);
    };
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            cleanup(&partial);
            return Err(e.into());
        }
    };
    if code != 0 {
        cleanup(&partial);
        return Err(Error::Remote {
            what: format!("copying {remote} out of {pod}"),
            detail: format!(
                "cat exited {code}: {}",
                String::from_utf8_lossy(&errbuf).trim()
            ),
            hint: "retry; check free space in /etc/ovn of the pod".into(),
        });
    }
    let HashingFile {
        file,
        hasher,
        bytes,
    } = sink;
    if let Err(e) = file.sync_all().await {
        cleanup(&partial);
        return Err(Error::io(format!("sync {}", partial.display()), &e));
    }
    drop(file);
    let local_sum = hex(&hasher.finalize());
    if local_sum != remote_sum {
        cleanup(&partial);
        return Err(Error::Remote {
            what: format!("verifying the backup of {}", db.name()),
            detail: format!(
                "checksum mismatch: pod says {remote_sum}, received {local_sum} ({bytes} bytes)"
            ),
            hint: "retry the backup; the stream was corrupted or truncated".into(),
        });
    }
    if let Err(e) = tokio::fs::rename(&partial, &final_path).await {
        cleanup(&partial);
        return Err(Error::io(format!("rename to {}", final_path.display()), &e));
    }
    let path = std::path::absolute(&final_path).unwrap_or(final_path);
    Ok(BackupReport {
        database: db.name().into(),
        pod: pod.to_string(),
        path,
        bytes,
        sha256: local_sum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backup_names_sort_by_time() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(backup_name(Db::Nb, t), "ovnnb_db.20260102030405.backup");
        assert_eq!(backup_name(Db::Sb, t), "ovnsb_db.20260102030405.backup");
    }

    #[test]
    fn hex_of_sha256() {
        let d = Sha256::digest(b"abc");
        assert_eq!(
            hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
