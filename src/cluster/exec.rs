//! Exec in a pod's container over the WebSocket exec protocol: argv only
//! (never a shell string), stdout and stderr drained concurrently, the remote
//! exit code returned, a timeout per call. Dropping the future (Ctrl-C)
//! closes the connection, which ends the remote command.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::error::{Error, Result};
use super::{Cluster, PodRef};

/// Exit code we report when our own stdout was closed (`| head`), as a shell would.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Buffer between the WebSocket reader task and our sinks; larger than
/// kube's 1 KiB default so big outputs move in big chunks.
const PIPE_BUF: usize = 256 * 1024;

/// What a captured exec produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Output {
    #[serde(skip)]
    pub stdout: Vec<u8>,
    #[serde(skip)]
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// stdout as text (invalid UTF-8 replaced, OVN tools print UTF-8).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Turn the exec Status from channel 3 into an exit code, or an error when
/// the exec itself failed (container missing, command not found ...).
pub fn exit_code_from_status(what: &str, status: Option<Status>) -> Result<i32> {
    let Some(status) = status else {
        return Err(Error::Api {
            what: what.into(),
            detail: "the connection closed without an exit status".into(),
            hint: "the pod may have restarted or the API server dropped the stream; retry".into(),
        });
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
                    .and_then(|c| c.message.as_deref())
                    .and_then(|m| m.trim().parse::<i32>().ok())
            });
        if let Some(code) = code {
            return Ok(code);
        }
    }
    Err(Error::Api {
        what: what.into(),
        detail: status
            .message
            .unwrap_or_else(|| "exec failed without a message".into()),
        hint: "check the container name and that the command exists in the image".into(),
    })
}

/// Copy one stream to a sink; a closed sink (EPIPE) ends the copy quietly and
/// is reported as `Ok(false)`.
async fn pump<R, W>(reader: Option<R>, sink: &mut W, what: &str) -> Result<bool>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + ?Sized,
{
    let Some(mut reader) = reader else {
        return Ok(true);
    };
    match tokio::io::copy(&mut reader, sink).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
        Err(e) => {
            return Err(Error::LocalIo {
                what: what.into(),
                detail: e.to_string(),
            });
        }
    }
    match sink.flush().await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::LocalIo {
            what: what.into(),
            detail: e.to_string(),
        }),
    }
}

impl Cluster {
    /// Run `argv` in `container` of `pod`, streaming stdout/stderr into the
    /// sinks as they arrive. Returns the remote exit code. `timeout` None =
    /// no limit (tcpdump, passthrough); Some = the whole call must finish.
    pub async fn exec_stream<S, O, E>(
        &self,
        pod: &PodRef,
        container: &str,
        argv: &[S],
        stdout: &mut O,
        stderr: &mut E,
        timeout: Option<Duration>,
    ) -> Result<i32>
    where
        S: AsRef<str>,
        O: AsyncWrite + Unpin + ?Sized,
        E: AsyncWrite + Unpin + ?Sized,
    {
        let what = describe(pod, container, argv);
        let fut = self.exec_inner(pod, container, argv, stdout, stderr, &what);
        match timeout {
            None => fut.await,
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout { what, after: t }),
            },
        }
    }

    /// Run `argv` and collect its output, under the cluster's per-call timeout.
    pub async fn exec_capture<S: AsRef<str>>(
        &self,
        pod: &PodRef,
        container: &str,
        argv: &[S],
    ) -> Result<Output> {
        self.exec_capture_timeout(pod, container, argv, self.timeout)
            .await
    }

    /// Like [`Cluster::exec_capture`] with an explicit timeout.
    pub async fn exec_capture_timeout<S: AsRef<str>>(
        &self,
        pod: &PodRef,
        container: &str,
        argv: &[S],
        timeout: Duration,
    ) -> Result<Output> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = self
            .exec_stream(pod, container, argv, &mut out, &mut err, Some(timeout))
            .await?;
        Ok(Output {
            stdout: out,
            stderr: err,
            exit_code: code,
        })
    }

    /// Run `argv` and return its stdout as text; a non-zero exit is an error
    /// carrying the remote stderr.
    pub async fn exec_ok<S: AsRef<str>>(
        &self,
        pod: &PodRef,
        container: &str,
        argv: &[S],
    ) -> Result<String> {
        let out = self.exec_capture(pod, container, argv).await?;
        if out.success() {
            Ok(out.stdout_str())
        } else {
            Err(Error::RemoteFailed {
                what: describe(pod, container, argv),
                code: out.exit_code,
                stderr: out.stderr_str().trim().to_string(),
            })
        }
    }

    async fn exec_inner<S, O, E>(
        &self,
        pod: &PodRef,
        container: &str,
        argv: &[S],
        stdout: &mut O,
        stderr: &mut E,
        what: &str,
    ) -> Result<i32>
    where
        S: AsRef<str>,
        O: AsyncWrite + Unpin + ?Sized,
        E: AsyncWrite + Unpin + ?Sized,
    {
        if argv.is_empty() {
            return Err(Error::Api {
                what: what.into(),
                detail: "empty command".into(),
                hint: "this is a bug in kubectl-ko".into(),
            });
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let ap = AttachParams {
            container: Some(container.to_string()),
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
            max_stdin_buf_size: None,
            max_stdout_buf_size: Some(PIPE_BUF),
            max_stderr_buf_size: Some(PIPE_BUF),
        };
        let command: Vec<String> = argv.iter().map(|a| a.as_ref().to_string()).collect();
        let mut attached = self
            .call(what.to_string(), api.exec(&pod.name, command, &ap))
            .await?;
        let status = attached.take_status();
        let out_reader = attached.stdout();
        let err_reader = attached.stderr();
        // Both streams must be drained at the same time: the reader task
        // blocks on whichever pipe is full.
        let (out_ok, err_ok) = tokio::join!(
            pump(out_reader, stdout, "the command's output"),
            pump(err_reader, stderr, "the command's error output")
        );
        let (out_ok, err_ok) = (out_ok?, err_ok?);
        if !out_ok || !err_ok {
            attached.abort();
            return Ok(EXIT_BROKEN_PIPE);
        }
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        if let Err(e) = attached.join().await {
            // A broken stream after the status arrived does not change the result.
            if status.is_none() {
                return Err(Error::Api {
                    what: what.into(),
                    detail: super::error::chain(&e),
                    hint: "retry; the exec stream broke before the command finished".into(),
                });
            }
        }
        exit_code_from_status(what, status)
    }
}

/// "ovn-nbctl show in kube-system/ovn-central-0 (container ovn-central)"
pub fn describe<S: AsRef<str>>(pod: &PodRef, container: &str, argv: &[S]) -> String {
    let cmd: Vec<&str> = argv.iter().map(|a| a.as_ref()).take(4).collect();
    let more = if argv.len() > 4 { " ..." } else { "" };
    format!("`{}{more}` in {pod} (container {container})", cmd.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn failure(reason: &str, causes: Vec<(&str, &str)>, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: Some(StatusDetails {
                causes: Some(
                    causes
                        .into_iter()
                        .map(|(r, m)| StatusCause {
                            reason: Some(r.into()),
                            message: Some(m.into()),
                            field: None,
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn success_status_is_zero() {
        let s = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code_from_status("x", Some(s)).unwrap(), 0);
    }

    #[test]
    fn nonzero_exit_code_is_returned() {
        let s = failure(
            "NonZeroExitCode",
            vec![("ExitCode", "3")],
            "command terminated with non-zero exit code: exit status 3",
        );
        assert_eq!(exit_code_from_status("x", Some(s)).unwrap(), 3);
    }

    #[test]
    fn other_failures_are_errors_with_the_message() {
        let s = failure("InternalError", vec![], "container foo not found");
        let e = exit_code_from_status("x", Some(s)).unwrap_err();
        assert!(e.to_string().contains("container foo not found"), "{e}");
        assert!(exit_code_from_status("x", None).is_err());
    }
}
