//! `pods/log`: a container's log file streamed in chunks (`tailLines`, `follow`).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::status::ApiError;

const CHUNK: usize = 64 * 1024;
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Byte offset where the last `lines` lines of the file start, scanning backwards in
/// chunks so a large log is never read whole.
pub async fn tail_offset(file: &mut tokio::fs::File, lines: u64) -> std::io::Result<u64> {
    let len = file.metadata().await?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0u64;
    // A final newline terminates the last line; it does not start a new one.
    let mut skip_last = true;
    let mut buf = vec![0u8; CHUNK];
    while pos > 0 {
        let n = (pos as usize).min(CHUNK);
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos)).await?;
        file.read_exact(&mut buf[..n]).await?;
        for i in (0..n).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == lines {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
        skip_last = false;
    }
    Ok(0)
}

pub struct LogRequest {
    pub path: PathBuf,
    pub tail_lines: Option<u64>,
    pub follow: bool,
}

async fn open(path: &Path) -> Result<tokio::fs::File, ApiError> {
    tokio::fs::File::open(path).await.map_err(|e| {
        ApiError::bad_request(format!(
            "opening the container log {} failed: {e}; the container may not have started yet",
            path.display()
        ))
    })
}

/// The log as a streamed body. With `follow`, keeps polling for appended data until the
/// client goes away (the body is dropped then).
pub async fn stream(req: LogRequest) -> Result<Body, ApiError> {
    let mut file = open(&req.path).await?;
    let start = match req.tail_lines {
        Some(n) => tail_offset(&mut file, n).await.map_err(|e| {
            ApiError::internal(format!("reading {} failed: {e}", req.path.display()))
        })?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start)).await.map_err(|e| {
        ApiError::internal(format!("seeking in {} failed: {e}", req.path.display()))
    })?;
    let follow = req.follow;
    let s = futures::stream::unfold(file, move |mut file| async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) if follow => tokio::time::sleep(FOLLOW_POLL).await,
                Ok(0) => return None,
                Ok(n) => {
                    buf.truncate(n);
                    return Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), file));
                }
                Err(e) => return Some((Err(e), file)),
            }
        }
    });
    Ok(Body::from_stream(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn offset_for(content: &str, n: u64) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, content).unwrap();
        let mut f = tokio::fs::File::open(&p).await.unwrap();
        tail_offset(&mut f, n).await.unwrap() as usize
    }

    #[tokio::test]
    async fn tail_finds_line_starts() {
        let c = "a\nbb\nccc\n";
        assert_eq!(&c[offset_for(c, 1).await..], "ccc\n");
        assert_eq!(&c[offset_for(c, 2).await..], "bb\nccc\n");
        assert_eq!(&c[offset_for(c, 10).await..], c);
        assert_eq!(&c[offset_for(c, 0).await..], "");
        let c = "a\nno-newline";
        assert_eq!(&c[offset_for(c, 1).await..], "no-newline");
    }

    #[tokio::test]
    async fn tail_across_chunks() {
        let line = "x".repeat(1000) + "\n";
        let c = line.repeat(200);
        assert_eq!(c.len() - offset_for(&c, 100).await, 100 * line.len());
    }
}
