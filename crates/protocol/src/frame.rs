//! Length-prefixed framing.
//!
//! A frame is a big-endian `u32` length followed by that many bytes of payload. The length is
//! checked against a hard maximum *before* anything is allocated, and reads use `read_exact`,
//! so a peer can neither truncate a message silently (the reference system's single
//! `recv(1024)`) nor make us allocate more than [`MAX_FRAME_LEN`].

use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload either side accepts: 1 MiB, far above any transaction we sign.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Why a frame could not be read, written or decoded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
    /// The announced length exceeds the maximum; the stream is unusable afterwards.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// A frame started but did not complete in time.
    #[error("peer stalled inside a frame")]
    Stalled,
    /// The payload is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Reads one frame's payload into `buf` (which is cleared first).
///
/// Waiting for a frame to *start* has no time limit (an idle connection is fine), but once its
/// first byte has arrived the rest must follow within `stall`: a peer cannot hold a
/// connection and its buffer hostage by trickling bytes.
///
/// Returns `Ok(false)` when the stream ends cleanly at a frame boundary.
///
/// # Errors
/// [`FrameError::TooLarge`] for an oversized length prefix, [`FrameError::Truncated`] when
/// the stream ends mid-frame, [`FrameError::Stalled`] when it stalls, [`FrameError::Io`] for
/// transport errors.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    stall: Duration,
) -> Result<bool, FrameError> {
    let mut prefix = [0u8; 4];
    // Distinguish a clean EOF (no byte of a new frame) from a truncated prefix.
    let first = reader.read(&mut prefix[..1]).await?;
    if first == 0 {
        return Ok(false);
    }
    tokio::time::timeout(stall, read_rest(reader, prefix, buf))
        .await
        .map_err(|_| FrameError::Stalled)??;
    Ok(true)
}

async fn read_rest<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut prefix: [u8; 4],
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    read_exact(reader, &mut prefix[1..]).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    buf.clear();
    buf.resize(len, 0);
    read_exact(reader, buf).await
}

async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<(), FrameError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Writes `frame` (already carrying its length prefix, see [`encode`]) and flushes.
///
/// # Errors
/// [`FrameError::Io`] when the stream fails.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &[u8],
) -> Result<(), FrameError> {
    writer.write_all(frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Serialises `message` as JSON behind its length prefix, ready for [`write_frame`].
///
/// # Errors
/// [`FrameError::TooLarge`] when the encoding exceeds [`MAX_FRAME_LEN`].
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, message).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        max: MAX_FRAME_LEN,
    })?;
    out[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

/// Parses a frame payload.
///
/// # Errors
/// [`FrameError::Malformed`] with serde's description (which quotes no payload bytes beyond
/// a short token).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn round_trip() {
        let frame = encode(&serde_json::json!({"a": 1})).unwrap();
        let mut r = &frame[..];
        let mut buf = Vec::new();
        assert!(read_frame(&mut r, &mut buf, T).await.unwrap());
        assert_eq!(buf, br#"{"a":1}"#);
        assert!(!read_frame(&mut r, &mut buf, T).await.unwrap());
    }

    #[tokio::test]
    async fn oversized_prefix_is_refused_before_allocation() {
        let bytes = u32::MAX.to_be_bytes();
        let mut r = &bytes[..];
        let err = read_frame(&mut r, &mut Vec::new(), T).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u32::MAX as usize));
    }

    #[tokio::test]
    async fn truncation_is_detected() {
        let frame = encode(&"hello").unwrap();
        for cut in 1..frame.len() {
            let mut r = &frame[..cut];
            let err = read_frame(&mut r, &mut Vec::new(), T).await.unwrap_err();
            assert!(matches!(err, FrameError::Truncated), "cut at {cut}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            rt.block_on(async {
                let mut r = &bytes[..];
                let mut buf = Vec::new();
                while let Ok(true) = read_frame(&mut r, &mut buf, T).await {
                    let _ = decode::<crate::RequestFrame>(&buf);
                }
            });
        }
    }
}
