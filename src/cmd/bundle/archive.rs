//! Where a bundle is built: a staging directory and a temporary archive next to
//! the destination, removed when the command ends without finishing (error, or
//! Ctrl-C dropping the command), so no partial bundle is ever left behind.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::manifest::Manifest;
use crate::error::{Error, Result};

/// The staging directory and temporary archive of one run; both removed on drop.
pub struct Workspace {
    pub stage: PathBuf,
    pub partial: PathBuf,
}

impl Workspace {
    /// Hidden siblings of `dest`, unique to this process.
    pub fn next_to(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Usage(format!("{} is not a file path", dest.display())))?;
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let pid = std::process::id();
        let ws = Workspace {
            stage: dir.join(format!(".{name}.staging-{pid}")),
            partial: dir.join(format!(".{name}.partial-{pid}")),
        };
        std::fs::create_dir(&ws.stage).map_err(|e| {
            Error::io(
                format!("create the staging directory {}", ws.stage.display()),
                &e,
            )
        })?;
        Ok(ws)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.stage);
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// Write the staged files listed in `manifest` (plus MANIFEST and manifest.json)
/// as a gzipped tar into `file`, every path under `manifest.root`. Blocking.
pub fn write_tar_gz(file: File, stage: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let gz = GzEncoder::new(file, Compression::default());
    let mut tar = tar::Builder::new(gz);
    let root = Path::new(&manifest.root);
    let json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    append_bytes(
        &mut tar,
        &root.join("MANIFEST"),
        manifest.to_text().as_bytes(),
    )?;
    append_bytes(&mut tar, &root.join("manifest.json"), &json)?;
    for f in &manifest.files {
        let mut src = File::open(stage.join(&f.path))?;
        tar.append_file(root.join(&f.path), &mut src)?;
    }
    let gz = tar.into_inner()?;
    let file = gz.finish()?;
    file.sync_all()
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    h.set_cksum();
    tar.append_data(&mut h, path, data)
}
