//! `kubectl ko bundle` against a real sandbox (`bundle`): the archive holds every
//! file its manifest lists (read back with the real `tar -tzf`), with real content
//! (NB backup, br-int flows, lflow-list), no Secret, no failures on a healthy
//! cluster; a node whose ovs-ovn pod is Pending shows up as failures while the
//! bundle is still written; Ctrl-C leaves nothing behind, locally or in the pods.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{json_of, ko, kubeconfig, kubectl, run, text};

const SANDBOX: &str = "bundle";

/// Run `kubectl ko -o json bundle -f <dir>/b.tar.gz`; the manifest it printed and the archive.
fn bundle(kc: &Path, dir: &Path) -> (serde_json::Value, PathBuf) {
    let path = dir.join("b.tar.gz");
    let mut c = ko(kc);
    c.args(["--timeout", "60s", "-o", "json", "bundle", "-f"])
        .arg(&path);
    let (code, manifest, stderr) = json_of(c);
    assert_eq!(code, 0, "{stderr}");
    (manifest, path)
}

/// Every regular file in the archive and its content, read with the tar and flate2 crates.
fn contents(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let f = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = BTreeMap::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

/// The real `tar -tzf` listing.
fn tar_list(archive: &Path) -> Vec<String> {
    let mut c = std::process::Command::new("tar");
    c.arg("-tzf").arg(archive);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

/// Files whose name starts with `prefix` and ends with `suffix`, with their text.
fn files<'a>(
    all: &'a BTreeMap<String, Vec<u8>>,
    root: &str,
    prefix: &str,
    suffix: &str,
) -> Vec<(&'a str, String)> {
    all.iter()
        .filter_map(|(k, v)| {
            let rel = k.strip_prefix(root)?.strip_prefix('/')?;
            (rel.starts_with(prefix) && rel.ends_with(suffix)).then(|| (rel, text(v)))
        })
        .collect()
}

#[test]
fn healthy_sandbox_bundle_has_every_listed_file_and_no_failures() {
    let kc = kubeconfig(SANDBOX);
    let dir = tempfile::tempdir().unwrap();
    let (m, path) = bundle(&kc, dir.path());
    assert_eq!(m["failures"], serde_json::json!([]), "{m:#}");
    let root = m["root"].as_str().unwrap().to_string();
    let listed = tar_list(&path);
    let all = contents(&path);
    let mfiles = m["files"].as_array().unwrap();
    for f in mfiles {
        let p = format!("{root}/{}", f["path"].as_str().unwrap());
        assert!(
            listed.contains(&p),
            "{p} listed in the manifest, not in the archive"
        );
        assert_eq!(all[&p].len() as u64, f["bytes"].as_u64().unwrap(), "{p}");
    }
    assert!(listed.contains(&format!("{root}/MANIFEST")));
    assert_eq!(
        listed.len(),
        mfiles.len() + 2,
        "only the manifest's files plus MANIFEST and manifest.json"
    );
    // The archive's manifest.json is the one printed.
    let inner: serde_json::Value =
        serde_json::from_slice(&all[&format!("{root}/manifest.json")]).unwrap();
    assert_eq!(inner["files"], m["files"]);
    // Only the temporary files' directory entries are gone: nothing but the bundle remains.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");

    let nb = files(&all, &root, "ovn/ovnnb_db.", ".backup");
    assert_eq!(nb.len(), 1);
    assert!(
        nb[0].1.starts_with("OVSDB JSON"),
        "a standalone NB database"
    );
    assert!(nb[0].1.contains("Logical_Switch"));
    let lflows = files(&all, &root, "ovn/lflow-list.txt", "");
    assert!(lflows[0].1.contains("Datapath:") && lflows[0].1.contains("ls_in_"));
    let nodes = common::nodes(&kc);
    for n in &nodes {
        let flows = &files(&all, &root, &format!("nodes/{n}/dump-flows-br-int"), ".txt");
        assert!(flows[0].1.contains("cookie="), "{n}: {}", flows[0].0);
        let show = &files(&all, &root, &format!("nodes/{n}/ovs-vsctl-show"), ".txt");
        assert!(show[0].1.contains("Bridge br-int"), "{n}");
        let log = files(&all, &root, &format!("logs/{n}/ovn/ovn-controller"), ".log");
        assert!(!log.is_empty(), "{n}: no ovn-controller log");
        let log = files(
            &all,
            &root,
            &format!("logs/{n}/openvswitch/ovs-vswitchd"),
            ".log",
        );
        assert!(!log.is_empty(), "{n}: no ovs-vswitchd log");
    }
    let subnets = files(&all, &root, "kubeovn/subnets.json", "");
    assert!(subnets[0].1.contains("ovn-default"));
    for (rel, body) in files(&all, &root, "", ".json") {
        assert!(!rel.to_lowercase().contains("secret"), "{rel}");
        assert!(
            !body.contains("\"kind\": \"Secret\""),
            "{rel} holds a Secret"
        );
    }
    for (rel, body) in files(&all, &root, "", "") {
        let empty_list = rel.starts_with("kubeovn/") || rel == "k8s/endpoints.json";
        assert!(empty_list || !body.is_empty(), "{rel} is empty");
    }
}

/// Puts the pod's status back (Running, Ready) when dropped, even if the test fails.
struct Restore {
    kc: PathBuf,
    pod: String,
    status: serde_json::Value,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let patch = serde_json::json!({ "status": self.status }).to_string();
        patch_status(&self.kc, &self.pod, &patch);
    }
}

fn patch_status(kc: &Path, pod: &str, patch: &str) {
    let mut c = kubectl(kc);
    c.args(["-n", "kube-system", "patch", "pod", pod]).args([
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Make the ovs-ovn pod on `node` Pending (what a kubelet reports before its
/// containers start) through the real kubectl.
fn make_ovs_pending(kc: &Path, node: &str) -> Restore {
    let mut c = kubectl(kc);
    c.args([
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "app=ovs",
        "-o",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_slice(&run(c).stdout).unwrap();
    let pod = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["spec"]["nodeName"] == node)
        .expect("an ovs-ovn pod on the node")
        .clone();
    let mut healthy = pod["status"].clone();
    healthy["phase"] = "Running".into();
    for c in healthy["conditions"].as_array_mut().into_iter().flatten() {
        c["status"] = "True".into();
    }
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let restore = Restore {
        kc: kc.to_path_buf(),
        pod: name.clone(),
        status: healthy,
    };
    patch_status(
        kc,
        &name,
        r#"{"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}]}}"#,
    );
    restore
}

#[test]
fn pending_ovs_pod_is_a_listed_failure_and_the_bundle_is_still_written() {
    let kc = kubeconfig(SANDBOX);
    let nodes = common::nodes(&kc);
    let node = nodes.last().unwrap().clone();
    let _restore = make_ovs_pending(&kc, &node);
    let dir = tempfile::tempdir().unwrap();
    let (m, path) = bundle(&kc, dir.path());
    let failures = m["failures"].as_array().unwrap();
    for item in [
        "ovs-vsctl-show.txt",
        "dump-flows-br-int.txt",
        "versions.txt",
    ] {
        let want = format!("nodes/{node}/{item}");
        let f = failures
            .iter()
            .find(|f| f["item"] == want.as_str())
            .unwrap_or_else(|| panic!("no failure for {want} in {failures:#?}"));
        assert!(f["error"].as_str().unwrap().contains("Pending"), "{f}");
    }
    // The pod's logs are skipped, and said so.
    assert!(
        failures
            .iter()
            .any(|f| f["item"] == "logs/" && f["error"].as_str().unwrap().contains("Pending")),
        "{failures:#?}"
    );
    // The other nodes are all there, and the archive lists the failures too.
    let all = contents(&path);
    let root = m["root"].as_str().unwrap();
    for n in nodes.iter().filter(|n| **n != node) {
        let p = format!("{root}/nodes/{n}/dump-flows-br-int.txt");
        assert!(text(&all[&p]).contains("cookie="), "{p}");
    }
    assert!(!all.contains_key(&format!("{root}/nodes/{node}/dump-flows-br-int.txt")));
    let manifest = text(&all[&format!("{root}/MANIFEST")]);
    assert!(manifest.contains(&format!("FAILED\tnodes/{node}/ovs-vsctl-show.txt")));
    // Text output: the path and the summary line.
    let mut c = ko(&kc);
    c.args(["bundle", "-f"]).arg(dir.path().join("t.tar.gz"));
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().next().unwrap().ends_with("t.tar.gz"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" items (") && stdout.contains(" failed"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_exits_130_and_leaves_nothing_behind() {
    let kc = kubeconfig(SANDBOX);
    let dir = tempfile::tempdir().unwrap();
    let mut c = ko(&kc);
    c.args(["bundle", "-f"]).arg(dir.path().join("b.tar.gz"));
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Collection takes seconds (backups, logs, every node's flows): interrupt it midway.
    std::thread::sleep(Duration::from_millis(800));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Nor in the ovn-central pods: the interrupted backups' copies (named with our pid).
    let mut c = kubectl(&kc);
    c.args(["-n", "kube-system", "get", "pods", "-l", "app=ovn-central"])
        .args(["-o", "jsonpath={.items[*].metadata.name}"]);
    for pod in text(&run(c).stdout).split_whitespace() {
        let mut c = kubectl(&kc);
        c.args(["-n", "kube-system", "exec", pod, "-c", "ovn-central", "--"])
            .args(["ls", "/etc/ovn"]);
        let ls = text(&run(c).stdout);
        assert!(!ls.contains(&format!(".backup.{pid}-")), "{pod}: {ls}");
    }
}
