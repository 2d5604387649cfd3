//! CLI behaviour without a cluster: help, usage errors, completions, and the
//! errors for a cluster that cannot be reached.

mod common;

use common::{ko_bare, run, text};

const SUBCOMMANDS: &[&str] = &[
    "nbctl",
    "sbctl",
    "icnbctl",
    "icsbctl",
    "vsctl",
    "ofctl",
    "dpctl",
    "appctl",
    "nb",
    "sb",
    "tcpdump",
    "trace",
    "ovn-trace",
    "diagnose",
    "env-check",
    "reload",
    "log",
    "perf",
    "version",
    "completion",
];

#[test]
fn help_lists_every_upstream_subcommand_as_kubectl_ko() {
    let out = run({
        let mut c = ko_bare();
        c.arg("--help");
        c
    });
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("Usage: kubectl ko"), "{help}");
    for s in SUBCOMMANDS {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{s} "))),
            "subcommand {s} missing from help:\n{help}"
        );
    }
    for opt in [
        "--kubeconfig",
        "--context",
        "--kube-ovn-namespace",
        "--output",
        "--color",
        "--timeout",
        "--verbose",
    ] {
        assert!(help.contains(opt), "{opt} missing");
    }
    assert!(help.contains("Exit codes:"), "{help}");
}

#[test]
fn subcommand_help_renders_as_kubectl_ko() {
    for args in [
        &["nb", "--help"][..],
        &["vsctl", "--help"],
        &["tcpdump", "--help"],
        &["trace", "--help"],
    ] {
        let out = run({
            let mut c = ko_bare();
            c.args(args);
            c
        });
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        assert!(
            help.contains(&format!("Usage: kubectl ko {}", args[0])),
            "{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["no-such-command"][..],
        // (bare `kubectl ko` prints help and exits 0, like upstream: tests/runbook.rs)
        &["nb"],
        &["nb", "frobnicate"],
        &["vsctl"],
        &["trace", "default/p"],
        &["log", "everything"],
        &["--timeout", "soon", "version"],
        &["-o", "xml", "version"],
        &["completion", "tcsh"],
    ] {
        let out = run({
            let mut c = ko_bare();
            c.args(args);
            c
        });
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} printed no error");
    }
}

#[test]
fn invalid_names_are_usage_errors_before_any_cluster_access() {
    for args in [
        &["vsctl", "Bad;Node", "show"][..],
        &["tcpdump", "ns/$(reboot)"],
        &["tcpdump", "a/b/c"],
    ] {
        let out = run({
            let mut c = ko_bare();
            // An unreachable server: reaching it would be exit 3, not 2.
            c.args(["--kubeconfig", "/nonexistent/kubeconfig"])
                .args(args);
            c
        });
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    }
}

#[test]
fn version_in_text_and_json() {
    let out = run({
        let mut c = ko_bare();
        c.arg("version");
        c
    });
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("kubectl-ko {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run({
        let mut c = ko_bare();
        c.args(["-o", "json", "version"]);
        c
    });
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run({
            let mut c = ko_bare();
            c.args(["completion", shell]);
            c
        });
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        for s in ["nbctl", "vsctl", "ovn-trace", "diagnose", "tcpdump"] {
            assert!(script.contains(s), "{shell} completion lacks {s}");
        }
    }
    // bash must at least parse it.
    let out = run({
        let mut c = ko_bare();
        c.args(["completion", "bash"]);
        c
    });
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.bash");
    std::fs::write(&f, &out.stdout).unwrap();
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&f)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn unreachable_api_server_is_exit_3_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    // Port 9 on loopback: nothing listens there.
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let out = run({
        let mut c = ko_bare();
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(["--timeout", "5s", "nbctl", "show"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("could not reach the Kubernetes API server"),
        "{err}"
    );
    assert!(err.contains("try:"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn missing_kubeconfig_or_context_is_exit_3() {
    let out = run({
        let mut c = ko_bare();
        c.args(["--kubeconfig", "/nonexistent/kubeconfig", "nbctl", "show"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let out = run({
        let mut c = ko_bare();
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(["--context", "nope", "sbctl", "show"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn perf_rejects_bad_arguments_before_touching_a_cluster() {
    for (args, needle) in [
        (&["--sizes", "64,abc"][..], "not a message size"),
        (&["--sizes", "70k"][..], "between 1 and 65507"),
        (&["--duration", "0"][..], "duration"),
        (&["--only", "pod,bogus"][..], "bogus"),
    ] {
        let out = run({
            let mut c = ko_bare();
            c.args(["--kubeconfig", "/nonexistent", "perf"]).args(args);
            c
        });
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn perf_leader_recover_explains_and_needs_yes() {
    let out = run({
        let mut c = ko_bare();
        c.args(["--kubeconfig", "/nonexistent", "perf", "--leader-recover"]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("deletes the ovn-central pods"), "{err}");
    assert!(err.contains("--yes"), "{err}");
}
