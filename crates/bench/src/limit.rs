//! The in-process limit: how many of the run's signatures this machine makes per second with
//! nothing but `nitro-wallet-eth`, one thread per core. It is the ceiling the service could
//! reach if HTTP, TLS, JSON, authentication, the audit log and the host↔enclave hop were free;
//! the end-to-end rate divided by it says how much of the machine the service turns into
//! signatures.

use crate::{ops::Mix, ops::Op, Error};
use nitro_wallet_eth::{sign_personal_message, sign_transaction, PrivateKey, TransactionRequest};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Result of [`measure`].
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Signatures per second over all threads.
    pub per_second: f64,
    /// Threads used (one per core).
    pub threads: usize,
}

/// Signs the mix's operations for `duration` on every core, doing per request what the
/// enclave does: parse the JSON document, sign, serialize the answer.
///
/// # Errors
/// When a thread cannot start or a payload does not sign (a bug in the payloads).
pub fn measure(mix: &Mix, duration: Duration) -> Result<Limit, Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Payloads are built before the clock starts, as the enclave receives them ready.
    let bodies: Arc<Vec<(Op, Vec<u8>)>> = Arc::new(
        (0..256u64)
            .map(|seq| {
                let op = mix.op(seq);
                (op, op.payload(seq, None).to_string().into_bytes())
            })
            .collect(),
    );
    let key = Arc::new(PrivateKey::from_bytes(&[0x46; 32])?);
    // One untimed pass proves every payload signs.
    for (op, body) in bodies.iter() {
        sign_one(&key, *op, body)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers = (0..threads)
        .map(|t| {
            let (bodies, key, stop) = (bodies.clone(), key.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("limit-{t}"))
                .spawn(move || {
                    let mut done = 0u64;
                    let mut i = t * 7;
                    while !stop.load(Ordering::Relaxed) {
                        let (op, body) = &bodies[i % bodies.len()];
                        if sign_one(&key, *op, body).is_ok() {
                            done += 1;
                        }
                        i += 1;
                    }
                    done
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    for w in workers {
        total += w
            .join()
            .map_err(|_| "an in-process signing thread panicked")?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Limit {
        per_second: total as f64 / secs,
        threads,
    })
}

fn sign_one(key: &PrivateKey, op: Op, body: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(match op {
        Op::Eip1559 | Op::Legacy => {
            let request = TransactionRequest::from_json(body)?;
            serde_json::to_vec(&sign_transaction(key, &request)?)?
        }
        Op::Message => {
            let text: String = serde_json::from_slice(body)?;
            serde_json::to_vec(&sign_personal_message(key, text.as_bytes()))?
        }
        Op::TypedData => serde_json::to_vec(&nitro_wallet_eth::sign_typed_data(key, body)?)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_operation_signs() {
        let key = PrivateKey::from_bytes(&[0x46; 32]).unwrap();
        for op in Op::ALL {
            let body = op.payload(5, None).to_string();
            assert!(!sign_one(&key, op, body.as_bytes()).unwrap().is_empty());
        }
    }

    #[test]
    fn measures_a_positive_rate() {
        let limit = measure(&Mix::default(), Duration::from_millis(50)).unwrap();
        assert!(limit.per_second > 0.0 && limit.threads >= 1);
    }
}
