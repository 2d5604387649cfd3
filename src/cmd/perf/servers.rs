//! Servers (qperf, iperf3 -s, iperf -s) run by a background exec stream: they
//! live exactly as long as the stream, so aborting the task ends them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, PodRef};
use crate::error::{Error, Result};

/// An output sink that several tasks can read while the exec writes into it.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        match self.0.lock() {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(p) => String::from_utf8_lossy(&p.into_inner()).into_owned(),
        }
    }
}

impl AsyncWrite for SharedBuf {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.0.lock() {
            Ok(mut b) => b.extend_from_slice(buf),
            Err(p) => p.into_inner().extend_from_slice(buf),
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A server process kept alive by its exec stream.
pub struct Server {
    pub what: String,
    pub out: SharedBuf,
    pub err: SharedBuf,
    handle: JoinHandle<crate::cluster::Result<i32>>,
}

impl Server {
    /// Start `argv` in `pod` and give it a moment; fail if it exits at once
    /// (tool missing from the image, port in use).
    pub async fn start(cluster: &Cluster, pod: &PodRef, argv: &[&str]) -> Result<Server> {
        let what = format!("`{}` in {pod}", argv.join(" "));
        let out = SharedBuf::default();
        let err = SharedBuf::default();
        let (c, p) = (cluster.clone(), pod.clone());
        let container = pod.container_or_default("").to_string();
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let (mut o, mut e) = (out.clone(), err.clone());
        let handle = tokio::spawn(async move {
            c.exec_stream(&p, &container, &argv, &mut o, &mut e, None)
                .await
        });
        let server = Server {
            what,
            out,
            err,
            handle,
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.check()?;
        Ok(server)
    }

    /// An error if the server has already exited.
    pub fn check(&self) -> Result<()> {
        if !self.handle.is_finished() {
            return Ok(());
        }
        let mut detail = self.err.text().trim().to_string();
        if detail.is_empty() {
            detail = self.out.text().trim().to_string();
        }
        if detail.is_empty() {
            detail = "it exited without output".into();
        }
        Err(Error::Remote {
            what: format!("starting server {}", self.what),
            detail,
            hint: "the test image must contain qperf, iperf3 and iperf (upstream's docker.io/kubeovn/test does); check the port is free".into(),
        })
    }
}

/// Ends the server by closing its exec stream.
impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
