//! The one test kit of the workspace, a dev-dependency of every crate:
//! - [`command`]: hermetic commands (no `KUBECONFIG`, `HOME`, `NO_COLOR`, `KUBE_OVN_NS`,
//!   `KO_*` or the plugin's own env-backed flags from the developer's shell), a deadline
//!   runner, `-o json` runs;
//! - [`sandbox`]: `e2e/sandbox` up/down/status, with one lock per sandbox name that every
//!   test binary of every crate takes before it checks or brings a sandbox up;
//! - [`kubectl`]: the real kubectl against a kubeconfig, and small queries on top;
//! - [`fixture!`]: the one reader of captured outputs under `<crate>/tests/fixtures`,
//!   which insists that the command that produced each capture is written down.

pub mod command;
pub mod fixture;
pub mod kubectl;
pub mod sandbox;

pub use command::{hermetic, json_of, ok, run, run_within, text};
pub use kubectl::{
    Kubectl, api_request_log, apply, eventually, jsonpath, kubectl, kubectl_ok, leader_pod, nodes,
    ovn_ctl,
};
pub use sandbox::{
    effective_name, kubeconfig, kubeconfig_with, sandbox, sandbox_cmd, sandbox_command, sandbox_up,
    status_json, with_sandbox_lock,
};
