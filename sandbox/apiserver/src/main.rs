use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// Kubernetes API emulator for the kubectl-ko sandbox (loopback only, no auth).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Sandbox state directory; objects are read from <state>/api/objects/*.json.
    #[arg(long)]
    state: PathBuf,
    /// TCP port; 0 picks a free one (written to <state>/api/port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Loopback address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    let opts = ko_apiserver::server::Options {
        state: cli.state,
        bind: cli.bind,
        port: cli.port,
    };
    match ko_apiserver::server::run(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ko-apiserver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
