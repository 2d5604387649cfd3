//! `down` leaves nothing behind: no process, netns, link, mount or file; also after
//! an `up` that was killed half way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ko_testkit::{effective_name, sandbox_cmd, sandbox_up, status_json};

fn netns_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// `name` is the effective name (see `effective_name`), as in the other helpers here.
fn recorded_pids(name: &str) -> Vec<u32> {
    let log = std::fs::read_to_string(format!("/run/kubectl-ko-sandbox/{name}/created.log"))
        .unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|p| *p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn assert_nothing_left(name: &str, pids: &[u32], veths: &[String]) {
    let prefix = format!("{name}-");
    assert!(
        netns_with_prefix(&prefix).is_empty(),
        "netns left: {:?}",
        netns_with_prefix(&prefix)
    );
    let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    let dir = format!("/run/kubectl-ko-sandbox/{name}");
    assert!(
        processes_mentioning(&dir).is_empty(),
        "processes still using {dir}"
    );
    assert!(!Path::new(&dir).exists(), "{dir} left");
    assert!(
        !Path::new(&format!("/run/kubectl-ko-sandbox/{name}.lock")).exists(),
        "lock file left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir) && !mounts.contains(&format!("/run/netns/{prefix}")),
        "mounts left"
    );
    // every link lives in a sandbox netns; none may show up in the root netns
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    for v in veths {
        assert!(
            !links.contains(v.as_str()),
            "link {v} left in the root netns"
        );
    }
}

#[test]
fn down_removes_every_process_netns_mount_and_file() {
    let name = "kt-down";
    let real = effective_name(name);
    sandbox_up(name, &[]);
    let st = status_json(name);
    let mut pids = recorded_pids(&real);
    let veths: Vec<String> = st["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["veth"].as_str().map(String::from))
        .collect();
    // the OVS/OVN daemons inside the pods are not recorded; they live in the node netns
    for n in st["nodes"].as_array().unwrap() {
        let ns = n["netns"].as_str().unwrap();
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .unwrap();
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    assert!(
        pids.len() > 30,
        "expected many sandbox processes, got {}",
        pids.len()
    );
    assert!(!netns_with_prefix(&format!("{real}-")).is_empty());

    let out = sandbox_cmd(&["down", "--name", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&real, &pids, &veths);
    // down twice is fine
    let out = sandbox_cmd(&["down", "--name", name]);
    assert!(out.status.success());
}

#[test]
fn down_cleans_up_after_an_up_killed_half_way() {
    let name = "kt-crash";
    let real = effective_name(name);
    let _ = sandbox_cmd(&["down", "--name", name]);
    // build first so the kill lands inside ko-sandbox, not inside cargo
    let _ = sandbox_cmd(&["status", "--name", name]);
    let mut child = ko_testkit::sandbox_command(&["up", "--name", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait until it created pods, then kill it hard
    let start = Instant::now();
    while recorded_pids(&real).len() < 5 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut pids = recorded_pids(&real);
    assert!(!pids.is_empty(), "up was killed before it created anything");
    for ns in netns_with_prefix(&format!("{real}-")) {
        let out = Command::new("ip")
            .args(["netns", "pids", &ns])
            .output()
            .unwrap();
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    let out = sandbox_cmd(&["down", "--name", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&real, &pids, &[]);
}
