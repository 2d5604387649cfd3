//! krew packaging: the plugin manifest follows krew's validation rules, the release
//! archive built by `krew-manifest/release.sh` matches the manifest it renders, and
//! once installed the way krew installs it, the real `kubectl` discovers and runs it.
//!
//! krew itself is not fetched: its rules are re-implemented in `rules` below
//! (krew's `validation` package plus the krew-index checks on archives).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use sha2::{Digest, Sha256};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const PLUGIN_BIN: &str = env!("CARGO_BIN_EXE_kubectl-ko");
const PLUGIN_NAME: &str = "ko";

/// The krew `v1alpha2` Plugin manifest. Unknown fields are errors: a typo in a key
/// would otherwise be silently ignored, by us and by krew.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    version: String,
    homepage: Option<String>,
    short_description: String,
    description: Option<String>,
    caveats: Option<String>,
    platforms: Vec<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Option<Selector>,
    uri: String,
    sha256: String,
    files: Option<Vec<FileOp>>,
    bin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOp {
    from: String,
    to: String,
}

/// Platforms the project promises (issue 6): every one must be matched exactly once.
const REQUIRED_PLATFORMS: [(&str, &str); 5] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

mod rules {
    use super::*;

    const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
    const WINDOWS_RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    /// Every os/arch pair krew users run; overlap is checked over all of them.
    const KNOWN_OS: [&str; 5] = ["linux", "darwin", "windows", "freebsd", "openbsd"];
    const KNOWN_ARCH: [&str; 7] = [
        "amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64",
    ];

    pub fn is_safe_plugin_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !WINDOWS_RESERVED
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
    }

    pub fn is_sha256(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// krew parses versions as semver with a mandatory leading `v`.
    pub fn is_v_semver(v: &str) -> bool {
        let Some(rest) = v.strip_prefix('v') else {
            return false;
        };
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (rest, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let numeric = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'))
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts.iter().all(|p| numeric(p))
            && pre.is_none_or(ident)
            && build.is_none_or(ident)
    }

    pub fn selector_matches(sel: &Selector, os: &str, arch: &str) -> bool {
        let label = |k: &str| match k {
            "os" => Some(os),
            "arch" => Some(arch),
            _ => None,
        };
        let labels_ok = sel
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| label(k) == Some(v.as_str()));
        let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            let value = label(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| values.iter().all(|x| x != v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        labels_ok && exprs_ok
    }

    fn validate_selector(sel: Option<&Selector>) -> Result<(), String> {
        let sel = sel.ok_or("nil selector is not supported")?;
        let labels = sel.match_labels.as_ref();
        let exprs = sel.match_expressions.as_ref();
        if labels.is_none() && exprs.is_none_or(|e| e.is_empty()) {
            return Err("empty selector is not supported".into());
        }
        let keys = labels
            .into_iter()
            .flat_map(|l| l.keys())
            .chain(exprs.into_iter().flatten().map(|r| &r.key));
        for key in keys {
            if key != "os" && key != "arch" {
                return Err(format!(
                    "selector key {key:?} not supported (only os and arch)"
                ));
            }
        }
        if labels.is_some_and(|l| l.is_empty()) {
            return Err("`matchLabels` specified but empty".into());
        }
        if exprs.is_some_and(|e| e.is_empty()) {
            return Err("`matchExpressions` specified but empty".into());
        }
        for r in exprs.into_iter().flatten() {
            let has_values = r.values.as_ref().is_some_and(|v| !v.is_empty());
            let ok = match r.operator.as_str() {
                "In" | "NotIn" => has_values,
                "Exists" | "DoesNotExist" => !has_values,
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "selector requirement {r:?} is not a valid label selector requirement"
                ));
            }
        }
        Ok(())
    }

    fn validate_platform(p: &Platform) -> Result<(), String> {
        if p.uri.is_empty() {
            return Err("`uri` has to be set".into());
        }
        if !p.uri.starts_with("https://") {
            return Err(format!("`uri` {} must be an https URL", p.uri));
        }
        if p.sha256.is_empty() {
            return Err("`sha256` sum has to be set".into());
        }
        if !is_sha256(&p.sha256) {
            return Err(format!(
                "`sha256` value {} is not 64 lowercase hex digits",
                p.sha256
            ));
        }
        if p.bin.is_empty() {
            return Err("`bin` has to be set".into());
        }
        if let Some(files) = &p.files {
            if files.is_empty() {
                return Err("`files` has to be unspecified or non-empty".into());
            }
            if files.iter().any(|f| f.from.is_empty() || f.to.is_empty()) {
                return Err("`files` entries need both `from` and `to`".into());
            }
        }
        validate_selector(p.selector.as_ref())
    }

    /// All problems krew (and krew-index) would report for `plugin`, stored as
    /// `<file_name>.yaml`. Empty = valid.
    pub fn validate(file_name: &str, plugin: &Plugin) -> Vec<String> {
        let mut problems = Vec::new();
        if plugin.api_version != API_VERSION {
            problems.push(format!(
                "apiVersion {:?} is not {API_VERSION}",
                plugin.api_version
            ));
        }
        if plugin.kind != "Plugin" {
            problems.push(format!("kind {:?} is not Plugin", plugin.kind));
        }
        if !is_safe_plugin_name(file_name) {
            problems.push(format!("plugin name {file_name:?} is not allowed"));
        }
        if plugin.metadata.name != file_name {
            problems.push(format!(
                "plugin should be named {file_name:?}, not {:?}",
                plugin.metadata.name
            ));
        }
        let spec = &plugin.spec;
        if spec.short_description.is_empty() {
            problems.push("should have a short description".into());
        }
        if spec.short_description.contains(['\r', '\n']) {
            problems.push("should not have line breaks in short description".into());
        }
        // krew-index review asks for a long description; empty caveats are noise.
        if spec
            .description
            .as_deref()
            .is_none_or(|d| d.trim().is_empty())
        {
            problems.push("krew-index needs a description".into());
        }
        if spec.caveats.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problems.push("caveats, when present, must say something".into());
        }
        if !spec
            .homepage
            .as_deref()
            .is_some_and(|h| h.starts_with("https://"))
        {
            problems.push("krew-index needs an https homepage".into());
        }
        if !is_v_semver(&spec.version) {
            problems.push(format!(
                "version {:?} is not a v-prefixed semver",
                spec.version
            ));
        }
        if spec.platforms.is_empty() {
            problems.push("should have a platform specified".into());
        }
        for (i, p) in spec.platforms.iter().enumerate() {
            if let Err(e) = validate_platform(p) {
                problems.push(format!("platform #{i} is badly constructed: {e}"));
            }
        }
        let selectors: Vec<(usize, &Selector)> = spec
            .platforms
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.selector.as_ref().map(|s| (i, s)))
            .collect();
        for os in KNOWN_OS {
            for arch in KNOWN_ARCH {
                let hits: Vec<usize> = selectors
                    .iter()
                    .filter(|(_, s)| selector_matches(s, os, arch))
                    .map(|(i, _)| *i)
                    .collect();
                if hits.len() > 1 {
                    problems.push(format!("{os}/{arch} matches several platforms: {hits:?}"));
                }
            }
        }
        // krew-index installs every platform and checks the download's
        // sha256: a placeholder can never match.
        for p in &spec.platforms {
            if !p.sha256.is_empty() && p.sha256.bytes().all(|b| b == b'0') {
                problems.push(format!(
                    "{} has the all-zero placeholder sha256: no archive has it",
                    p.uri
                ));
            }
        }
        for p in &spec.platforms {
            let windows = p
                .selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, "windows", "amd64"));
            if windows && !p.bin.ends_with(".exe") {
                problems.push(format!("windows bin {:?} must end in .exe", p.bin));
            }
        }
        problems
    }

    /// A release manifest (what the release workflow renders): krew's rules
    /// and every platform the project promises.
    pub fn validate_release(file_name: &str, plugin: &Plugin) -> Vec<String> {
        let mut problems = validate(file_name, plugin);
        for (os, arch) in REQUIRED_PLATFORMS {
            if !plugin
                .spec
                .platforms
                .iter()
                .filter_map(|p| p.selector.as_ref())
                .any(|s| selector_matches(s, os, arch))
            {
                problems.push(format!("no platform for {os}/{arch}"));
            }
        }
        problems
    }

    /// One regular file of an archive.
    #[derive(Debug)]
    pub struct ArchiveFile {
        pub path: String,
        pub mode: u32,
    }

    /// Checks a `.tar.gz` the way krew-index does: only regular files and
    /// directories, no absolute or `..` paths, the bin and LICENSE present (after
    /// the platform's `files` operations), the bin executable.
    pub fn check_tar_gz(
        bytes: &[u8],
        platform: &Platform,
    ) -> Result<Vec<ArchiveFile>, Vec<String>> {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => return Err(vec![format!("not a tar.gz archive: {e}")]),
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => return Err(vec![format!("corrupt archive entry: {e}")]),
            };
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if Path::new(&path).components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            }) {
                problems.push(format!("{path}: absolute or `..` path"));
            }
            if kind.is_symlink() || kind.is_hard_link() {
                problems.push(format!("{path}: links are not allowed in a krew archive"));
            } else if kind.is_file() {
                let mode = entry.header().mode().unwrap_or(0);
                files.push(ArchiveFile {
                    path: path.trim_start_matches("./").to_string(),
                    mode,
                });
            } else if !kind.is_dir() {
                problems.push(format!(
                    "{path}: entry type {kind:?} is not a file or directory"
                ));
            }
        }
        let has = |name: &str| files.iter().find(|f| f.path == name);
        let installed_bin = match &platform.files {
            // krew copies each `from` into `to`; our manifests name plain files.
            Some(ops) => ops
                .iter()
                .find(|op| Path::new(&op.from).file_name() == Path::new(&platform.bin).file_name()),
            None => None,
        };
        if let Some(ops) = &platform.files {
            for op in ops {
                if has(&op.from).is_none() {
                    problems.push(format!(
                        "`files` names {} but the archive lacks it",
                        op.from
                    ));
                }
            }
        }
        let bin_in_archive = installed_bin.map_or(platform.bin.as_str(), |op| op.from.as_str());
        match has(bin_in_archive) {
            None => problems.push(format!("bin {} is not in the archive", platform.bin)),
            Some(f) if f.mode & 0o111 == 0 => problems.push(format!(
                "bin {} is not executable (mode {:o})",
                f.path, f.mode
            )),
            Some(_) => {}
        }
        if has("LICENSE").is_none() {
            problems.push("LICENSE is not in the archive".into());
        }
        if problems.is_empty() {
            Ok(files)
        } else {
            Err(problems)
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_manifest(path: &Path) -> Plugin {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a krew manifest: {e}", path.display()))
}

fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn release_sh(args: &[&std::ffi::OsStr]) -> PathBuf {
    let script = Path::new(REPO).join("krew-manifest/release.sh");
    let out = run(Command::new("bash")
        .arg(script)
        .args(args)
        // A debug build is ~150 MB: level 9 would spend half a minute compressing it.
        .env("KO_GZIP_LEVEL", "1"));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// `krew-manifest/release.sh archive`: packages the test build of the plugin for this
/// platform into `out`; returns the archive path.
fn build_archive(out: &Path) -> PathBuf {
    let (os, arch) = host_platform();
    release_sh(&[
        "archive".as_ref(),
        "--os".as_ref(),
        os.as_ref(),
        "--arch".as_ref(),
        arch.as_ref(),
        "--bin".as_ref(),
        PLUGIN_BIN.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

/// `release.sh manifest` over stand-in archives (empty files) named `names`:
/// the manifest a render with exactly those archives gives, sha256s aside.
fn render_with_archives(dir: &Path, names: &[&str], allow_missing: bool) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for n in names {
        fs::write(dir.join(n), b"").unwrap();
    }
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["manifest".as_ref(), "--out".as_ref(), dir.as_os_str()];
    if allow_missing {
        args.push("--allow-missing".as_ref());
    }
    release_sh(&args)
}

/// Archive file names of every platform the template lists.
const ALL_ARCHIVES: [&str; 5] = [
    "kubectl-ko_v{V}_linux_amd64.tar.gz",
    "kubectl-ko_v{V}_linux_arm64.tar.gz",
    "kubectl-ko_v{V}_darwin_amd64.tar.gz",
    "kubectl-ko_v{V}_darwin_arm64.tar.gz",
    "kubectl-ko_v{V}_windows_amd64.zip",
];

/// A full release manifest, as the release workflow renders it (every archive there).
fn release_manifest(dir: &Path) -> Plugin {
    let names: Vec<String> = ALL_ARCHIVES
        .iter()
        .map(|n| n.replace("{V}", env!("CARGO_PKG_VERSION")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    parse_manifest(&render_with_archives(dir, &names, false))
}

/// `krew-manifest/release.sh manifest --allow-missing`: renders the manifest from the
/// archives in `out`; returns the manifest path.
fn render_manifest(out: &Path) -> PathBuf {
    release_sh(&[
        "manifest".as_ref(),
        "--allow-missing".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

fn platform_for<'a>(plugin: &'a Plugin, os: &str, arch: &str) -> &'a Platform {
    let hits: Vec<&Platform> = plugin
        .spec
        .platforms
        .iter()
        .filter(|p| {
            p.selector
                .as_ref()
                .is_some_and(|s| rules::selector_matches(s, os, arch))
        })
        .collect();
    assert_eq!(hits.len(), 1, "exactly one platform must match {os}/{arch}");
    hits[0]
}

fn find_on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH: install kubectl (e2e/install-deps says how)")
        })
}

#[test]
fn checked_in_plugin_yaml_follows_krew_rules_and_the_template() {
    let checked_in = parse_manifest(&Path::new(REPO).join("plugin.yaml"));
    assert_eq!(
        rules::validate(PLUGIN_NAME, &checked_in),
        Vec::<String>::new()
    );
    assert_eq!(
        checked_in.spec.version,
        format!("v{}", env!("CARGO_PKG_VERSION")),
        "plugin.yaml is for another version than Cargo.toml: regenerate it with krew-manifest/release.sh"
    );

    // The checked-in manifest must be what the release script renders from the
    // template today with the archives it lists (and only those), sha256s aside.
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<&str> = checked_in
        .spec
        .platforms
        .iter()
        .filter_map(|p| p.uri.rsplit('/').next())
        .collect();
    let rendered = parse_manifest(&render_with_archives(tmp.path(), &names, true));
    let strip = |p: &Plugin| {
        let mut p = p.clone();
        p.spec.platforms.iter_mut().for_each(|pl| pl.sha256.clear());
        format!("{p:?}")
    };
    assert_eq!(
        strip(&checked_in),
        strip(&rendered),
        "plugin.yaml is out of date with krew-manifest/.krew.yaml: regenerate it with krew-manifest/release.sh"
    );
}

/// `--allow-missing` leaves out what was not built; without it a missing archive
/// is an error, and a full render is a valid release manifest.
#[test]
fn release_manifest_has_every_platform_and_partial_renders_only_what_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let full = release_manifest(&tmp.path().join("full"));
    assert_eq!(
        rules::validate_release(PLUGIN_NAME, &full),
        Vec::<String>::new()
    );

    let one = format!(
        "kubectl-ko_v{}_darwin_arm64.tar.gz",
        env!("CARGO_PKG_VERSION")
    );
    let partial = parse_manifest(&render_with_archives(
        &tmp.path().join("partial"),
        &[&one],
        true,
    ));
    assert_eq!(partial.spec.platforms.len(), 1, "{partial:#?}");
    assert!(partial.spec.platforms[0].uri.ends_with(&one));
    assert_eq!(rules::validate(PLUGIN_NAME, &partial), Vec::<String>::new());
    let text = fs::read_to_string(tmp.path().join("partial/plugin.yaml")).unwrap();
    assert!(
        text.contains("# Left out") && text.contains("windows_amd64.zip"),
        "{text}"
    );

    let script = Path::new(REPO).join("krew-manifest/release.sh");
    let dir = tmp.path().join("strict");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&one), b"").unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .args(["manifest", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a missing archive must fail a release render"
    );
    assert!(!dir.join("plugin.yaml").exists() && !dir.join("plugin.yaml.tmp").exists());
}

#[test]
fn release_archive_matches_manifest_and_installs_like_krew() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("release");
    let archive_path = build_archive(&out);
    let manifest_path = render_manifest(&out);
    let plugin = parse_manifest(&manifest_path);
    assert_eq!(rules::validate(PLUGIN_NAME, &plugin), Vec::<String>::new());

    // krew picks the platform by selector, downloads `uri` and checks `sha256`.
    let (os, arch) = host_platform();
    let platform = platform_for(&plugin, os, arch);
    let archive_name = archive_path.file_name().unwrap().to_str().unwrap();
    assert!(
        platform.uri.ends_with(&format!("/{archive_name}")),
        "manifest uri {} does not name the archive {archive_name}",
        platform.uri
    );
    let bytes = fs::read(&archive_path).unwrap();
    assert_eq!(
        platform.sha256,
        sha256_hex(&bytes),
        "manifest sha256 is not the archive's"
    );
    let files = rules::check_tar_gz(&bytes, platform).unwrap_or_else(|p| panic!("{p:#?}"));
    let license = files.iter().find(|f| f.path == "LICENSE").unwrap();
    assert!(license.mode & 0o444 != 0);

    // Install the way krew does: unpack, apply `files`, store under
    // store/<plugin>/<version>/, link bin/kubectl-<plugin> to the bin, keep a receipt.
    let root = tmp.path().join("krew");
    let unpacked = tmp.path().join("download");
    tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]))
        .unpack(&unpacked)
        .unwrap();
    let store = root
        .join("store")
        .join(PLUGIN_NAME)
        .join(&plugin.spec.version);
    fs::create_dir_all(&store).unwrap();
    for op in platform.files.as_deref().unwrap_or_default() {
        let dest = store
            .join(&op.to)
            .join(Path::new(&op.from).file_name().unwrap());
        fs::copy(unpacked.join(&op.from), dest).unwrap();
    }
    let bin_dir = root.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let link = bin_dir.join(format!("kubectl-{PLUGIN_NAME}"));
    std::os::unix::fs::symlink(store.join(&platform.bin), &link).unwrap();
    fs::create_dir_all(root.join("receipts")).unwrap();
    fs::copy(
        &manifest_path,
        root.join("receipts").join(format!("{PLUGIN_NAME}.yaml")),
    )
    .unwrap();

    // kubectl alone in its own directory, so only krew's bin dir holds plugins.
    let kubectl_dir = tmp.path().join("kubectl-bin");
    fs::create_dir_all(&kubectl_dir).unwrap();
    std::os::unix::fs::symlink(find_on_path("kubectl"), kubectl_dir.join("kubectl")).unwrap();
    let path = std::env::join_paths([&bin_dir, &kubectl_dir]).unwrap();
    let kubectl = |args: &[&str]| {
        Command::new(kubectl_dir.join("kubectl"))
            .args(args)
            .env("PATH", &path)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };

    let list = kubectl(&["plugin", "list"]);
    let list_out = String::from_utf8_lossy(&list.stdout);
    println!(
        "kubectl plugin list:\n{list_out}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        list.status.success(),
        "kubectl plugin list reported a problem: {list:?}"
    );
    assert!(
        list_out.lines().any(|l| Path::new(l.trim()) == link),
        "kubectl plugin list does not show {}",
        link.display()
    );

    // kubectl runs the installed plugin: same output and status as running it directly.
    let via_kubectl = kubectl(&[PLUGIN_NAME, "version"]);
    let direct = Command::new(PLUGIN_BIN).arg("version").output().unwrap();
    println!(
        "kubectl ko version:\n{}",
        String::from_utf8_lossy(&via_kubectl.stdout)
    );
    assert_eq!(via_kubectl.status.code(), direct.status.code());
    assert_eq!(via_kubectl.stdout, direct.stdout);
    assert!(
        !via_kubectl.stdout.is_empty(),
        "kubectl ko version printed nothing"
    );
}

/// The rules must reject what krew rejects: each mutation breaks exactly one rule.
#[test]
fn krew_rules_reject_broken_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let good = release_manifest(tmp.path());
    assert!(rules::validate_release(PLUGIN_NAME, &good).is_empty());

    let check = |what: &str, mutate: &dyn Fn(&mut Plugin), expect: &str| {
        let mut p = good.clone();
        mutate(&mut p);
        let problems = rules::validate_release(PLUGIN_NAME, &p);
        assert!(
            problems.iter().any(|m| m.contains(expect)),
            "{what}: expected a problem containing {expect:?}, got {problems:?}"
        );
    };
    check(
        "uppercase sha",
        &|p| {
            p.spec.platforms[0].sha256 = p.spec.platforms[0].sha256.to_uppercase().replace('0', "A")
        },
        "sha256",
    );
    check(
        "short sha",
        &|p| p.spec.platforms[0].sha256.truncate(63),
        "sha256",
    );
    check(
        "version without v",
        &|p| p.spec.version = "0.1.0".into(),
        "semver",
    );
    check(
        "version not semver",
        &|p| p.spec.version = "v0.1".into(),
        "semver",
    );
    check(
        "wrong name",
        &|p| p.metadata.name = "kubectl-ko".into(),
        "should be named",
    );
    check(
        "multi-line short description",
        &|p| p.spec.short_description.push_str("\nmore"),
        "line breaks",
    );
    check(
        "wrong apiVersion",
        &|p| p.api_version = "krew.googlecontainertools.github.com/v1alpha1".into(),
        "apiVersion",
    );
    check("empty bin", &|p| p.spec.platforms[1].bin.clear(), "`bin`");
    check(
        "no selector",
        &|p| p.spec.platforms[0].selector = None,
        "nil selector",
    );
    check(
        "unsupported selector key",
        &|p| {
            if let Some(l) = p.spec.platforms[0]
                .selector
                .as_mut()
                .and_then(|s| s.match_labels.as_mut())
            {
                l.insert("region".into(), "eu".into());
            }
        },
        "not supported",
    );
    check(
        "overlapping selectors",
        &|p| {
            let dup = p.spec.platforms[0].clone();
            p.spec.platforms.push(dup);
        },
        "matches several platforms",
    );
    check(
        "overlap through matchExpressions",
        &|p| {
            let mut any_linux = p.spec.platforms[0].clone();
            any_linux.selector = Some(Selector {
                match_labels: None,
                match_expressions: Some(vec![Requirement {
                    key: "os".into(),
                    operator: "In".into(),
                    values: Some(vec!["linux".into()]),
                }]),
            });
            p.spec.platforms.push(any_linux);
        },
        "matches several platforms",
    );
    check(
        "missing platform",
        &|p| {
            p.spec.platforms.pop();
        },
        "no platform for windows/amd64",
    );
    check(
        "placeholder sha256",
        &|p| p.spec.platforms[1].sha256 = "0".repeat(64),
        "all-zero placeholder",
    );
    check(
        "empty files",
        &|p| p.spec.platforms[0].files = Some(vec![]),
        "`files`",
    );
    check(
        "windows bin without .exe",
        &|p| {
            if let Some(w) = p
                .spec
                .platforms
                .iter_mut()
                .find(|pl| pl.bin.ends_with(".exe"))
            {
                w.bin = "kubectl-ko".into();
            }
        },
        ".exe",
    );

    assert!(rules::is_v_semver("v1.2.3-rc.1+build.5"));
    assert!(!rules::is_v_semver("v01.2.3"));
}

fn tar_gz(entries: &[(&str, tar::EntryType, u32, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, kind, mode, data) in entries {
        let mut header = tar::Header::new_gnu();
        // Written raw: the tar crate refuses to *build* `..` paths, krew archives in
        // the wild can still contain them.
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        header.set_size(data.len() as u64);
        if kind.is_symlink() {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn archive_rules_reject_links_escapes_and_missing_files() {
    let plugin = parse_manifest(&Path::new(REPO).join("plugin.yaml"));
    let linux = platform_for(&plugin, "linux", "amd64");
    use tar::EntryType as T;
    let bin: (&str, T, u32, &[u8]) = ("kubectl-ko", T::Regular, 0o755, b"\x7fELF");
    let license: (&str, T, u32, &[u8]) = ("LICENSE", T::Regular, 0o644, b"Apache");

    assert!(rules::check_tar_gz(&tar_gz(&[bin, license]), linux).is_ok());
    let problems = |entries: &[(&str, T, u32, &[u8])]| {
        rules::check_tar_gz(&tar_gz(entries), linux)
            .err()
            .unwrap_or_default()
            .join("; ")
    };
    assert!(problems(&[bin]).contains("LICENSE"));
    assert!(problems(&[license]).contains("bin kubectl-ko is not in the archive"));
    assert!(
        problems(&[("kubectl-ko", T::Regular, 0o644, b"x"), license]).contains("not executable")
    );
    assert!(
        problems(&[bin, license, ("evil", T::Symlink, 0o777, b"")])
            .contains("links are not allowed")
    );
    assert!(problems(&[bin, license, ("../evil", T::Regular, 0o644, b"x")]).contains("`..` path"));
    assert!(
        problems(&[bin, license, ("/etc/evil", T::Regular, 0o644, b"x")]).contains("`..` path")
    );

    let mut not_gz = Vec::new();
    std::io::repeat(7)
        .take(64)
        .read_to_end(&mut not_gz)
        .unwrap();
    assert!(rules::check_tar_gz(&not_gz, linux).is_err());
}
