//! One `ovs-ofctl dump-flows br-int` per node per round, parsed while the
//! exec output streams in: each complete line goes to the node's
//! [`Tracker`] and only the kept rules are stored, so a 100k-flow dump never
//! sits in memory whole.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ko_ovn::flowwatch::{Round, Tracker};
use tokio::io::AsyncWrite;

use super::resolve::NodeScope;
use crate::cluster::{Cluster, container};
use crate::error::{Error, Result};

/// `--no-names`: port numbers even if a name is known (the scope matches
/// `in_port=<ofport>`); `--no-stats` must not be given, we need the counters.
pub const DUMP_ARGV: &[&str] = &["ovs-ofctl", "--no-names", "dump-flows", "br-int"];

/// An AsyncWrite that hands each complete line to the tracker.
struct LineSink<'a> {
    tracker: &'a mut Tracker,
    round: Round,
    partial: Vec<u8>,
}

impl LineSink<'_> {
    fn feed(&mut self, data: &[u8]) {
        self.round.bytes += data.len();
        let mut rest = data;
        if !self.partial.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    self.partial.extend_from_slice(&rest[..nl]);
                    let line = std::mem::take(&mut self.partial);
                    self.line(&line);
                    rest = &rest[nl + 1..];
                }
                None => {
                    self.partial.extend_from_slice(rest);
                    return;
                }
            }
        }
        let last = rest.iter().rposition(|&b| b == b'\n');
        let (complete, tail) = match last {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&rest[..0], rest),
        };
        for line in complete.split(|&b| b == b'\n') {
            self.line(line);
        }
        self.partial.extend_from_slice(tail);
    }

    fn line(&mut self, line: &[u8]) {
        // dump-flows prints ASCII; a line that is not UTF-8 is not a flow
        if let Ok(s) = std::str::from_utf8(line) {
            self.tracker.observe_line(&mut self.round, s);
        }
    }

    fn finish(mut self) -> Round {
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            self.line(&line);
        }
        self.round
    }
}

impl AsyncWrite for LineSink<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().feed(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Feeds a whole text through the same line splitter in chunks of `chunk`
/// bytes (tests and benchmarks: the exec delivers arbitrary chunks).
pub fn feed_chunks(tracker: &mut Tracker, text: &[u8], chunk: usize) -> Round {
    let mut sink = LineSink {
        tracker,
        round: Round::default(),
        partial: Vec::new(),
    };
    for c in text.chunks(chunk.max(1)) {
        sink.feed(c);
    }
    sink.finish()
}

/// One polled round of one node.
pub struct Polled {
    pub round: Round,
    /// When the dump started (counters are read from then on).
    pub at: Instant,
    pub took: Duration,
}

pub async fn dump(
    cluster: &Cluster,
    node: &NodeScope,
    tracker: &mut Tracker,
    timeout: Duration,
) -> Result<Polled> {
    let at = Instant::now();
    let c = node
        .ovs_pod
        .container_or_default(container::OPENVSWITCH)
        .to_string();
    let mut sink = LineSink {
        tracker,
        round: Round::default(),
        partial: Vec::new(),
    };
    let mut stderr = Vec::new();
    let code = cluster
        .exec_stream(
            &node.ovs_pod,
            &c,
            DUMP_ARGV,
            &mut sink,
            &mut stderr,
            Some(timeout),
        )
        .await?;
    let round = sink.finish();
    if code != 0 {
        return Err(Error::Remote {
            what: format!("`{}` on node {}", DUMP_ARGV.join(" "), node.node),
            detail: format!("exit {code}: {}", String::from_utf8_lossy(&stderr).trim()),
            hint: format!(
                "is ovs-vswitchd running? `kubectl ko ofctl {} show br-int`",
                node.node
            ),
        });
    }
    Ok(Polled {
        round,
        at,
        took: at.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ko_ovn::flowwatch::Scope;

    #[test]
    fn chunking_does_not_change_the_round() {
        let text = "NXST_FLOW reply (xid=0x4):\n cookie=0x1, duration=1.0s, table=8, n_packets=3, n_bytes=300, idle_age=1, priority=50,metadata=0x2 actions=resubmit(,9)\n cookie=0x2, duration=1.0s, table=65, n_packets=4, n_bytes=400, priority=100,reg15=0x3,metadata=0x2 actions=output:10";
        let scope = Scope {
            datapaths: vec![2],
            ports: vec![(2, 3)],
            ofports: vec![10],
        };
        let whole = feed_chunks(&mut Tracker::new(scope.clone()), text.as_bytes(), 1 << 20);
        for chunk in [1, 2, 7, 64] {
            let r = feed_chunks(&mut Tracker::new(scope.clone()), text.as_bytes(), chunk);
            assert_eq!(r.samples, whole.samples, "chunk {chunk}");
            assert_eq!(r.lines, 2);
        }
        assert_eq!(whole.samples.len(), 2);
    }
}
