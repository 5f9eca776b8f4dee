//! The protocol server: many host connections, many requests in flight on each.
//!
//! Each connection has a reader loop that decodes frames and spawns one task per request,
//! and a writer task that sends replies as they complete, in any order. A malformed,
//! truncated or oversized frame ends that connection only; the process keeps serving every
//! other connection. Requests beyond the in-flight limit are answered `overloaded` at once
//! rather than queued without bound.

use crate::Enclave;
use nitro_wallet_protocol::{
    frame::{self, FrameError},
    is_valid_request_id,
    transport::{BoxStream, Listener},
    ErrorBody, ErrorCode, Reply, RequestFrame, Response, ResponseFrame, PROTOCOL_VERSION,
};
use std::{sync::Arc, time::Duration};
use tokio::{
    io::{AsyncWriteExt, BufReader, BufWriter},
    sync::{mpsc, Semaphore},
};
use tracing::Instrument as _;

/// Limits of the protocol server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Requests being handled at once, over all connections.
    pub max_in_flight: usize,
    /// How long a frame may take to arrive once it has started (slowloris guard).
    pub frame_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 4096,
            frame_timeout: Duration::from_secs(30),
        }
    }
}

/// Accepts connections until the listener fails for good; never returns on bad input.
pub async fn serve(listener: Listener, enclave: Arc<Enclave>, limits: ServerLimits) {
    let permits = Arc::new(Semaphore::new(limits.max_in_flight));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                tokio::spawn(connection(stream, enclave.clone(), permits.clone(), limits));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(
    stream: BoxStream,
    enclave: Arc<Enclave>,
    permits: Arc<Semaphore>,
    limits: ServerLimits,
) {
    let (reader, writer) = tokio::io::split(stream);
    // Buffered: one read takes in every frame that has arrived, not three reads per frame.
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer_task = tokio::spawn(write_replies(writer, rx));
    tracing::debug!("host connected");

    let mut buf = Vec::new();
    loop {
        match frame::read_frame(&mut reader, &mut buf, limits.frame_timeout).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "bad frame; closing this connection");
                if matches!(e, FrameError::TooLarge { .. }) {
                    let _ = tx
                        .send(error_frame(0, ErrorCode::BadFrame, &e.to_string()))
                        .await;
                }
                break;
            }
        }
        let request: RequestFrame = match frame::decode(&buf) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable frame; closing this connection");
                let _ = tx
                    .send(error_frame(0, ErrorCode::BadFrame, &e.to_string()))
                    .await;
                break;
            }
        };
        if request.v != PROTOCOL_VERSION {
            let msg = format!(
                "protocol version {} is not supported (this enclave speaks {PROTOCOL_VERSION})",
                request.v
            );
            if tx
                .send(error_frame(request.id, ErrorCode::UnsupportedVersion, &msg))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let msg = "too many requests in flight; retry";
            if tx
                .send(error_frame(request.id, ErrorCode::Overloaded, msg))
                .await
                .is_err()
            {
                break;
            }
            continue;
        };
        let (enclave, tx) = (enclave.clone(), tx.clone());
        // Everything logged for this request carries the host's request id, so an operator can
        // follow one HTTP request into the enclave. The host checks ids; the enclave still
        // logs only well-formed ones (no line breaks or quotes from a confused host).
        let span = tracing::info_span!(
            "request",
            request_id = request
                .request_id
                .as_deref()
                .filter(|r| is_valid_request_id(r))
        );
        tokio::spawn(
            async move {
                let id = request.id;
                let operation = request.req.operation();
                let started = std::time::Instant::now();
                let reply = match enclave.handle(request.req).await {
                    Ok(r) => Reply::Ok(r),
                    Err(e) => Reply::Err(e),
                };
                drop(permit);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                match outcome(&reply) {
                    None => tracing::debug!(operation, micros, "request handled"),
                    Some(e) if e.code == ErrorCode::Internal => {
                        tracing::warn!(operation, micros, error = %e, "request failed")
                    }
                    Some(e) => {
                        tracing::debug!(operation, micros, code = %e.code, "request refused")
                    }
                }
                let frame = frame::encode(&ResponseFrame {
                    v: PROTOCOL_VERSION,
                    id,
                    reply,
                })
                .unwrap_or_else(|e| error_frame(id, ErrorCode::Internal, &e.to_string()));
                let _ = tx.send(frame).await;
            }
            .instrument(span),
        );
    }
    drop(tx);
    // Replies to requests already accepted still go out before the stream closes.
    let _ = writer_task.await;
    tracing::debug!("host connection closed");
}

async fn write_replies(writer: tokio::io::WriteHalf<BoxStream>, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::new(writer);
    while let Some(frame) = rx.recv().await {
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        // Coalesce replies that are ready together into one write.
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// The error a reply carries, the one inside an audited reply included.
fn outcome(reply: &Reply) -> Option<&ErrorBody> {
    match reply {
        Reply::Err(e) => Some(e),
        Reply::Ok(Response::Audited(a)) => outcome(&a.reply),
        Reply::Ok(_) => None,
    }
}

fn error_frame(id: u64, code: ErrorCode, message: &str) -> Vec<u8> {
    let frame = ResponseFrame {
        v: PROTOCOL_VERSION,
        id,
        reply: Reply::Err(ErrorBody::new(code, message)),
    };
    // A frame of a short error always encodes; fall back to an empty frame rather than panic.
    frame::encode(&frame).unwrap_or_else(|_| 0u32.to_be_bytes().to_vec())
}
