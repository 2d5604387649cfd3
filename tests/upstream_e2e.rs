//! Kube-OVN's own kubectl-ko e2e (test/e2e/kube-ovn/kubectl-ko/kubectl-ko.go upstream),
//! as the command list in `e2e/upstream-kubectl-ko.sh`: the same `kubectl ko`
//! commands and objects, run with the real kubectl against the sandbox. Our plugin
//! must pass every command. With `KO_PEER_SCRIPT=<path to Kube-OVN's bash kubectl-ko>`
//! (never committed; fetch dist/images/kubectl-ko from the Kube-OVN repository) the
//! same list runs with it, where only `dpctl` may fail (no kernel datapath on the
//! sandbox's userspace datapath). Needs root; test-group `upstream-e2e`.

mod common;

use std::path::Path;

use common::{hermetic, kubeconfig, text};

const SANDBOX: &str = "upstream";

fn run_list(implementation: &Path, userspace_dpctl_ok: bool) {
    let kc = kubeconfig(SANDBOX);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/upstream-kubectl-ko.sh");
    let mut cmd = hermetic(script);
    cmd.arg(implementation).env("KUBECONFIG", &kc);
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
    run_list(Path::new(common::KO), false);
}

#[test]
fn the_upstream_kubectl_ko_e2e_passes_with_the_bash_script() {
    let Some(peer) = std::env::var_os("KO_PEER_SCRIPT") else {
        eprintln!("KO_PEER_SCRIPT is not set: the bash kubectl-ko run is skipped");
        return;
    };
    run_list(Path::new(&peer), true);
}
