//! Run-time AWS credentials for the KMS client.
//!
//! The enclave has no instance metadata service: the host fetches the instance role's temporary
//! credentials and hands them over, and refreshes them before they expire. [`CredentialsCell`] is
//! the shared slot the SDK reads on every request, so a refresh takes effect immediately, also
//! for requests already in flight on other tasks.

use std::fmt;
use std::sync::{Arc, RwLock};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;

/// Replaceable credentials slot, shared by clones.
///
/// Before the first [`CredentialsCell::set`] every request fails with a credentials error
/// (mapped to [`crate::KmsError::Denied`]); nothing panics. `Debug` prints only whether
/// credentials are present.
#[derive(Clone, Default)]
pub struct CredentialsCell {
    inner: Arc<RwLock<Option<Credentials>>>,
}

impl CredentialsCell {
    /// An empty cell: requests fail until [`CredentialsCell::set`] is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the credentials (first delivery or refresh) for every clone of this cell.
    pub fn set(&self, credentials: Credentials) {
        let mut slot = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(credentials);
    }

    /// Forgets the credentials; later requests fail as before the first `set`.
    pub fn clear(&self) {
        let mut slot = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = None;
    }

    /// Whether credentials have been set.
    pub fn is_set(&self) -> bool {
        self.current().is_some()
    }

    /// The current credentials, if any.
    pub(crate) fn current(&self) -> Option<Credentials> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl fmt::Debug for CredentialsCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsCell")
            .field("set", &self.is_set())
            .finish()
    }
}

/// The message of the error returned before the first `set`.
pub(crate) const NO_CREDENTIALS: &str = "no credentials yet";

impl ProvideCredentials for CredentialsCell {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(
            self.current()
                .ok_or_else(|| CredentialsError::not_loaded(NO_CREDENTIALS)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn empty_then_set_then_clear() {
        let cell = CredentialsCell::new();
        assert!(cell.provide_credentials().await.is_err());
        let clone = cell.clone();
        clone.set(Credentials::from_keys(
            "AKIDEXAMPLE",
            "very-secret",
            Some("tok".into()),
        ));
        let got = cell.provide_credentials().await.expect("credentials set");
        assert_eq!(got.access_key_id(), "AKIDEXAMPLE");
        cell.clear();
        assert!(clone.provide_credentials().await.is_err());
    }

    #[test]
    fn debug_prints_no_secrets() {
        let cell = CredentialsCell::new();
        cell.set(Credentials::from_keys(
            "AKIDEXAMPLE",
            "very-secret",
            Some("tok".into()),
        ));
        let printed = format!("{cell:?}");
        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("AKIDEXAMPLE"));
        assert!(printed.contains("set: true"));
    }
}
