//! The attestation document sent as KMS `Recipient`, reused for a bounded time.
//!
//! Every attested `Decrypt` carries an attestation document binding the enclave's RSA
//! recipient key. The document holds no nonce and no user data, only that public key (the
//! private half never leaves this process), so one document serves any number of calls
//! equally well: KMS encrypts every answer to the same key. Asking the NSM for a new one per
//! call costs an NSM round trip (a certificate and two ECDSA P-384 signatures in the dev NSM)
//! and, at KMS, a full verification; with thousands of keys unwrapped at start it is a large
//! share of the warm-up.
//!
//! [`RecipientDocuments`] keeps the current document for [`MAX_AGE`] after it was made, well
//! inside the validity of the NSM's certificate (about three hours), and makes one new
//! document at a time however many calls wait for it. When KMS refuses a call made with a
//! reused document, the caller asks [`RecipientDocuments::refused`] whether to retry with a
//! new one: a document KMS finds stale is replaced at once, while a key policy that refuses
//! every document costs at most one extra call per [`MAX_AGE`], not one per call.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long one document is reused. The KMS documentation consulted names no maximum age for
/// a `Recipient` document besides the validity of its certificate chain (the NSM's leaf
/// certificate lives about three hours); a minute keeps every document recent whatever
/// tolerance KMS applies, at the cost of one NSM call a minute, and a refusal still gets a new
/// document at once.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);

/// One attestation document and when it was made.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    bytes: Arc<[u8]>,
    made: Instant,
}

impl Document {
    /// The document, as sent in `Recipient.AttestationDocument`.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The current `Recipient` document and the rules for replacing it (see the module docs).
#[derive(Debug)]
pub(crate) struct RecipientDocuments {
    max_age: Duration,
    current: Mutex<Option<Document>>,
    /// Held while a new document is made, so concurrent callers wait for that one.
    making: tokio::sync::Mutex<()>,
    /// When a refusal last made the current document be dropped.
    last_forced: Mutex<Option<Instant>>,
}

impl RecipientDocuments {
    /// Documents reused for `max_age` each.
    pub(crate) fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: Mutex::default(),
            making: tokio::sync::Mutex::const_new(()),
            last_forced: Mutex::default(),
        }
    }

    /// The current document if it is younger than the maximum age at `now`; otherwise a new
    /// one from `make`, which becomes the current one.
    ///
    /// # Errors
    /// `make`'s error; the current document is then left as it was.
    pub(crate) async fn get<F, Fut, E>(&self, now: Instant, make: F) -> Result<Document, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        if let Some(document) = self.fresh(now) {
            return Ok(document);
        }
        let _making = self.making.lock().await;
        // Made by the caller that held the lock before us?
        if let Some(document) = self.fresh(now) {
            return Ok(document);
        }
        let document = Document {
            bytes: make().await?.into(),
            made: now,
        };
        *lock(&self.current) = Some(document.clone());
        Ok(document)
    }

    /// KMS refused a call made with `used` at `now`. Returns whether to retry with the
    /// document [`RecipientDocuments::get`] gives next: yes when `used` is no longer the current
    /// document (another call replaced it), or when it is and no refusal replaced it within the
    /// maximum age (it is dropped, so the next `get` makes a new one).
    pub(crate) fn refused(&self, used: &Document, now: Instant) -> bool {
        let mut current = lock(&self.current);
        let is_current = current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.bytes, &used.bytes));
        if !is_current {
            return true;
        }
        let mut last_forced = lock(&self.last_forced);
        if last_forced.is_some_and(|at| now.saturating_duration_since(at) < self.max_age) {
            return false;
        }
        *last_forced = Some(now);
        *current = None;
        true
    }

    fn fresh(&self, now: Instant) -> Option<Document> {
        lock(&self.current)
            .as_ref()
            .filter(|d| now.saturating_duration_since(d.made) < self.max_age)
            .cloned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Makes numbered documents and counts them.
    #[derive(Default)]
    struct Nsm(AtomicUsize);

    impl Nsm {
        async fn make(&self) -> Result<Vec<u8>, &'static str> {
            tokio::task::yield_now().await;
            Ok(vec![
                u8::try_from(self.0.fetch_add(1, Ordering::SeqCst)).unwrap()
            ])
        }

        fn made(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    const AGE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn reused_within_the_window_and_replaced_after() {
        let (nsm, documents) = (Nsm::default(), RecipientDocuments::new(AGE));
        let t0 = Instant::now();
        let first = documents.get(t0, || nsm.make()).await.unwrap();
        let again = documents
            .get(t0 + AGE - Duration::from_millis(1), || nsm.make())
            .await
            .unwrap();
        assert_eq!((first.bytes(), again.bytes()), (&[0][..], &[0][..]));
        assert_eq!(nsm.made(), 1);

        let later = documents.get(t0 + AGE, || nsm.make()).await.unwrap();
        assert_eq!(later.bytes(), [1]);
        assert_eq!(nsm.made(), 2);
        // The new one is reused in turn.
        let t1 = t0 + AGE + Duration::from_secs(30);
        assert_eq!(documents.get(t1, || nsm.make()).await.unwrap().bytes(), [1]);
        assert_eq!(nsm.made(), 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_new_document() {
        let (nsm, documents) = (Nsm::default(), RecipientDocuments::new(AGE));
        let now = Instant::now();
        let get = || documents.get(now, || nsm.make());
        let all = tokio::join!(get(), get(), get(), get());
        for document in [all.0, all.1, all.2, all.3] {
            assert_eq!(document.unwrap().bytes(), [0]);
        }
        assert_eq!(nsm.made(), 1);
    }

    #[tokio::test]
    async fn a_failed_make_leaves_no_document() {
        let documents = RecipientDocuments::new(AGE);
        let now = Instant::now();
        let failed = documents
            .get(now, || async { Err::<Vec<u8>, _>("NSM down") })
            .await;
        assert_eq!(failed.unwrap_err(), "NSM down");
        let nsm = Nsm::default();
        assert_eq!(
            documents.get(now, || nsm.make()).await.unwrap().bytes(),
            [0]
        );
    }

    #[tokio::test]
    async fn a_refusal_replaces_the_document_at_most_once_per_window() {
        let (nsm, documents) = (Nsm::default(), RecipientDocuments::new(AGE));
        let t0 = Instant::now();
        let stale = documents.get(t0, || nsm.make()).await.unwrap();

        // KMS finds it stale: retry, with a new document.
        let t1 = t0 + Duration::from_secs(10);
        assert!(documents.refused(&stale, t1));
        let fresh = documents.get(t1, || nsm.make()).await.unwrap();
        assert_eq!(fresh.bytes(), [1]);

        // A concurrent call refused with the old document retries with the new one; no third
        // document is made for it.
        assert!(documents.refused(&stale, t1));
        assert_eq!(documents.get(t1, || nsm.make()).await.unwrap().bytes(), [1]);
        assert_eq!(nsm.made(), 2);

        // The new document refused too (the key policy refuses this enclave): no retry, and it
        // stays current, until a window has passed since the last forced refresh.
        assert!(!documents.refused(&fresh, t1 + Duration::from_secs(1)));
        assert_eq!(documents.get(t1, || nsm.make()).await.unwrap().bytes(), [1]);
        let t2 = t1 + AGE;
        assert!(documents.refused(&fresh, t2));
        assert_eq!(documents.get(t2, || nsm.make()).await.unwrap().bytes(), [2]);
        assert_eq!(nsm.made(), 3);
    }
}
