//! The emulator (`ko-apiserver`): start it detached, wait until it answers, and talk
//! plain HTTP/1.1 to it on loopback (PATCHes for faults).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::state::{Created, Paths, Recorder};
use crate::{argv, exec};

/// `ko-apiserver` next to our own executable, or `KO_APISERVER_BIN`.
pub fn binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KO_APISERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("finding the ko-sandbox executable")?;
    let p = exe.with_file_name("ko-apiserver");
    if !p.exists() {
        bail!(
            "the API emulator {} is missing; build it with `cargo build -p ko-apiserver` (e2e/sandbox does) or set KO_APISERVER_BIN",
            p.display()
        );
    }
    Ok(p)
}

pub fn start(paths: &Paths, rec: &Recorder, port: u16) -> Result<u32> {
    let bin = binary()?;
    let api = paths.api();
    std::fs::create_dir_all(&api).with_context(|| format!("creating {}", api.display()))?;
    let argv = argv![
        bin.display(),
        "--state",
        paths.dir().display(),
        "--port",
        port
    ];
    let pid = exec::spawn_detached(&bin, &argv, &api.join("apiserver.log"))
        .with_context(|| format!("starting the API emulator {}", bin.display()))?;
    rec.record(&Created::Pid {
        pid,
        what: "ko-apiserver".into(),
    })?;
    Ok(pid)
}

/// Wait until the emulator wrote its kubeconfig/port files and answers `/version`.
pub fn wait_ready(paths: &Paths, pid: u32, timeout: Duration) -> Result<u16> {
    let port_file = paths.api().join("port");
    let log = paths.api().join("apiserver.log");
    exec::poll("the API emulator to answer", timeout, || {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Some(None);
        }
        let port: u16 = std::fs::read_to_string(&port_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if !paths.kubeconfig().exists() {
            return None;
        }
        let (code, _) = request(port, "GET", "/version", None).ok()?;
        (code == 200).then_some(Some(port))
    })
    .and_then(|r| {
        r.with_context(|| {
            format!(
                "the API emulator exited during start; last lines of {}:\n{}",
                log.display(),
                exec::log_tail(&log, 5)
            )
        })
    })
}

/// Wait until the emulator's leader probe has labelled one ovn-central pod for each of
/// NB, SB and northd and pointed their EndpointSlices at it: tests (and people) start
/// right after `up`, and a first probe round that has not run yet looks like a broken
/// control plane.
pub fn wait_leaders(port: u16, timeout: Duration) -> Result<()> {
    let ns = crate::plan::KUBE_SYSTEM;
    exec::poll(
        "the leader labels and ovn-* EndpointSlices",
        timeout,
        || {
            let get = |path: &str| -> Option<serde_json::Value> {
                let (code, body) = request(port, "GET", path, None).ok()?;
                if code != 200 {
                    return None;
                }
                serde_json::from_str(&body).ok()
            };
            let pods = get(&format!(
                "/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dovn-central"
            ))?;
            let slices = get(&format!(
                "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
            ))?;
            let pods = pods["items"].as_array()?;
            let slices = slices["items"].as_array()?;
            let settled = ["ovn-nb", "ovn-sb", "ovn-northd"].iter().all(|svc| {
                let label = format!("{svc}-leader");
                let leaders: Vec<&str> = pods
                    .iter()
                    .filter(|p| p["metadata"]["labels"][&label].as_str() == Some("true"))
                    .filter_map(|p| p["metadata"]["name"].as_str())
                    .collect();
                let [leader] = leaders[..] else {
                    return false;
                };
                // Dual-stack has one slice per address family: every endpoint of
                // every slice must be the leader, and there must be at least one.
                let targets: Vec<Option<&str>> = slices
                    .iter()
                    .filter(|e| {
                        e["metadata"]["labels"]["kubernetes.io/service-name"].as_str() == Some(svc)
                    })
                    .filter_map(|e| e["endpoints"].as_array())
                    .flatten()
                    .map(|ep| ep["targetRef"]["name"].as_str())
                    .collect();
                !targets.is_empty() && targets.iter().all(|t| *t == Some(leader))
            });
            settled.then_some(())
        },
    )
}

pub fn port(paths: &Paths) -> Result<u16> {
    let f = paths.api().join("port");
    let s = std::fs::read_to_string(&f)
        .with_context(|| format!("reading the emulator port from {}", f.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("bad port in {}", f.display()))
}

/// One HTTP/1.1 request to 127.0.0.1:port; (status code, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the API emulator on 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some((ctype, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes)
        .context("sending a request to the API emulator")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .context("reading the API emulator's answer")?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("malformed HTTP answer from the emulator: {head}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Merge-patch a pod (faults: annotation drift and its heal).
pub fn patch_pod(paths: &Paths, ns: &str, pod: &str, patch: &serde_json::Value) -> Result<()> {
    let port = port(paths)?;
    let body = serde_json::to_vec(patch)?;
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}");
    let (code, text) = request(
        port,
        "PATCH",
        &path,
        Some(("application/merge-patch+json", &body)),
    )?;
    if !(200..300).contains(&code) {
        bail!(
            "PATCH {path} on the emulator answered {code}: {}",
            text.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), "Wikipedia");
    }
}
