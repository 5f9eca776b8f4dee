//! Bearer-token authentication for every `/v1` route.
//!
//! Tokens are configured as SHA-256 hashes. A presented token is hashed and compared with
//! every configured hash in constant time, so neither the comparison nor the position of a
//! match leaks through timing.

use super::{error::ApiError, AppState};
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<(String, [u8; 32])>);

/// Name of the token that authenticated a request (a request extension).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

impl Tokens {
    /// Tokens from `(name, hex sha256)` pairs; malformed hashes are skipped (config
    /// validation rejects them earlier).
    pub fn from_hashes<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Tokens(
            pairs
                .into_iter()
                .filter_map(|(name, h)| {
                    let bytes: [u8; 32] = hex::decode(h).ok()?.try_into().ok()?;
                    Some((name.to_owned(), bytes))
                })
                .collect(),
        )
    }

    /// SHA-256 of a token, hex: what goes into the configuration.
    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    /// The name of the token, if it is one of ours.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.0 {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Middleware: 401 unless the request carries a valid bearer token.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    let name = state
        .tokens
        .verify(token)
        .ok_or_else(|| ApiError::unauthorized("invalid token"))?
        .to_owned();
    request.extensions_mut().insert(Caller(name));
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_configured_tokens() {
        let h = Tokens::hash("s3cret");
        let tokens = Tokens::from_hashes([("ops", h.as_str())]);
        assert_eq!(tokens.verify("s3cret"), Some("ops"));
        assert_eq!(tokens.verify("s3cret "), None);
        assert_eq!(tokens.verify(""), None);
        assert_eq!(tokens.verify(&h), None, "the hash itself is not a token");
    }
}
