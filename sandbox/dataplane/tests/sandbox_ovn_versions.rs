//! The sandbox on the OVN versions Kube-OVN ships: `up --ovn 25.03|26.03` runs the
//! ovn-central, ovs-ovn, kube-ovn-cni and pinger pods from a cached Debian image
//! (their exec enters it), the cluster works on it, `down` leaves no mount behind,
//! and the image is built once, reused, and rebuilt when broken.

use std::path::{Path, PathBuf};

use ko_testkit::{Kubectl, sandbox_cmd, sandbox_command, sandbox_up, status_json};

/// Every mountinfo line of every process that mentions `needle`.
fn mounts_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .is_none()
        {
            continue;
        }
        let mi = std::fs::read_to_string(e.path().join("mountinfo")).unwrap_or_default();
        out.extend(
            mi.lines()
                .filter(|l| l.contains(needle))
                .map(|l| format!("pid {}: {l}", e.file_name().to_string_lossy())),
        );
    }
    out
}

/// `kubectl ko <args>` with the plugin built next to ko-sandbox (a workspace build,
/// as e2e/test-all makes); returns stdout.
fn ko(k: &Kubectl, args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_BIN_EXE_ko-sandbox"))
        .parent()
        .unwrap();
    assert!(
        dir.join("kubectl-ko").exists(),
        "{}/kubectl-ko is missing: build the plugin first (cargo build -p kubectl-ko)",
        dir.display()
    );
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kubectl takes no flags before a plugin's name: the kubeconfig goes by env.
    let out = std::process::Command::new("kubectl")
        .arg("ko")
        .args(args)
        .env("KUBECONFIG", &k.kubeconfig)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl ko {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn pods_named(st: &serde_json::Value, prefix: &str) -> Vec<serde_json::Value> {
    st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect()
}

/// Bring `name` up on `ovn`, check the pods run it and the cluster works, then `down`
/// and check nothing of it is left mounted anywhere.
fn runs_version(name: &str, ovn: &str, ovs: &str) {
    let kc = sandbox_up(name, &["--ovn", ovn]);
    let state_dir: PathBuf = kc.parent().unwrap().parent().unwrap().to_path_buf();
    let k = Kubectl::new(kc);
    let st = status_json(name);
    let real_name = st["name"].as_str().unwrap().to_string();
    assert_eq!(st["healthy"], true, "{:#}", st["problems"]);
    assert_eq!(st["ovn"]["version"], ovn);
    let image = st["ovn"]["image"]
        .as_str()
        .expect("an image path")
        .to_string();
    assert!(Path::new(&image).join("usr/bin/ovn-northd").exists());

    // The daemons that run are the image's: each answers `version` with it.
    let daemons: Vec<_> = st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["versions"].is_object())
        .collect();
    assert_eq!(
        daemons.len(),
        6,
        "3 ovn-central + 3 ovs-ovn pods report versions"
    );
    for p in &daemons {
        let v = &p["versions"];
        assert!(
            v["ovn"].as_str().unwrap().starts_with(&format!("{ovn}.")),
            "{}: {v}",
            p["name"]
        );
        assert!(
            v["ovs"].as_str().unwrap().starts_with(&format!("{ovs}.")),
            "{}: {v}",
            p["name"]
        );
        assert_eq!(p["root"], "image");
    }

    // exec enters the pod's root filesystem, as a container runtime does.
    for p in pods_named(&st, "ovn-central-") {
        let pod = p["name"].as_str().unwrap();
        let (code, out, err) = k.exec(
            "kube-system",
            pod,
            Some("ovn-central"),
            &["ovn-nbctl", "--version"],
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            first_line(&out).starts_with(&format!("ovn-nbctl {ovn}.")),
            "{pod}: {out}"
        );
        // NB and SB: every member is in the 3-member cluster
        for (ctl, db) in [
            ("/var/run/ovn/ovnnb_db.ctl", "OVN_Northbound"),
            ("/var/run/ovn/ovnsb_db.ctl", "OVN_Southbound"),
        ] {
            let (code, out, err) = k.exec(
                "kube-system",
                pod,
                Some("ovn-central"),
                &["ovn-appctl", "-t", ctl, "cluster/status", db],
            );
            assert_eq!(code, 0, "{err}");
            assert!(out.contains("Status: cluster member"), "{pod} {db}: {out}");
        }
    }
    for db in ["nb", "sb"] {
        let leaders = st["central"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c[db] == "leader")
            .count();
        assert_eq!(leaders, 1, "{db}: {:#}", st["central"]);
    }
    for (prefix, container) in [("ovs-ovn-", "openvswitch"), ("kube-ovn-cni-", "cni-server")] {
        for p in pods_named(&st, prefix) {
            let pod = p["name"].as_str().unwrap();
            let (code, out, err) = k.exec(
                "kube-system",
                pod,
                Some(container),
                &["ovs-vsctl", "--version"],
            );
            assert_eq!(code, 0, "{pod}: {err}");
            assert!(
                out.contains(&format!("Open vSwitch) {ovs}.")),
                "{pod}: {out}"
            );
            // the pod's OVS is the running one (its db.sock is bound into the image)
            let (code, out, err) = k.exec(
                "kube-system",
                pod,
                Some(container),
                &["ovs-vsctl", "br-exists", "br-int"],
            );
            assert_eq!(code, 0, "{pod}: br-int missing: {out}{err}");
        }
    }
    // Workload pods keep the host's filesystem.
    let host_debian = std::fs::read_to_string("/etc/debian_version").unwrap_or_default();
    let (_, out, _) = k.exec("default", "client-1", None, &["cat", "/etc/debian_version"]);
    assert_eq!(out, host_debian, "client-1 should see the host's files");

    // Cross-node traffic through the image's ovn-controller and ovs-vswitchd.
    let web2 = k.pod_ips("default", "web-2");
    assert!(
        k.ping("default", "client-1", &web2[0], "3"),
        "client-1 (node 1) cannot ping web-2 {} (node 2) on OVN {ovn}",
        web2[0]
    );
    // and the pinger runs from the image too: it pings the other pinger pods
    let pinger = pods_named(&st, "kube-ovn-pinger-");
    let other = pinger[1]["ip4"].as_str().unwrap();
    let (code, out, err) = k.exec(
        "kube-system",
        pinger[0]["name"].as_str().unwrap(),
        None,
        &["ping", "-c", "2", "-W", "1", other],
    );
    assert_eq!(code, 0, "pinger ping {other}: {out}{err}");

    // The plugin's passthrough reaches the image's tools.
    let nb = ko(&k, &["nbctl", "--version"]);
    assert!(
        first_line(&nb).starts_with(&format!("ovn-nbctl {ovn}.")),
        "{nb}"
    );
    let show = ko(&k, &["nbctl", "show"]);
    assert!(
        show.contains("(ovn-default)") && show.contains("port client-1.default"),
        "{show}"
    );
    let vs = ko(&k, &["vsctl", "kube-ovn-worker", "show"]);
    assert!(
        vs.contains("Bridge br-int") && vs.contains("Port ovn0"),
        "{vs}"
    );
    let vs = ko(&k, &["vsctl", "kube-ovn-worker", "--version"]);
    assert!(
        first_line(&vs).contains(&format!("Open vSwitch) {ovs}.")),
        "{vs}"
    );

    // Another version on the running sandbox is refused, like another --nodes.
    let other_ovn = if ovn == "25.03" { "26.03" } else { "25.03" };
    let out = sandbox_cmd(&["up", "--name", name, "--ovn", other_ovn]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "up --ovn {other_ovn} on a {ovn} sandbox must refuse"
    );
    assert!(
        err.contains(&format!("on OVN {ovn}")) && err.contains("down"),
        "{err}"
    );

    let out = sandbox_cmd(&["down", "--name", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = mounts_mentioning(&state_dir.display().to_string());
    assert!(
        left.is_empty(),
        "mounts left after down:\n{}",
        left.join("\n")
    );
    assert!(!state_dir.exists());
    let netns: Vec<_> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("{real_name}-")))
                .collect()
        })
        .unwrap_or_default();
    assert!(netns.is_empty(), "netns left: {netns:?}");
}

#[test]
fn ovn_25_03_runs_from_its_image() {
    runs_version("kt-v25", "25.03", "3.5");
}

#[test]
fn ovn_26_03_runs_from_its_image() {
    runs_version("kt-v26", "26.03", "4.0");
}

/// A private cache directory for one test (never the shared one other sandboxes use).
struct Cache(PathBuf);

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("lock"));
    }
}

fn private_cache(what: &str) -> Cache {
    let p = PathBuf::from(format!(
        "/var/cache/kubectl-ko-sandbox/test-{what}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    Cache(p)
}

fn marker(image: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(image.join(".ko-sandbox-image.json")).unwrap())
        .unwrap()
}

#[test]
fn the_image_is_reused_and_a_broken_one_rebuilt() {
    // The shared cache has the 25.03 image (built here if nothing built it yet).
    let out = sandbox_cmd(&["image", "--ovn", "25.03"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shared = PathBuf::from(stdout.split_whitespace().next().unwrap());
    // A copy in a private cache: breaking it cannot disturb sandboxes on the shared one.
    let cache = private_cache("images");
    let image = cache.0.join("25.03");
    let cp = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&shared)
        .arg(&image)
        .status()
        .unwrap();
    assert!(cp.success());
    let before = marker(&image);

    let up = sandbox_command(&["up", "--name", "kt-img", "--ovn", "25.03"])
        .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{err}");
    assert!(
        !err.contains("building"),
        "a ready image must be reused: {err}"
    );
    assert!(
        err.contains(&format!("from the image {}", image.display())),
        "{err}"
    );
    assert_eq!(marker(&image), before, "reusing must not touch the image");
    let down = sandbox_cmd(&["down", "--name", "kt-img"]);
    assert!(down.status.success());

    // Broken = no marker (as after a build that was killed): the next use rebuilds it.
    std::fs::remove_file(image.join(".ko-sandbox-image.json")).unwrap();
    let out = sandbox_command(&["image", "--ovn", "25.03"])
        .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rebuild failed: {err}");
    assert!(
        err.contains("is not usable") && err.contains("rebuilding"),
        "{err}"
    );
    let after = marker(&image);
    assert!(
        after["built"].as_u64() > before["built"].as_u64(),
        "{after}"
    );
    assert!(after["ovn_version"].as_str().unwrap().starts_with("25.03."));
    let leftovers: Vec<_> = std::fs::read_dir(&cache.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary directories left: {leftovers:?}"
    );
}

#[test]
fn a_build_without_network_fails_with_one_sentence() {
    let cache = private_cache("nonet");
    // Nothing listens on loopback port 9: the download fails as with no network.
    let out = sandbox_command(&["image", "--ovn", "26.03"])
        .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
        .env("KO_SANDBOX_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("could not download Debian sid") && last.contains("no network?"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&cache.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "26.03.lock" && n != "26.03.build.log")
        .collect();
    assert!(left.is_empty(), "a failed build left {left:?}");
}

/// OVN 24.03 (Kube-OVN 1.13/1.14) has no Debian package: without an image built
/// from source, `image` and `up` say how to make one, and `--from-dir` refuses
/// a directory that is no `make install` of OVS and OVN.
#[test]
fn ovn_24_03_without_its_source_build_says_how_to_make_it() {
    let cache = private_cache("src2403");
    let out = sandbox_command(&["image", "--ovn", "24.03"])
        .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no Debian suite ships OVN 24.03") && err.contains("build-24.03.sh"),
        "{err}"
    );
    let out = sandbox_command(&[
        "image",
        "--ovn",
        "24.03",
        "--from-dir",
        &cache.0.display().to_string(),
    ])
    .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("has no usr/bin/ovn-northd"), "{err}");
    let out = sandbox_command(&["image", "--ovn", "25.03", "--from-dir", "/nonexistent"])
        .env("KO_SANDBOX_IMAGE_DIR", &cache.0)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("comes from Debian trixie"));
}
