//! The audit log, host side: the log file of the enclaves' signed decisions ([`log`]), the
//! path every signing and key-management request takes to reach an enclave
//! ([`AppState::decide`](crate::api::AppState::decide)), and `nitro-wallet audit verify`
//! ([`command`]).
//!
//! The enclave decides and records; the host only keeps the record. Each request goes to the
//! enclave wrapped in [`Request::Audited`] with the name of the API token that made it (the
//! caller) and the hash of the log's last entry; the enclave answers with the outcome and the
//! signed entries, which are written and synced to the log before the outcome (signature or
//! refusal) is released. The caller's name is request context, like a tracing span: it is
//! set once, where the token is checked ([`record_caller`], [`with_caller`]), and read here,
//! so the many signing helpers shared by the REST, JSON-RPC, Web3Signer and AWS-sample
//! surfaces need no extra parameter.

pub mod command;
pub mod log;

pub use log::{AuditLog, AuditLogError};

use crate::{api::AppState, enclave_client::CallError};
use nitro_wallet_protocol::{Audited, ErrorBody, ErrorCode, Reply, Request, Response};
use std::future::Future;

tokio::task_local! {
    /// The name of the API token of the request being served.
    static CALLER: Option<String>;
}

/// The name of the API token of the request being served, if one was recorded.
pub fn current_caller() -> Option<String> {
    CALLER.try_with(Clone::clone).ok().flatten()
}

/// Runs `f` with `caller` as the request's caller (for the audit log).
pub async fn with_caller<F: Future>(caller: Option<String>, f: F) -> F::Output {
    CALLER.scope(caller, f).await
}

/// Middleware, inside the token check: the rest of the request runs with the authenticated
/// token's name as its caller.
pub async fn record_caller(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let caller = request
        .extensions()
        .get::<crate::api::auth::Caller>()
        .map(|c| c.name().to_owned());
    with_caller(caller, next.run(request)).await
}

impl AppState {
    /// Has an enclave decide a signing or key-management request. With an audit log, the
    /// request goes wrapped, and the decision's entries are on disk before the outcome is
    /// returned; if they cannot be written, the outcome is withheld (`audit_unavailable`, 503).
    ///
    /// # Errors
    /// The enclave's refusal or failure, as [`EnclavePool::call`](crate::enclave_pool::EnclavePool::call);
    /// `audit_unavailable` when the log cannot take the entries.
    pub async fn decide(&self, request: Request) -> Result<Response, CallError> {
        let Some(log) = &self.audit else {
            return self.enclave.call(request).await;
        };
        let wrapped = Request::Audited(Audited {
            caller: current_caller(),
            log_head: Some(log.head()),
            request: Box::new(request),
        });
        let Response::Audited(reply) = self.enclave.call(wrapped).await? else {
            return Err(CallError::Enclave(ErrorBody::new(
                ErrorCode::Internal,
                "unexpected answer to an audited request",
            )));
        };
        if let Err(e) = log.record(&self.enclave, reply.entries).await {
            tracing::error!(error = %e, "audit log: the outcome is withheld");
            return Err(CallError::Enclave(ErrorBody::new(
                ErrorCode::AuditUnavailable,
                "the decision could not be written to the audit log, so it was not released; \
                 retry later",
            )));
        }
        match *reply.reply {
            Reply::Ok(response) => Ok(response),
            Reply::Err(e) => Err(CallError::Enclave(e)),
        }
    }
}
