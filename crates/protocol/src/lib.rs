//! The protocol between the host (`nitro-wallet serve` on the EC2 parent) and the enclave
//! signing server.
//!
//! One persistent stream carries many requests at once: every message is a length-prefixed
//! frame ([`frame`]) holding a JSON envelope with the protocol version and a request id
//! ([`message`]). Errors that cross the boundary are typed and carry a stable code
//! ([`error`]), never secret bytes. Endpoints are URIs ([`endpoint`]); with the `transport`
//! feature, [`transport`] opens and accepts them over Unix sockets, TCP or vsock.

pub mod endpoint;
pub mod error;
pub mod frame;
pub mod message;
#[cfg(feature = "transport")]
pub mod transport;

pub use endpoint::Endpoint;
pub use error::{ErrorBody, ErrorCode};
pub use frame::{FrameError, MAX_FRAME_LEN};
pub use message::{
    is_valid_request_id, AttestationDocument, AttestationRequest, AuditEntries, AuditEntryList,
    Audited, AuditedReply, Credentials, EnclaveStats, GenerateKey, ImportKey, MigrateKey, Pong,
    Reply, Request, RequestFrame, Response, ResponseFrame, SealedWindow, SecretString, SetPolicy,
    SignAuthorization, SignHash, SignMessage, SignTransaction, SignTypedData, WindowedTransaction,
    WrappedKey, MAX_REQUEST_ID_LEN, PROTOCOL_VERSION,
};
