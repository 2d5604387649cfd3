//! The state directory: where a sandbox records what it created, so `down` can undo
//! it even after a crash, and the files the emulator reads.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;

pub const DEFAULT_ROOT: &str = "/run/kubectl-ko-sandbox";

#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    pub name: String,
}

impl Paths {
    pub fn new(name: &str) -> Self {
        let root = std::env::var_os("KO_SANDBOX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Paths {
            root,
            name: name.to_string(),
        }
    }
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(format!("{}.lock", self.name))
    }
    pub fn api(&self) -> PathBuf {
        self.dir().join("api")
    }
    pub fn objects(&self) -> PathBuf {
        self.api().join("objects")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.api().join("kubeconfig")
    }
    pub fn plan_file(&self) -> PathBuf {
        self.dir().join("sandbox.json")
    }
    pub fn ready_file(&self) -> PathBuf {
        self.dir().join("ready")
    }
    pub fn created_log(&self) -> PathBuf {
        self.dir().join("created.log")
    }
    pub fn faults_file(&self) -> PathBuf {
        self.dir().join("faults.json")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir().join("logs")
    }
    pub fn pod_dir(&self, dir_name: &str) -> PathBuf {
        self.dir().join("pods").join(dir_name)
    }
}

/// An exclusive lock on `<root>/<name>.lock`, released when dropped.
pub struct Lock {
    _file: File,
}

pub fn lock(paths: &Paths) -> Result<Lock> {
    fs::create_dir_all(&paths.root)
        .with_context(|| format!("creating {}", paths.root.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock_file())
        .with_context(|| format!("opening lock file {}", paths.lock_file().display()))?;
    file.lock()
        .with_context(|| format!("locking {}", paths.lock_file().display()))?;
    Ok(Lock { _file: file })
}

/// One thing the sandbox created, appended to `created.log` before (pid: right after)
/// it is created.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Created {
    Netns { name: String },
    Pid { pid: u32, what: String },
    HostDir { path: String },
}

pub struct Recorder {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Recorder {
    pub fn new(paths: &Paths) -> Self {
        Recorder {
            path: paths.created_log(),
            lock: Mutex::new(()),
        }
    }
    pub fn record(&self, c: &Created) -> Result<()> {
        let _g = self
            .lock
            .lock()
            .map_err(|_| anyhow::anyhow!("recorder lock poisoned"))?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let mut line = serde_json::to_string(c)?;
        line.push('\n');
        f.write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

pub fn read_created(paths: &Paths) -> Vec<Created> {
    fs::read_to_string(paths.created_log())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn load_plan(paths: &Paths) -> Result<Plan> {
    let p = paths.plan_file();
    let text = fs::read_to_string(&p).with_context(|| {
        format!(
            "sandbox `{}` is not up (no {}); start it with `e2e/sandbox up --name {}`",
            paths.name,
            p.display(),
            paths.name
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

pub fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(v)?;
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// Names of the other sandboxes that have a state directory under the same root.
pub fn other_sandboxes(paths: &Paths) -> Vec<String> {
    let Ok(rd) = fs::read_dir(&paths.root) else {
        return vec![];
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != &paths.name)
        .collect()
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "invalid sandbox name `{name}`: use 1-20 characters of a-z, 0-9 and '-' (not at either end), e.g. `--name ko`"
        );
    }
    Ok(())
}
