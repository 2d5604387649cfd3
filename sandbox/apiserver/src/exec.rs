//! `pods/exec` over WebSocket with the Kubernetes channel protocols.
//!
//! Frames are binary, first byte = channel: 0 stdin, 1 stdout, 2 stderr, 3 status,
//! 4 resize; `v5.channel.k8s.io` adds 255 = close a stream (`[255, 0]` closes stdin).
//! The command runs as `nsenter -t <holder pid> -m -n -- argv...` (an argv array, never
//! a shell string). Output is forwarded chunk by chunk through a small bounded queue,
//! so memory stays bounded and a slow client slows the command (back-pressure).

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Subprotocols we speak, in order of preference.
pub const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

const CHUNK: usize = 32 * 1024;
const QUEUE: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `channel.k8s.io`: status channel carries a plain error text.
    V1,
    /// `v4.channel.k8s.io`: status channel carries a metav1.Status.
    V4,
    /// `v5.channel.k8s.io`: v4 plus the close-stream signal.
    V5,
}

impl Protocol {
    pub fn from_header(p: Option<&str>) -> Self {
        match p {
            Some("v5.channel.k8s.io") => Protocol::V5,
            Some("v4.channel.k8s.io") => Protocol::V4,
            _ => Protocol::V1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub pid: i32,
    pub argv: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// How the command ended, as the status channel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    StartFailed(String),
}

pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Go's `%v` of a `[]string`, which the real status message uses.
fn go_list(argv: &[String]) -> String {
    format!("[{}]", argv.join(" "))
}

/// The metav1.Status sent on channel 3 for v4/v5.
pub fn status_v4(argv: &[String], outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Exited(0) => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {}, exit code {code}",
                go_list(argv)
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::StartFailed(why) => json!({
            "metadata": {},
            "status": "Failure",
            "message": why,
            "reason": "InternalError",
            "code": 500,
            "details": {"causes": [{"message": why}]},
        }),
    }
}

/// The status channel payload, or None when nothing is to be sent (v1 success).
pub fn status_frame(proto: Protocol, argv: &[String], outcome: &Outcome) -> Option<Vec<u8>> {
    let payload = match proto {
        Protocol::V4 | Protocol::V5 => status_v4(argv, outcome).to_string(),
        Protocol::V1 => match outcome {
            Outcome::Exited(0) => return None,
            Outcome::Exited(code) => format!(
                "command terminated with non-zero exit code: error executing command {}, exit code {code}",
                go_list(argv)
            ),
            Outcome::StartFailed(why) => why.clone(),
        },
    };
    let mut frame = Vec::with_capacity(payload.len() + 1);
    frame.push(3);
    frame.extend_from_slice(payload.as_bytes());
    Some(frame)
}

fn command(spec: &ExecSpec) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("-t")
        .arg(spec.pid.to_string())
        .arg("-m")
        .arg("-n")
        .arg("--")
        .args(&spec.argv);
    cmd.stdin(if spec.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(if spec.stdout || spec.tty {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stderr(if spec.stderr || spec.tty {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    // Own process group, so a disconnect can kill the command and everything it started.
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    cmd
}

fn kill_group(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(mut r: R, channel: u8, tx: mpsc::Sender<Vec<u8>>) {
    loop {
        let mut buf = vec![0u8; CHUNK + 1];
        buf[0] = channel;
        match r.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.truncate(n + 1);
                if tx.send(buf).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads client frames: stdin data, stdin close (v5), resize (ignored). Cancels `gone`
/// when the client closes or the connection drops.
async fn read_client(
    mut rx: SplitStream<WebSocket>,
    mut stdin: Option<ChildStdin>,
    proto: Protocol,
    gone: CancellationToken,
) {
    while let Some(msg) = rx.next().await {
        let data: Bytes = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Text(t)) => Bytes::copy_from_slice(t.as_str().as_bytes()),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        match data.first() {
            Some(0) => {
                if let Some(s) = stdin.as_mut()
                    && s.write_all(&data[1..]).await.is_err()
                {
                    // The command closed its stdin; later input has nowhere to go.
                    stdin = None;
                }
            }
            Some(255) if proto == Protocol::V5 && data.get(1) == Some(&0) => {
                stdin = None;
            }
            _ => {}
        }
    }
    gone.cancel();
}

async fn close(mut tx: SplitSink<WebSocket, Message>) {
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    let _ = tx.close().await;
}

/// Runs one exec session to completion on an upgraded socket.
pub async fn serve(socket: WebSocket, spec: ExecSpec) {
    let proto = Protocol::from_header(socket.protocol().and_then(|p| p.to_str().ok()));
    let (mut ws_tx, ws_rx) = socket.split();
    let mut child = match command(&spec).spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!(
                "starting nsenter for {} in the pod's namespaces failed: {e}; is util-linux installed and is the emulator running as root?",
                go_list(&spec.argv)
            );
            tracing::warn!("{why}");
            if let Some(f) = status_frame(proto, &spec.argv, &Outcome::StartFailed(why)) {
                let _ = ws_tx.send(Message::Binary(f.into())).await;
            }
            close(ws_tx).await;
            return;
        }
    };
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, 1, out_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        // With a tty there is no separate stderr stream.
        tokio::spawn(pump(err, if spec.tty { 1 } else { 2 }, out_tx.clone()));
    }
    drop(out_tx);
    let gone = CancellationToken::new();
    let reader = tokio::spawn(read_client(ws_rx, child.stdin.take(), proto, gone.clone()));

    let mut client_gone = false;
    loop {
        tokio::select! {
            frame = out_rx.recv() => match frame {
                Some(f) => {
                    if ws_tx.send(Message::Binary(f.into())).await.is_err() {
                        client_gone = true;
                        break;
                    }
                }
                None => break,
            },
            _ = gone.cancelled() => {
                client_gone = true;
                break;
            }
        }
    }
    let status = if client_gone {
        None
    } else {
        tokio::select! {
            s = child.wait() => Some(s),
            _ = gone.cancelled() => None,
        }
    };
    let Some(status) = status else {
        tracing::info!(argv = ?spec.argv, "exec client went away; killing the command");
        kill_group(&child);
        let _ = child.wait().await;
        reader.abort();
        return;
    };
    let outcome = match status {
        Ok(s) => Outcome::Exited(exit_code(s)),
        Err(e) => Outcome::StartFailed(format!("waiting for the command failed: {e}")),
    };
    tracing::info!(argv = ?spec.argv, ?outcome, "exec finished");
    if let Some(f) = status_frame(proto, &spec.argv, &outcome) {
        let _ = ws_tx.send(Message::Binary(f.into())).await;
    }
    close(ws_tx).await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_match_the_kubelet_shape() {
        let argv = vec!["false".to_string()];
        assert_eq!(
            status_v4(&argv, &Outcome::Exited(0)),
            json!({"metadata": {}, "status": "Success"})
        );
        let f = status_v4(&argv, &Outcome::Exited(1));
        assert_eq!(f["reason"], "NonZeroExitCode");
        assert_eq!(f["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(f["details"]["causes"][0]["message"], "1");
        assert_eq!(
            f["message"],
            "command terminated with non-zero exit code: error executing command [false], exit code 1"
        );
        let frame = status_frame(Protocol::V5, &argv, &Outcome::Exited(1)).unwrap();
        assert_eq!(frame[0], 3);
        assert!(status_frame(Protocol::V1, &argv, &Outcome::Exited(0)).is_none());
    }

    #[test]
    fn protocol_names() {
        assert_eq!(
            Protocol::from_header(Some("v5.channel.k8s.io")),
            Protocol::V5
        );
        assert_eq!(
            Protocol::from_header(Some("v4.channel.k8s.io")),
            Protocol::V4
        );
        assert_eq!(Protocol::from_header(None), Protocol::V1);
    }
}
