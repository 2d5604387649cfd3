//! Every captured output in the workspace has its producing command written down
//! (the rule `fixture!` enforces when a test reads one).

use std::path::{Path, PathBuf};

use ko_testkit::fixture::producing_command;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x != "cmd" && x != "sh" && x != "md")
        {
            out.push(p);
        }
    }
}

#[test]
fn every_fixture_in_the_workspace_names_its_command() {
    let root = ko_testkit::sandbox::repo_root();
    let mut missing = Vec::new();
    let mut seen = 0;
    for krate in [".", "ovn", "sandbox/apiserver", "sandbox/dataplane"] {
        let base = root.join(krate).join("tests/fixtures");
        if !base.is_dir() {
            continue;
        }
        let mut all = Vec::new();
        files(&base, &mut all);
        // hand-written objects the API emulator loads: inputs, not captured outputs
        all.retain(|f| !f.starts_with(root.join("sandbox/apiserver/tests/fixtures/objects")));
        for f in all {
            seen += 1;
            if producing_command(&base, &f).is_none() {
                missing.push(f.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    assert!(seen > 100, "only {seen} fixtures found");
    assert!(
        missing.is_empty(),
        "no producing command for:\n{}",
        missing.join("\n")
    );
}
