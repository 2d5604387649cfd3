//! The one reader of captured outputs: `<crate>/tests/fixtures/<rel>`. A capture is
//! only evidence when the command that produced it is written down, so the reader
//! refuses one whose command it cannot find: `<stem>.cmd` next to it, or a
//! `README.md`, `*.sh` capture script or `commands*.txt` list in its directory or a
//! parent (up to `tests/fixtures`) that names the file or the directory holding it.

use std::path::{Path, PathBuf};

/// `fixture!("raft/status-leader.txt")`: the text of
/// `<calling crate>/tests/fixtures/raft/status-leader.txt`; panics naming the path when
/// it is missing or when no producing command is written down for it.
#[macro_export]
macro_rules! fixture {
    ($rel:expr) => {
        $crate::fixture::read(::std::path::Path::new(env!("CARGO_MANIFEST_DIR")), $rel)
    };
}

/// `fixtures_in!("ofproto", "txt")`: every `*.txt` in
/// `<calling crate>/tests/fixtures/ofproto`, sorted by name, as (path, text), each
/// checked like [`fixture!`].
#[macro_export]
macro_rules! fixtures_in {
    ($dir:expr, $ext:expr) => {
        $crate::fixture::read_dir(
            ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            $dir,
            $ext,
        )
    };
}

fn base(crate_dir: &Path) -> PathBuf {
    crate_dir.join("tests/fixtures")
}

pub fn read(crate_dir: &Path, rel: &str) -> String {
    let path = base(crate_dir).join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    check_provenance(&base(crate_dir), &path);
    text
}

pub fn read_dir(crate_dir: &Path, dir: &str, ext: &str) -> Vec<(PathBuf, String)> {
    let d = base(crate_dir).join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("fixture directory {}: {e}", d.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()));
            check_provenance(&base(crate_dir), &p);
            (p, text)
        })
        .collect()
}

/// Where the command that produced `path` is written down, if anywhere.
pub fn producing_command(base: &Path, path: &Path) -> Option<PathBuf> {
    let cmd = path.with_extension("cmd");
    if cmd.is_file() {
        return Some(cmd);
    }
    // Names a capture script or README may use for it: the file, its stem, and each
    // directory between `base` and the file.
    let mut names: Vec<String> = Vec::new();
    if let Some(n) = path.file_name() {
        names.push(n.to_string_lossy().into_owned());
    }
    if let Some(s) = path.file_stem() {
        names.push(s.to_string_lossy().into_owned());
    }
    let mut dir = path.parent()?;
    loop {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            let file = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let doc = file.as_deref().is_some_and(|n| {
                n == "README.md"
                    || n.ends_with(".sh")
                    || (n.starts_with("commands") && n.ends_with(".txt"))
            });
            if doc
                && let Ok(t) = std::fs::read_to_string(&p)
                && names.iter().any(|n| t.contains(n.as_str()))
            {
                return Some(p);
            }
        }
        if dir == base || !dir.starts_with(base) {
            return None;
        }
        if let Some(n) = dir.file_name() {
            names.push(n.to_string_lossy().into_owned());
        }
        dir = dir.parent()?;
    }
}

fn check_provenance(base: &Path, path: &Path) {
    assert!(
        producing_command(base, path).is_some(),
        "fixture {} has no producing command written down: add {} with the command \
         that captured it, or name it in a README.md or capture script beside it",
        path.display(),
        path.with_extension("cmd").display()
    );
}
