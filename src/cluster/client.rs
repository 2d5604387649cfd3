//! Building the kube client from kubeconfig/context, the way kubectl does.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::{Error, Result};

/// The User-Agent every API request carries.
pub const USER_AGENT: &str = concat!("kubectl-ko/", env!("CARGO_PKG_VERSION"));

/// How to reach the cluster; filled from the global command-line options.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Explicit kubeconfig file (`--kubeconfig`); otherwise KUBECONFIG, then
    /// `~/.kube/config`, then in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// Context to use instead of the kubeconfig's current context.
    pub context: Option<String>,
    /// Namespace where Kube-OVN runs (`--kube-ovn-namespace` / `KUBE_OVN_NS`).
    pub namespace: String,
    /// Per-call timeout for API requests and captured execs.
    pub timeout: Duration,
}

pub(crate) async fn load_config(opts: &ConnectOptions) -> Result<Config> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let mut config = if let Some(path) = &opts.kubeconfig {
        let kc = Kubeconfig::read_from(path).map_err(|e| Error::Config {
            detail: super::error::chain(&e),
        })?;
        Config::from_custom_kubeconfig(kc, &kc_opts)
            .await
            .map_err(|e| Error::Config {
                detail: format!("using {}: {}", path.display(), super::error::chain(&e)),
            })?
    } else if opts.context.is_some() {
        Config::from_kubeconfig(&kc_opts)
            .await
            .map_err(|e| Error::Config {
                detail: super::error::chain(&e),
            })?
    } else {
        Config::infer().await.map_err(|e| Error::Config {
            detail: super::error::chain(&e),
        })?
    };
    // A plain-http server (a local proxy, the sandbox) verifies no certificate:
    // an empty trust store spares loading and parsing every OS root on each run.
    if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
    // A dead API server should fail fast rather than after the OS TCP timeout.
    config.connect_timeout = Some(opts.timeout.min(Duration::from_secs(10)));
    // Named in the API server's audit and request logs, as kubectl names itself.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Ok(config)
}

/// The client and the server URL it talks to (for error messages).
pub(crate) async fn build_client(opts: &ConnectOptions) -> Result<(Client, String)> {
    let config = load_config(opts).await?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| Error::Config {
        detail: super::error::chain(&e),
    })?;
    Ok((client, server))
}
