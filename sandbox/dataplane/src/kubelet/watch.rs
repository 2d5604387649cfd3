//! A streaming `GET /api/v1/pods?watch=true` against the emulator (plain HTTP/1.1 on
//! loopback, chunked or not). The kubelet only uses events as a wake-up: it re-lists
//! and reconciles, so a dropped watch loses nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Watch pods until the server ends the stream (after `timeout_secs`) or the
/// connection breaks; `on_event` gets each event's `type` (ADDED, MODIFIED, DELETED).
pub fn pods(port: u16, timeout_secs: u64, on_event: impl FnMut(&str)) -> Result<()> {
    resource(port, "/api/v1/pods", timeout_secs, on_event)
}

/// Watch any collection (`/api/v1/services`, `/apis/<group>/<version>/<plural>`) the
/// same way; the sandbox controller watches several.
pub fn resource(
    port: u16,
    path: &str,
    timeout_secs: u64,
    mut on_event: impl FnMut(&str),
) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the API emulator on 127.0.0.1:{port}"))?;
    // A little longer than the server's own timeout: a silent, dead peer ends too.
    s.set_read_timeout(Some(Duration::from_secs(timeout_secs + 30)))
        .context("setting a read timeout on the watch connection")?;
    let req = format!(
        "GET {path}?watch=true&timeoutSeconds={timeout_secs} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .with_context(|| format!("sending the watch request for {path}"))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)
        .context("reading the watch answer")?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!(
            "the emulator answered the watch of {path} with `{}`",
            status.trim()
        );
    }
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).context("reading watch headers")? == 0 {
            return Ok(());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let l = h.to_ascii_lowercase();
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut lines = LineSplitter::default();
    if !chunked {
        let mut buf = [0u8; 8192];
        loop {
            let n = r.read(&mut buf).context("reading the watch stream")?;
            if n == 0 {
                return Ok(());
            }
            lines.feed(&buf[..n], &mut on_event);
        }
    }
    loop {
        let mut size = String::new();
        if r.read_line(&mut size)
            .context("reading a watch chunk size")?
            == 0
        {
            return Ok(());
        }
        let size = size.trim();
        if size.is_empty() {
            continue;
        }
        let n = usize::from_str_radix(size.split(';').next().unwrap_or(""), 16)
            .with_context(|| format!("bad chunk size {size:?} in the watch stream"))?;
        if n == 0 {
            return Ok(());
        }
        let mut chunk = vec![0u8; n];
        r.read_exact(&mut chunk).context("reading a watch chunk")?;
        lines.feed(&chunk, &mut on_event);
    }
}

/// Collects bytes into newline-terminated JSON events.
#[derive(Default)]
struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(&str)) {
        self.pending.extend_from_slice(bytes);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line)
                && let Some(t) = v["type"].as_str()
            {
                on_event(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut s = LineSplitter::default();
        let mut seen = Vec::new();
        s.feed(br#"{"type":"ADDED","object":{}}"#, &mut |t| {
            seen.push(t.to_string())
        });
        assert!(seen.is_empty());
        s.feed(b"\n{\"type\":\"DEL", &mut |t| seen.push(t.to_string()));
        s.feed(b"ETED\",\"object\":{}}\n", &mut |t| {
            seen.push(t.to_string())
        });
        assert_eq!(seen, ["ADDED", "DELETED"]);
    }
}
