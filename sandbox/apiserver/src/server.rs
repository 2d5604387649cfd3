//! Startup: load objects, bind loopback, write kubeconfig/port/pid files, serve.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::api;
use crate::app::App;
use crate::leader::Watchdog;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Options {
    pub state: PathBuf,
    pub bind: IpAddr,
    pub port: u16,
}

pub fn kubeconfig(server: &str) -> String {
    kubeconfig_with(&format!("    server: {server}\n"))
}

/// The HTTPS kubeconfig: same names, the server's own certificate as CA, no user
/// credentials yet (tests add a token with `kubectl config set-credentials`).
pub fn kubeconfig_https(server: &str, ca_pem: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    kubeconfig_with(&format!(
        "    server: {server}\n    certificate-authority-data: {ca}\n"
    ))
}

fn kubeconfig_with(cluster: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ko-sandbox
  cluster:
{cluster}contexts:
- name: ko-sandbox
  context:
    cluster: ko-sandbox
    user: ko-sandbox
    namespace: default
current-context: ko-sandbox
users:
- name: ko-sandbox
  user: {{}}
"
    )
}

/// Write-then-rename so a reader never sees a half-written file.
fn write_atomic(path: &Path, content: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)
        .map_err(|e| anyhow::anyhow!("writing {} failed: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        anyhow::anyhow!(
            "renaming {} to {} failed: {e}",
            tmp.display(),
            path.display()
        )
    })?;
    Ok(())
}

/// Runs until the process is killed. The port file is written last: once it exists the
/// kubeconfig is in place and the server accepts connections.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    if !opts.bind.is_loopback() {
        anyhow::bail!(
            "refusing to bind {}: the emulator has no authentication and only serves loopback; use --bind 127.0.0.1",
            opts.bind
        );
    }
    let api_dir = opts.state.join("api");
    std::fs::create_dir_all(&api_dir)
        .map_err(|e| anyhow::anyhow!("creating {} failed: {e}", api_dir.display()))?;
    let store = Store::new();
    let (registry, warnings) = crate::load::load(&api_dir.join("objects"), &store)
        .map_err(|e| anyhow::anyhow!("loading the sandbox objects failed: {e}"))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(opts.bind, opts.port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "binding {}:{} failed: {e}; pick another --port or use 0 for any free port",
                opts.bind,
                opts.port
            )
        })?;
    let addr = listener.local_addr()?;
    let server = match addr.ip() {
        IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}", addr.port()),
    };
    let app = Arc::new(App {
        planned_workloads: crate::workloads::planned_workloads(&store),
        store,
        registry: RwLock::new(registry),
        runtime_path: api_dir.join("runtime.json"),
        users_path: api_dir.join("users.json"),
        address: addr.to_string(),
    });
    // The HTTPS port serves the same API (for token users, see auth.rs).
    let identity = crate::tls::identity()?;
    let https = tokio::net::TcpListener::bind(SocketAddr::new(opts.bind, 0))
        .await
        .map_err(|e| anyhow::anyhow!("binding an HTTPS port on {} failed: {e}", opts.bind))?;
    let https_addr = https.local_addr()?;
    let https_server = match https_addr.ip() {
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", https_addr.port()),
        IpAddr::V4(ip) => format!("https://{ip}:{}", https_addr.port()),
    };
    write_atomic(&api_dir.join("ca.crt"), &identity.cert_pem)?;
    write_atomic(
        &api_dir.join("kubeconfig-https"),
        &kubeconfig_https(&https_server, &identity.cert_pem),
    )?;
    write_atomic(&api_dir.join("kubeconfig"), &kubeconfig(&server))?;
    write_atomic(
        &api_dir.join("apiserver.pid"),
        &format!("{}\n", std::process::id()),
    )?;
    write_atomic(&api_dir.join("port"), &format!("{}\n", addr.port()))?;
    tracing::info!("serving the sandbox API at {server}");
    tokio::spawn(Watchdog::default().run(app.clone()));
    tokio::spawn(crate::workloads::run(app.clone()));
    tokio::spawn(crate::tls::serve(
        https,
        identity.acceptor,
        api::router(app.clone()),
    ));
    axum::serve(listener, api::router(app))
        .await
        .map_err(|e| anyhow::anyhow!("serving HTTP failed: {e}"))
}
