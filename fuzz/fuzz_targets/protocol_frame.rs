//! Fuzzes the host <-> enclave framing and message decoding: the bytes either side reads from
//! the other over vsock.
//!
//! The input is a byte stream read frame by frame with `frame::read_frame` (as the enclave's
//! connection loop does); every payload is decoded both as a `RequestFrame` (what the enclave
//! reads) and as a `ResponseFrame` (what the host reads). A decoded request must survive
//! `encode` -> `decode`, and encoding is stable from then on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet_protocol::{
    frame::{self, FrameError},
    RequestFrame, ResponseFrame, MAX_FRAME_LEN,
};
use std::{sync::OnceLock, time::Duration};
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("tokio runtime: {e}"),
        }
    })
}

fn check_request(payload: &[u8]) {
    let Ok(request) = frame::decode::<RequestFrame>(payload) else {
        return;
    };
    let encoded = match frame::encode(&request) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded request does not encode: {e}"),
    };
    assert!(encoded.len() - 4 <= MAX_FRAME_LEN);
    let back: RequestFrame = match frame::decode(&encoded[4..]) {
        Ok(r) => r,
        Err(e) => panic!("a re-encoded request does not decode: {e}"),
    };
    assert_eq!(back.v, request.v);
    assert_eq!(back.id, request.id);
    match frame::encode(&back) {
        Ok(again) => assert_eq!(again, encoded, "encoding is not stable"),
        Err(e) => panic!("a round-tripped request does not encode: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut reader = data;
        let mut buf = Vec::new();
        loop {
            match frame::read_frame(&mut reader, &mut buf, Duration::from_secs(1)).await {
                Ok(true) => {
                    assert!(buf.len() <= MAX_FRAME_LEN);
                    check_request(&buf);
                    let _ = frame::decode::<ResponseFrame>(&buf);
                }
                Ok(false) => break,
                Err(FrameError::TooLarge { len, .. }) => {
                    assert!(len > MAX_FRAME_LEN);
                    break;
                }
                Err(FrameError::Truncated) => break,
                // A byte slice neither fails nor stalls.
                Err(e) => panic!("unexpected frame error on an in-memory stream: {e}"),
            }
        }
    });
});
