//! What answers on the nodes' addresses for the Kubernetes components the sandbox
//! does not run: kube-proxy's health endpoint `:10256/healthz` (and `/livez`) in every
//! node's netns, and the API server's `https://<control-plane IP>:6443`, forwarded to
//! the emulator's HTTPS port on the host loopback so pods reach the API through
//! `default/kubernetes` (kubernetes_svc.rs) as on a kind cluster.
//!
//! It also makes the external host (172.18.0.200) answer on port 53, TCP (accept)
//! and UDP (echo), standing in for the public resolver (1.1.1.1:53) that Kube-OVN's
//! e2e gives `diagnose IPPorts`; the pinger's UDP check expects the echo.
//!
//! One process per sandbox (`ko-sandbox node-endpoints`, started by `up`): it opens
//! its listeners inside the node netns (setns on this thread only), returns to the
//! host netns, and serves them from threads; the forwarder connects from the host
//! netns, i.e. to loopback only. No kube-proxy rules exist: Services are OVN load
//! balancers, as with Kube-OVN's kube-proxy replacement, so the health endpoint
//! reports every sync as just done.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::background;
use crate::state::{Paths, Recorder};

/// kube-proxy's default `--healthz-bind-address` port.
pub const HEALTHZ_PORT: u16 = 10256;

/// Starts `ko-sandbox node-endpoints` for this sandbox unless it runs already; it is
/// up once its listeners are open (it writes its pid file after them).
pub fn start(paths: &Paths, rec: &Recorder) -> Result<u32> {
    background::start(
        paths,
        rec,
        "node-endpoints",
        background::Ready {
            waiting_for: "the node endpoints (kube-proxy health, API forwarder) to listen",
            within: Duration::from_secs(10),
            also: &|| true,
        },
    )
}

/// The port the external host answers on, as a public resolver does.
pub const EXTERNAL_PORT: u16 = 53;

/// Runs `bind` inside the netns `/run/netns/<netns>` and returns to the host netns.
fn in_netns<T>(netns: &str, bind: impl FnOnce() -> Result<T>) -> Result<T> {
    let host = std::fs::File::open("/proc/self/ns/net").context("opening the host netns")?;
    let target = std::fs::File::open(format!("/run/netns/{netns}"))
        .with_context(|| format!("opening netns {netns}"))?;
    // SAFETY: setns on valid fds; it switches only the calling thread.
    if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "entering netns {netns} failed: {}",
            std::io::Error::last_os_error()
        );
    }
    let bound = bind();
    // SAFETY: as above, back to where this thread was.
    if unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "returning to the host netns failed: {}",
            std::io::Error::last_os_error()
        );
    }
    bound
}

fn listen_in(netns: &str, addr: &str) -> Result<TcpListener> {
    in_netns(netns, || {
        TcpListener::bind(addr).with_context(|| format!("binding {addr} in {netns}"))
    })
}

/// UDP echo: every datagram goes back to its sender.
fn udp_echo(sock: std::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        let _ = sock.send_to(&buf[..n], from);
    }
}

/// The `node-endpoints` process: listeners first (then the pid file says it is up),
/// then one thread per listener, forever.
pub fn run(paths: &Paths) -> Result<()> {
    let plan = crate::state::load_plan(paths)?;
    let started = Instant::now();
    let mut threads = Vec::new();
    // without kube-proxy nothing answers there, as on such a cluster
    for n in plan.nodes.iter().filter(|_| plan.kube_proxy) {
        let l = listen_in(&n.netns, &format!("0.0.0.0:{HEALTHZ_PORT}"))?;
        let h: Handler = Arc::new(move |s| health(s, started));
        threads.push(std::thread::spawn(move || serve(l, h)));
    }
    let api_ip = crate::kubernetes_svc::endpoint_ip(&plan);
    let api = listen_in(
        &plan.nodes[0].netns,
        &format!("{api_ip}:{}", crate::kubernetes_svc::API_PORT),
    )?;
    let kubeconfig = paths.api().join("kubeconfig-https");
    let h: Handler = Arc::new(move |s| forward(s, &kubeconfig));
    threads.push(std::thread::spawn(move || serve(api, h)));
    let ext = &plan.external;
    let addr = format!("{}:{EXTERNAL_PORT}", ext.ip4);
    let tcp = listen_in(&ext.netns, &addr)?;
    let h: Handler = Arc::new(|_s| {});
    threads.push(std::thread::spawn(move || serve(tcp, h)));
    let udp = in_netns(&ext.netns, || {
        std::net::UdpSocket::bind(&addr).with_context(|| format!("binding udp {addr}"))
    })?;
    threads.push(std::thread::spawn(move || udp_echo(udp)));
    background::write_pid(paths, "node-endpoints")?;
    eprintln!(
        "listening: :{HEALTHZ_PORT} on {} nodes, {api_ip}:{} → the emulator's HTTPS port",
        if plan.kube_proxy { plan.nodes.len() } else { 0 },
        crate::kubernetes_svc::API_PORT
    );
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

type Handler = Arc<dyn Fn(TcpStream) + Send + Sync>;

fn serve(l: TcpListener, handle: Handler) {
    for s in l.incoming().flatten() {
        let h = handle.clone();
        std::thread::spawn(move || h(s));
    }
}

/// Go's `time.Time.String()` of a UTC time with its monotonic reading, as kube-proxy
/// prints `lastUpdated`/`currentTime`.
fn go_time(t: SystemTime, since_start: Duration) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let date = crate::plan::rfc3339(d.as_secs());
    let (day, clock) = date
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((&date, ""));
    format!(
        "{day} {clock}.{:09} +0000 UTC m=+{:.9}",
        d.subsec_nanos(),
        since_start.as_secs_f64()
    )
}

/// kube-proxy's `/healthz` and `/livez`: 200 with its JSON body, 404 elsewhere.
fn health(mut s: TcpStream, started: Instant) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).unwrap_or(0);
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let now = go_time(SystemTime::now(), started.elapsed());
    let (status, body) = if path == "/healthz" || path == "/livez" {
        (
            "200 OK",
            format!(r#"{{"lastUpdated": "{now}","currentTime": "{now}", "nodeEligible": true}}"#),
        )
    } else {
        ("404 Not Found", "404 page not found\n".to_string())
    };
    let ctype = if status.starts_with("200") {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
}

/// The emulator's HTTPS port, from its kubeconfig (read per connection: the emulator
/// may have been restarted on another port).
fn https_port(kubeconfig: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))?;
    server.trim().trim_end_matches('/').parse().ok()
}

/// Byte-for-byte forwarding to the emulator's HTTPS port (TLS end to end).
fn forward(client: TcpStream, kubeconfig: &Path) {
    let Some(port) = https_port(kubeconfig) else {
        return;
    };
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (mut c, mut u) = (client, upstream);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_reads_like_kube_proxy() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(
            go_time(t, Duration::from_millis(1500)),
            "2023-11-14 22:13:20.000000005 +0000 UTC m=+1.500000000"
        );
    }

    #[test]
    fn the_https_port_comes_from_the_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("ko-kp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("kubeconfig-https");
        std::fs::write(
            &f,
            "clusters:\n- cluster:\n    server: https://127.0.0.1:41234\n",
        )
        .unwrap();
        assert_eq!(https_port(&f), Some(41234));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
