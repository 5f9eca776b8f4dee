//! The Web3Signer-compatible eth1 surface, for tools written against Consensys Web3Signer:
//! `GET /api/v1/eth1/publicKeys`, `POST /api/v1/eth1/sign/{identifier}` and `GET /upcheck`.
//!
//! `eth1/sign` signs keccak256 of arbitrary `data` with no prefix: whoever may call it can have
//! any transaction signed, so it is allowed only for keys whose policy allows `raw_hash`, like
//! `sign/hash`. Unlike Web3Signer, the eth1 routes need the bearer token.

use super::{
    auth::Caller,
    error::ApiError,
    keys::{body_bytes, find, parse_object, sign_hash_with},
    AppState,
};
use crate::tokens::Operation;
use alloy_primitives::{keccak256, Address};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;

#[utoipa::path(
    get,
    path = "/upcheck",
    tag = "compatibility",
    operation_id = "upcheck",
    summary = "Web3Signer's liveness probe",
    security(()),
    responses((status = 200, description = "`OK`", content_type = "text/plain", body = String)),
)]
/// `GET /upcheck`: Web3Signer's liveness probe (no token, like `/healthz`).
pub(crate) async fn upcheck() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK")
}

#[utoipa::path(
    get,
    path = "/api/v1/eth1/publicKeys",
    tag = "compatibility",
    operation_id = "eth1_public_keys",
    summary = "Web3Signer: list public keys",
    responses(
        (status = 200, description = "The uncompressed public keys (x ‖ y) of the keys the token may use", body = Vec<super::openapi::PublicKey>),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
/// `GET /api/v1/eth1/publicKeys`: the uncompressed public keys of the keys the token may use,
/// `0x` + 128 hex digits (x ‖ y, without the `04` prefix), as Web3Signer lists them.
pub(crate) async fn public_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<String>>, ApiError> {
    caller.authorize(Operation::KeysRead, None)?;
    let records = state.store.list().await?;
    let mut keys = Vec::with_capacity(records.len());
    for record in records.iter().filter(|r| caller.may_use(&r.address)) {
        match record.public_key.as_ref().map(|k| &k[..]) {
            Some([0x04, xy @ ..]) if xy.len() == 64 => {
                keys.push(format!("0x{}", hex::encode(xy)));
            }
            _ => tracing::warn!(
                address = %record.address,
                "key record without a public key (made before records kept one): not listed"
            ),
        }
    }
    Ok(Json(keys))
}

#[derive(Deserialize)]
pub(crate) struct SignData {
    data: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/eth1/sign/{identifier}",
    tag = "compatibility",
    operation_id = "eth1_sign",
    summary = "Web3Signer: sign keccak256(data)",
    params(("identifier" = String, Path, pattern = "^(0x)?([0-9a-fA-F]{40}|(04)?[0-9a-fA-F]{128})$", description = "The key's public key (`0x` + 128 hex digits, or 130 with `04`) or its address")),
    request_body = super::openapi::Eth1SignRequest,
    responses(
        (status = 200, description = "The signature of keccak256(data): `0x` + `r ‖ s ‖ v` (65 bytes, v = 27 or 28)", content_type = "text/plain", body = super::openapi::Signature65),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /api/v1/eth1/sign/{identifier}` with `{"data": "0x…"}`: signs keccak256(data) and
/// answers the 65-byte `r ‖ s ‖ v` (v = 27 or 28) as `text/plain` hex, as Web3Signer does.
/// `identifier` is the key's public key (64 bytes, or 65 with `04`) or its address.
pub(crate) async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let address = identifier_address(&identifier)?;
    let record = find(&state, &caller, Operation::SignHash, &address.to_string()).await?;
    let req: SignData = parse_object(&body_bytes(body)?)?;
    let data = req
        .data
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "data must be 0x followed by an even number of hex digits",
            )
            .with_field("data")
        })?;
    let signature = sign_hash_with(&state, &record, keccak256(&data)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        signature.signature.to_string(),
    ))
}

/// The address an identifier names: an address, or a public key (`0x04`-prefixed or not).
fn identifier_address(identifier: &str) -> Result<Address, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_identifier",
            "the identifier must be the key's public key (0x + 128 hex digits) or its address",
        )
        .with_field("identifier")
    };
    let hex_digits = identifier.strip_prefix("0x").unwrap_or(identifier);
    match hex_digits.len() {
        40 => super::keys::parse_address(&format!("0x{hex_digits}")),
        128 | 130 => {
            let bytes = hex::decode(hex_digits).map_err(|_| bad())?;
            let xy = match bytes.as_slice() {
                [0x04, xy @ ..] if xy.len() == 64 => xy,
                xy if xy.len() == 64 => xy,
                _ => return Err(bad()),
            };
            Ok(Address::from_raw_public_key(xy))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn identifiers_are_public_keys_or_addresses() {
        // Hardhat/anvil account 0.
        let address: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            .parse()
            .unwrap();
        let xy = "8318535b54105d4a7aae60c08fc45f9687181b4fdfc625bd1a753fa7397fed753547f11ca8696646f2f3acb08e31016afac23e630c5d11f59f61fef57b0d2aa5";
        for id in [
            format!("0x{xy}"),
            xy.to_owned(),
            format!("0x04{xy}"),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".to_owned(),
            "f39fd6e51aad88f6f4ce6ab8827279cfffb92266".to_owned(),
        ] {
            assert_eq!(identifier_address(&id).unwrap(), address, "{id}");
        }
        for id in [
            "".to_owned(),
            "0x1234".to_owned(),
            format!("0x05{xy}"),
            format!("0x{}", "zz".repeat(64)),
        ] {
            assert!(identifier_address(&id).is_err(), "{id}");
        }
    }
}
