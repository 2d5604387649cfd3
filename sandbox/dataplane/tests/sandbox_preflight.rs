//! Bad input gives one clear sentence and leaves nothing half-created. These run the
//! ko-sandbox binary directly: they never get as far as needing the emulator.

use std::path::Path;
use std::process::{Command, Output};

use ko_testkit::effective_name;

fn ko_sandbox(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ko-sandbox"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running ko-sandbox")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn nothing_created(name: &str) {
    let name = effective_name(name);
    assert!(
        !Path::new(&format!("/run/kubectl-ko-sandbox/{name}")).exists(),
        "state dir of {name} created"
    );
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("{name}-")))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "netns created: {left:?}");
}

#[test]
fn without_root_it_says_to_use_sudo() {
    let bin = env!("CARGO_BIN_EXE_ko-sandbox");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin,
            "up",
            "--name",
            "kt-noroot",
        ])
        .output()
        .expect("setpriv");
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("needs root") && e.contains("sudo"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one sentence expected: {e}");
    nothing_created("kt-noroot");
}

#[test]
fn missing_tools_name_the_apt_command() {
    let empty = std::env::temp_dir().join("kt-empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = ko_sandbox(
        &["up", "--name", "kt-nopath"],
        &[("PATH", empty.to_str().unwrap())],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("apt-get install -y ovn-central ovn-host openvswitch-switch"),
        "{e}"
    );
    nothing_created("kt-nopath");
}

#[test]
fn a_name_whose_netns_exists_is_refused() {
    let name = "kt-busy";
    let ns = format!("{}-node1", effective_name(name));
    let st = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(st.success());
    let out = ko_sandbox(&["up", "--name", name], &[]);
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("already exist") && e.contains("--name"), "{e}");
    nothing_created(name);
}

#[test]
fn a_port_in_use_is_refused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = ko_sandbox(&["up", "--name", "kt-port", "--api-port", &port], &[]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("already in use"), "{e}");
    nothing_created("kt-port");
}

#[test]
fn bad_names_and_node_counts_are_refused() {
    let out = ko_sandbox(&["up", "--name", "Bad_Name"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid sandbox name"));
    for bad in ["0", "33"] {
        let out = ko_sandbox(&["up", "--name", "kt-nodes", "--nodes", bad], &[]);
        assert!(!out.status.success());
        let e = stderr(&out);
        assert!(
            e.contains(&format!("--nodes {bad} is out of range: use 1 to 32")),
            "{e}"
        );
        nothing_created("kt-nodes");
    }
    let out = ko_sandbox(&["status", "--name", "kt-never"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not up"), "{}", stderr(&out));
}
