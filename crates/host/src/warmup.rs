//! Warm-up: unwrap every stored key in the enclaves before its first signature.
//!
//! An enclave holds plaintext keys only in memory, so after a start or a restart each key's
//! first signature waits for a KMS Decrypt (with an attestation document) — milliseconds each,
//! and with thousands of keys a burst of traffic would queue behind thousands of them. At start,
//! and whenever an enclave comes back after being down, a background task sends every stored
//! key to the enclaves with [`Request::LoadKey`], a bounded number at a time. It never blocks
//! readiness: the API serves from the first moment, and a key not yet warm is unwrapped on
//! first use as before (the enclave shares one unwrap between concurrent requests for a key).
//!
//! The enclave's cache is bounded (`--max-cached-keys`, 10 000 by default): with more keys
//! in the store than that, the warm-up evicts keys it loaded earlier and is of little use.

use crate::{api::AppState, config::EnclaveConfig, enclave_pool::EnclavePool, keystore::KeyStore};
use futures::StreamExt as _;
use nitro_wallet_protocol::Request;
use std::time::{Duration, Instant};

/// How often the task looks at the pool's health for an enclave that came back.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The running warm-up task; dropping it stops the task.
#[derive(Debug)]
pub struct WarmUp(Option<tokio::task::AbortHandle>);

impl Drop for WarmUp {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Keys every reachable enclave now holds.
    pub loaded: usize,
    /// Keys that failed (an enclave's or KMS's error); they unwrap on first use instead.
    pub failed: usize,
}

/// Starts the warm-up task when `config.warm_keys` is set: a first pass once an enclave is up,
/// then another whenever an enclave comes back after being down.
pub fn spawn(state: &AppState, config: &EnclaveConfig) -> WarmUp {
    if !config.warm_keys {
        return WarmUp(None);
    }
    let (pool, store) = (state.enclave.clone(), state.store.clone());
    let concurrency = config.warm_concurrency.max(1);
    let task = tokio::spawn(async move {
        // `None` until the first pass; then the enclaves' down counts it covered.
        let mut covered: Option<Vec<u64>> = None;
        loop {
            let health = pool.health();
            let downs: Vec<u64> = health.enclaves.iter().map(|e| e.downs).collect();
            if health.ready && covered.as_ref() != Some(&downs) {
                let started = Instant::now();
                match warm(&pool, store.as_ref(), concurrency).await {
                    Ok(pass) => {
                        tracing::info!(
                            loaded = pass.loaded,
                            failed = pass.failed,
                            seconds = started.elapsed().as_secs_f64(),
                            "warm-up: keys unwrapped in the enclaves"
                        );
                    }
                    // Not retried until an enclave comes back: keys still unwrap on first use.
                    Err(e) => tracing::warn!(error = %e, "warm-up: cannot list the keys"),
                }
                covered = Some(downs);
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    });
    WarmUp(Some(task.abort_handle()))
}

/// One pass: every key of `store` to every enclave that is not down, `concurrency` keys at a
/// time.
///
/// # Errors
/// When the key store cannot be listed.
pub async fn warm(
    pool: &EnclavePool,
    store: &dyn KeyStore,
    concurrency: usize,
) -> crate::Result<Pass> {
    let records = store.list().await?;
    let mut pass = Pass {
        loaded: 0,
        failed: 0,
    };
    let mut first_error = None;
    let mut results = futures::stream::iter(records)
        .map(|record| pool.broadcast(Request::LoadKey(record.wrapped())))
        .buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        match result {
            Ok(()) => pass.loaded += 1,
            Err(e) => {
                pass.failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        tracing::warn!(
            failed = pass.failed,
            first_error = %e,
            "warm-up: some keys could not be unwrapped; they will be on first use"
        );
    }
    Ok(pass)
}
