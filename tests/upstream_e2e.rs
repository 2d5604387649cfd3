//! Kube-OVN's own kubectl-ko e2e (test/e2e/kube-ovn/kubectl-ko/kubectl-ko.go upstream),
//! as the command list in `e2e/upstream-kubectl-ko.sh`: the same `kubectl ko`
//! commands and objects, run with the real kubectl against the sandbox. Our plugin
//! must pass every command, on a cluster with kube-proxy and on one without it
//! (`up --without-kube-proxy`, run with WITHOUT_KUBE_PROXY=true as Kube-OVN's
//! installer runs diagnose there). With `KO_PEER_SCRIPT=<path to Kube-OVN's bash
//! kubectl-ko>` (never committed; fetch dist/images/kubectl-ko from the Kube-OVN
//! repository) the same list runs with it, where only `dpctl` may fail (no kernel
//! datapath on the sandbox's userspace datapath). Needs root; test-group
//! `upstream-e2e`.

mod common;

use std::path::Path;

use common::{hermetic, kubeconfig, kubeconfig_with, text};
use serde_json::Value;

const SANDBOX: &str = "upstream";
/// A sandbox without kube-proxy (short: prefix + name + version suffix <= 20).
const SANDBOX_NO_KUBE_PROXY: &str = "up-nokp";

fn run_list(kc: &Path, implementation: &Path, userspace_dpctl_ok: bool, env: &[(&str, &str)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/upstream-kubectl-ko.sh");
    // hermetic: no KUBE_OVN_NS, NO_COLOR or WITHOUT_KUBE_PROXY from the caller
    let mut cmd = hermetic(script);
    cmd.arg(implementation).env("KUBECONFIG", kc);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if userspace_dpctl_ok {
        cmd.env("UPSTREAM_E2E_USERSPACE_DPCTL_OK", "1");
    }
    let out = cmd.output().expect("run e2e/upstream-kubectl-ko.sh");
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the upstream kubectl-ko e2e list failed with {}:\n{stdout}\n{}",
        implementation.display(),
        text(&out.stderr)
    );
    let summary = stdout
        .lines()
        .rfind(|l| l.contains("summary:"))
        .unwrap_or_default();
    assert!(
        summary.contains(" 0 failed"),
        "no clean summary line: {summary}"
    );
}

#[test]
fn the_upstream_kubectl_ko_e2e_passes_with_our_plugin() {
    run_list(&kubeconfig(SANDBOX), Path::new(common::KO), false, &[]);
}

/// The component/kube-proxy check of `diagnose all -o json`, with or without
/// WITHOUT_KUBE_PROXY=true.
fn kube_proxy_check(kc: &Path, without: bool) -> (i32, Value) {
    let mut c = common::ko(kc);
    c.env_remove("WITHOUT_KUBE_PROXY");
    if without {
        c.env("WITHOUT_KUBE_PROXY", "true");
    }
    c.args(["diagnose", "all", "-o", "json"]);
    let out = common::run(c);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose all did not print JSON ({e}): {}",
            text(&out.stderr)
        )
    });
    let check = v["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "component/kube-proxy"))
        .cloned()
        .unwrap_or_else(|| panic!("no component/kube-proxy check: {v}"));
    (out.status.code().unwrap_or(-1), check)
}

#[test]
fn the_upstream_kubectl_ko_e2e_passes_without_kube_proxy() {
    let kc = kubeconfig_with(SANDBOX_NO_KUBE_PROXY, &["--without-kube-proxy"]);
    run_list(
        &kc,
        Path::new(common::KO),
        false,
        &[("WITHOUT_KUBE_PROXY", "true")],
    );
    if std::env::var_os("KO_E2E_KUBECONFIG").is_some() {
        return; // a real cluster may well run kube-proxy: the rest is the sandbox's shape
    }
    let ds = common::run({
        let mut c = common::kubectl(&kc);
        c.args(["-n", "kube-system", "get", "daemonset", "kube-proxy"]);
        c
    });
    assert!(!ds.status.success(), "a kube-proxy DaemonSet exists");
    assert!(
        text(&ds.stderr).contains("NotFound"),
        "{}",
        text(&ds.stderr)
    );
    // nothing answers kube-proxy's health port: diagnose says so (a warning, as on
    // any cluster without kube-proxy) unless told WITHOUT_KUBE_PROXY=true
    let (code, check) = kube_proxy_check(&kc, false);
    assert_eq!(check["status"], "warn", "{check}");
    let msg = check["message"].as_str().unwrap_or_default();
    assert!(msg.contains(":10256/healthz does not answer"), "{check}");
    assert_eq!(code, 0, "a warning alone keeps diagnose healthy: {check}");
    let (code, check) = kube_proxy_check(&kc, true);
    assert_eq!(check["status"], "pass", "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not checked"),
        "{check}"
    );
    assert_eq!(code, 0);
}

/// Ignored by default, so a run without the script reports it as skipped instead of
/// passing without running anything: `KO_PEER_SCRIPT=<kubectl-ko> cargo nextest run
/// --test upstream_e2e --run-ignored only`.
#[test]
#[ignore = "needs KO_PEER_SCRIPT=<Kube-OVN's bash kubectl-ko> (not in this repository); run with --run-ignored only"]
fn the_upstream_kubectl_ko_e2e_passes_with_the_bash_script() {
    let peer = std::env::var_os("KO_PEER_SCRIPT").expect(
        "KO_PEER_SCRIPT is not set: point it at Kube-OVN's bash kubectl-ko (dist/images/kubectl-ko in the Kube-OVN repository)",
    );
    run_list(&kubeconfig(SANDBOX), Path::new(&peer), true, &[]);
}
