//! What a bundle holds: every file with the command it came from and its size,
//! and every item that could not be collected with its error. The same data is
//! written into the archive (`MANIFEST`, `manifest.json`) and is the command's result.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::render::{Render, Style};

/// One file in the archive, relative to [`Manifest::root`].
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    /// The command (and pod) or API call that produced it.
    pub source: String,
    pub bytes: u64,
}

/// An item that could not be collected; the rest of the bundle still was.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The file it would have been (or the group of files, e.g. `logs/`).
    pub item: String,
    pub source: String,
    pub error: String,
}

/// `bundle` result (`-o json|yaml` schema; also `manifest.json` in the archive,
/// where `path` is where it was written).
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The archive written.
    pub path: PathBuf,
    /// Top directory inside the archive; every `files[].path` is under it.
    pub root: String,
    pub created: String,
    pub kubectl_ko_version: String,
    pub files: Vec<FileEntry>,
    pub failures: Vec<Failure>,
}

impl Manifest {
    /// The `MANIFEST` text file: one line per file, then one per failure.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "kubectl-ko {} bundle, created {}\n{} files, {} failed\n\n# BYTES\tPATH\tSOURCE\n",
            self.kubectl_ko_version,
            self.created,
            self.files.len(),
            self.failures.len()
        );
        for f in &self.files {
            s.push_str(&format!("{}\t{}\t{}\n", f.bytes, f.path, f.source));
        }
        if !self.failures.is_empty() {
            s.push_str("\n# FAILED\tITEM\tSOURCE\tERROR\n");
            for f in &self.failures {
                let error = f.error.replace('\n', " ");
                s.push_str(&format!("FAILED\t{}\t{}\t{error}\n", f.item, f.source));
            }
        }
        s
    }
}

impl Render for Manifest {
    fn render_text(&self, out: &mut dyn Write, s: &Style) -> std::io::Result<()> {
        let bytes: u64 = self.files.iter().map(|f| f.bytes).sum();
        writeln!(out, "{}", self.path.display())?;
        let failed = format!("{} failed", self.failures.len());
        let failed = if self.failures.is_empty() {
            s.ok(&failed)
        } else {
            s.warn(&failed)
        };
        writeln!(out, "{} items ({bytes} bytes), {failed}", self.files.len())?;
        for f in &self.failures {
            let error = f.error.lines().next().unwrap_or_default();
            writeln!(out, "  {} {}: {error}", s.warn("could not collect"), f.item)?;
        }
        Ok(())
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_text_lists_files_then_failures() {
        let m = Manifest {
            path: "/tmp/b.tar.gz".into(),
            root: "kubectl-ko-bundle-x".into(),
            created: "2026-01-01T00:00:00Z".into(),
            kubectl_ko_version: "0.1.0".into(),
            files: vec![FileEntry {
                path: "ovn/lflow-list.txt".into(),
                source: "ovn-sbctl lflow-list in kube-system/ovn-central-1".into(),
                bytes: 42,
            }],
            failures: vec![Failure {
                item: "nodes/n2/ovs-vsctl-show.txt".into(),
                source: "ovs-vsctl show".into(),
                error: "pod is Pending\nsecond line".into(),
            }],
        };
        let t = m.to_text();
        assert!(t.contains("1 files, 1 failed"));
        assert!(t.contains("42\tovn/lflow-list.txt\tovn-sbctl lflow-list"));
        assert!(t.contains(
            "FAILED\tnodes/n2/ovs-vsctl-show.txt\tovs-vsctl show\tpod is Pending second line\n"
        ));
        let mut out = Vec::new();
        m.render_text(&mut out, &Style::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("/tmp/b.tar.gz\n1 items (42 bytes), 1 failed\n"));
    }
}
