//! The OpenAPI 3.1 document of the HTTPS API, generated from the handlers' `#[utoipa::path]`
//! attributes and the schemas below, served at `GET /openapi.json` (no token: it holds nothing
//! secret) and checked in as `docs/openapi.json`, which a test keeps equal to what is served.
//!
//! Bodies that the handlers (or the enclave) parse by hand from JSON, such as transaction
//! objects, policies and typed data, have their schema written here, as close to the parser's
//! rules as JSON Schema can say; the rules it cannot say (a checksum, fee consistency) are in
//! the descriptions. These types exist only for the document: nothing is deserialized into
//! them.

#![allow(dead_code)] // Schema types: read by the derive macros, never constructed.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use std::sync::OnceLock;
use utoipa::{
    openapi::{
        content::ContentBuilder,
        header::HeaderBuilder,
        response::ResponseBuilder,
        schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        Ref, RefOr, Schema,
    },
    Modify, OpenApi, PartialSchema, ToResponse, ToSchema,
};

/// `GET /openapi.json`: the document, byte for byte as in `docs/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This OpenAPI document",
    security(()),
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json",
        body = Object)),
)]
pub(crate) async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// The document as JSON text: pretty-printed, keys in sorted order (utoipa keeps its maps
/// sorted), with a final newline, so that it diffs well as a checked-in file.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // Serializing plain structs of strings and maps cannot fail; were it to, the answer
        // says so rather than panicking on a request path.
        let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("cannot serialize the document: {e}") })
                .to_string()
        });
        text.push('\n');
        text
    })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "nitro-wallet",
        description = "Ethereum signing service whose keys live in an AWS Nitro Enclave. \
            Every route except the probes and this document needs `Authorization: Bearer <token>`, \
            and the token's scopes must allow the operation and the key. Errors are \
            `{\"error\": {\"code\", \"message\", \"field\"?}}` (except on `/rpc`, which answers \
            JSON-RPC errors); a request over its deadline is 503 `timeout`, a method a path \
            does not serve is 405 and an unknown path 404 `not_found`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::keys::create,
        super::keys::import,
        super::keys::list,
        super::keys::show,
        super::keys::set_policy,
        super::keys::sign_transaction,
        super::keys::sign_message,
        super::keys::sign_typed_data,
        super::keys::sign_hash,
        super::keys::sign_authorization,
        super::compat::migrate,
        super::compat::sign,
        super::attestation,
        super::web3signer::public_keys,
        super::web3signer::sign,
        super::web3signer::upcheck,
        super::rpc::header_token,
        super::rpc::path_token,
        super::healthz,
        super::readyz,
        super::metrics,
        serve,
    ),
    components(responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Unprocessable,
        TooManyRequests,
        Unavailable,
    )),
    modifiers(&BearerAuth, &OptionalBodies, &ClosedObjects, &RequestIds),
    security(("bearer" = [])),
    tags(
        (name = "keys", description = "Generate, import, list and show keys, and set their policies"),
        (name = "signing", description = "Sign with a key, inside the enclave"),
        (name = "compatibility", description = "The AWS sample's and Web3Signer's surfaces"),
        (name = "json-rpc", description = "Ethereum JSON-RPC for wallets' clients"),
        (name = "meta", description = "Probes, attestation and this document"),
    ),
)]
struct ApiDoc;

/// Adds the `bearer` security scheme that the document's default `security` names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`nitro-wallet tokens create`; dev mode writes one to \
                         DATA_DIR/api-token). Its scopes decide the operations and keys.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation takes an optional `x-request-id` and every answer carries one
/// ([`crate::request_id`]): the caller's, when well formed, or a new one.
struct RequestIds;

impl Modify for RequestIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            header::Header,
            path::{Parameter, ParameterIn},
            Object, Required,
        };
        let id = || {
            let mut schema = Object::with_type(Type::String);
            schema.pattern = Some(format!(
                "^[A-Za-z0-9._:-]{{1,{}}}$",
                nitro_wallet_protocol::MAX_REQUEST_ID_LEN
            ));
            schema
        };
        let mut parameter = Parameter::new("x-request-id");
        parameter.parameter_in = ParameterIn::Header;
        parameter.required = Required::False;
        parameter.description = Some(format!(
            "An id to follow this request by in the host's and the enclave's logs: kept when it \
             is 1 to {} of `A-Z a-z 0-9 . _ : -`; any other value is accepted but replaced by a \
             new id (never echoed), as is a missing one",
            nitro_wallet_protocol::MAX_REQUEST_ID_LEN
        ));
        // Any value is accepted (a malformed one is replaced), so the parameter has no pattern.
        parameter.schema = Some(RefOr::T(Schema::Object(Object::with_type(Type::String))));
        let mut header = Header::new(id());
        header.description =
            Some("The request's id: the caller's when well formed, else a new one".to_owned());
        let tag = |response: &mut RefOr<utoipa::openapi::Response>| {
            if let RefOr::T(r) = response {
                r.headers.insert("x-request-id".to_owned(), header.clone());
            }
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(parameter.clone());
                operation.responses.responses.values_mut().for_each(tag);
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            components.responses.values_mut().for_each(tag);
        }
    }
}

/// An optional body (`Option<T>` in `request_body`) is described by `T`: the `null` that
/// utoipa adds would say that the JSON text `null` is accepted, which it is not.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{schema::SchemaType, Required};
        let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let Some(body) = operation.request_body.as_mut() else {
                    continue;
                };
                if body.required == Some(Required::True) {
                    continue;
                }
                for content in body.content.values_mut() {
                    if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
                        if let [a, b] = one_of.items.as_slice() {
                            let only = if is_null(a) {
                                b
                            } else if is_null(b) {
                                a
                            } else {
                                continue;
                            };
                            content.schema = Some(only.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Request objects whose parser refuses unknown members (`deny_unknown_fields`), so that the
/// document says `additionalProperties: false` for them. (utoipa reads that from serde's
/// attribute, which these schema-only types do not carry.)
const CLOSED: &[&str] = &[
    "CreateKey",
    "ImportKey",
    "MigrateKey",
    "SampleSignRequest",
    "MessageRequest",
    "HashRequest",
    "Policy",
    "RecipientRule",
    "DomainRule",
    "Window",
];

struct ClosedObjects;

impl Modify for ClosedObjects {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}

// ---- Shared responses -------------------------------------------------------------------

/// An error answer with the [`ErrorBody`] shape, and headers.
fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    );
    for (name, about) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some(*about))
                .build(),
        );
    }
    response.build().into()
}

const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before retrying");

macro_rules! error_responses {
    ($($name:ident: $description:literal $(, $header:expr)*;)*) => {$(
        #[doc = $description]
        pub(crate) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), error_response($description, &[$($header),*]))
            }
        }
    )*};
}

error_responses! {
    BadRequest: "`invalid_json`: the body is not JSON; `invalid_body`: it could not be read; \
        `invalid_address`, `invalid_identifier`, `invalid_nonce`: a malformed path or query \
        parameter; `invalid_request`: `data` of `eth1/sign` is not hex";
    Unauthorized: "`unauthorized`: no `Authorization: Bearer <token>` header, or an unknown \
        (or revoked) token", ("WWW-Authenticate", "`Bearer`");
    Forbidden: "`forbidden`: the token's scopes lack the operation or the key (the message says \
        which); `policy_denied` (with `field`, the rule): the key's policy refuses the signature";
    NotFound: "`key_not_found`: no such key";
    Conflict: "`key_exists`: the key is there already; `key_changed`: the record changed \
        meanwhile, read it again and retry; `key_mismatch`, `kms_invalid_ciphertext`, \
        `window_state_rejected`: the stored record does not open under its address or policy";
    PayloadTooLarge: "`body_too_large`: the body is over `server.body_limit_bytes`";
    Unprocessable: "`invalid_request`, `invalid_transaction`: a missing or malformed field \
        (named in `field` when known)";
    TooManyRequests: "`rate_limited`: the token's rate limit is reached; `overloaded`: the \
        enclave's in-flight limit is", RETRY_AFTER;
    Unavailable: "`enclave_unavailable`, `enclave_timeout`, `kms_*`, `key_store_unavailable`, \
        `audit_unavailable`, `timeout`: retry shortly", RETRY_AFTER;
}

/// The `{address}` path parameter of the key routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeyAddress {
    /// The key's address (one case, or mixed case with a valid EIP-55 checksum)
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    address: String,
}

/// The error answers of a route that takes a body and works on one key: 400 through 503, as
/// references to the shared responses above, for `responses(…)` next to the route's success.
pub(crate) struct KeyRouteErrors;

/// [`KeyRouteErrors`] without 404: the routes that make a key rather than find one.
pub(crate) struct NewKeyErrors;

const KEY_ROUTE_ERRORS: [(&str, &str); 9] = [
    ("400", "BadRequest"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("404", "NotFound"),
    ("409", "Conflict"),
    ("413", "PayloadTooLarge"),
    ("422", "Unprocessable"),
    ("429", "TooManyRequests"),
    ("503", "Unavailable"),
];

fn response_refs<'a>(
    responses: impl IntoIterator<Item = &'a (&'a str, &'a str)>,
) -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    responses
        .into_iter()
        .map(|(status, name)| {
            (
                (*status).to_owned(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

impl utoipa::IntoResponses for KeyRouteErrors {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        response_refs(&KEY_ROUTE_ERRORS)
    }
}

impl utoipa::IntoResponses for NewKeyErrors {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        response_refs(
            KEY_ROUTE_ERRORS
                .iter()
                .filter(|(status, _)| *status != "404"),
        )
    }
}

// ---- Scalars ----------------------------------------------------------------------------

const ADDRESS: &str = "^0x[0-9a-fA-F]{40}$";
const HASH: &str = "^0x[0-9a-fA-F]{64}$";
const HEX_BYTES: &str = "^0x([0-9a-fA-F]{2})*$";
/// How alloy writes a `U256`: minimal hex.
const HEX_QUANTITY: &str = "^0x(0|[1-9a-f][0-9a-f]*)$";

/// A string schema with a pattern and a description.
fn hex_string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

macro_rules! string_schemas {
    ($($name:ident: $pattern:expr, $description:literal;)*) => {$(
        #[doc = $description]
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                hex_string($pattern, $description)
            }
        }

        impl ToSchema for $name {}
    )*};
}

string_schemas! {
    Address: ADDRESS, "An address: `0x` and 40 hex digits, in one case or with a valid EIP-55 \
        checksum. Answers always give the checksummed form.";
    Hash: HASH, "32 bytes: `0x` and 64 hex digits.";
    HexBytes: HEX_BYTES, "Bytes: `0x` and an even number of hex digits.";
    HexQuantity: HEX_QUANTITY, "A JSON-RPC quantity: `0x` and hex digits without leading zeros.";
    PublicKey: "^0x[0-9a-f]{128}$", "An uncompressed secp256k1 public key without its `04` prefix: \
        `0x` and 128 hex digits (x ‖ y).";
    Signature65: "^0x[0-9a-f]{130}$", "A signature `r ‖ s ‖ v`: `0x` and 130 hex digits.";
    LooseAddress: "^(0x)?[0-9a-fA-F]{40}$", "An address, `0x` optional, any case.";
    Selector: "^0x[0-9a-fA-F]{8}$", "A 4-byte function selector: `0x` and 8 hex digits.";
}

/// A quantity in a request: `0x`-hex (`"0x5208"`, leading zeros allowed), decimal (`"21000"`)
/// or a non-negative JSON integer.
pub(crate) struct Quantity;

impl PartialSchema for Quantity {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(hex_string("^0x[0-9a-fA-F]+$", "Hex"))
            .item(hex_string("^[0-9]+$", "Decimal"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some(
                "A quantity: `0x`-hex (leading zeros allowed), a decimal string or a \
                 non-negative JSON integer, within the field's range (u64 for nonces, gas and \
                 chain ids, u128 for fees, u256 for values).",
            ))
            .into()
    }
}

impl ToSchema for Quantity {}

// ---- Errors -----------------------------------------------------------------------------

/// Every REST error answer.
#[derive(ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable snake_case code (`invalid_request`, `key_not_found`, …).
    code: String,
    /// An explanation for a person; never a secret.
    message: String,
    /// The request field at fault, when there is one.
    #[schema(required = false)]
    field: String,
}

// ---- Keys -------------------------------------------------------------------------------

/// A key's signing policy, which the enclave enforces (see the README's Policies section).
/// Every member is optional and an absent one does not restrict; `{}` is no policy. Lists hold
/// 1 to 256 entries.
#[derive(ToSchema)]
#[schema(as = Policy)]
pub(crate) struct PolicySchema {
    /// Chains that transactions, typed-data domains and authorizations may be for (not 0).
    #[schema(required = false, min_items = 1, max_items = 256)]
    chain_ids: Option<Vec<ChainId>>,
    /// Allowed transaction recipients by address, each with the selectors it may be called
    /// with; a transaction to anyone else is refused.
    #[schema(required = false)]
    recipients: Option<std::collections::BTreeMap<String, RecipientRule>>,
    /// Whether transactions without `to` are allowed (default: only without `recipients`).
    #[schema(required = false)]
    contract_creation: Option<bool>,
    /// Largest `value` of one transaction.
    #[schema(required = false)]
    max_value_wei: Wei,
    /// Largest fee per gas (`gasPrice` or `maxFeePerGas`).
    #[schema(required = false)]
    max_fee_per_gas_wei: Wei,
    #[schema(required = false)]
    window: Option<Window>,
    /// Whether EIP-191 personal messages may be signed (default true).
    #[schema(required = false)]
    personal_messages: bool,
    /// Whether EIP-712 typed data may be signed (default true).
    #[schema(required = false)]
    typed_data: bool,
    /// Typed data is signed only if its domain matches one entry.
    #[schema(required = false, min_items = 1, max_items = 256)]
    typed_data_domains: Option<Vec<DomainRule>>,
    /// Whether raw digests may be signed (default false: a digest can be a transaction).
    #[schema(required = false)]
    raw_hash: bool,
    /// Whether EIP-7702 authorizations may be signed (default true).
    #[schema(required = false)]
    authorizations: bool,
    /// Whether authorizations for chain id 0, valid on every chain, may be (default false).
    #[schema(required = false)]
    authorization_any_chain: bool,
}

/// Calls a recipient may receive.
#[derive(ToSchema)]
pub(crate) struct RecipientRule {
    /// Allowed 4-byte function selectors (`0xa9059cbb`); absent: any call data. With
    /// selectors, a plain transfer needs `0x00000000`.
    #[schema(required = false, min_items = 1, max_items = 256)]
    selectors: Option<Vec<Selector>>,
}

/// A typed-data domain pattern: the members it names must equal the document's.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct DomainRule {
    #[schema(required = false)]
    name: Option<String>,
    #[schema(required = false)]
    version: Option<String>,
    #[schema(required = false)]
    chain_id: Option<U64>,
    #[schema(required = false)]
    verifying_contract: Option<LooseAddress>,
}

/// A rolling window: over the last `seconds`, at most `max_value_wei` in total and at most
/// `max_count` transactions (one of the two at least).
#[derive(ToSchema)]
pub(crate) struct Window {
    #[schema(minimum = 1, maximum = 31622400)]
    seconds: u64,
    #[schema(required = false)]
    max_value_wei: Wei,
    #[schema(required = false, minimum = 1, maximum = 4096)]
    max_count: Option<u64>,
}

/// A JSON integer from 0 to 2^64 − 1 (the whole `u64` range, which `format: int64` is not).
pub(crate) struct U64;

/// A JSON integer from `minimum` to 2^64 − 1.
fn u64_from(minimum: u64) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(u64::MAX))
        .into()
}

impl PartialSchema for U64 {
    fn schema() -> RefOr<Schema> {
        u64_from(0)
    }
}

impl ToSchema for U64 {}

/// A chain id in a policy: 1 to 2^64 − 1.
pub(crate) struct ChainId;

impl PartialSchema for ChainId {
    fn schema() -> RefOr<Schema> {
        u64_from(1)
    }
}

impl ToSchema for ChainId {}

/// An amount of wei: a decimal string (up to 2^256 − 1) or a JSON integer (up to 2^64 − 1).
pub(crate) struct Wei;

impl PartialSchema for Wei {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(hex_string("^[0-9]+$", "Decimal"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX)),
            )
            .description(Some(
                "An amount of wei: a decimal string (up to 2^256 - 1) or a JSON integer",
            ))
            .into()
    }
}

impl ToSchema for Wei {}

/// The body of `PUT /v1/keys/{address}/policy`: a policy, or `null` for none.
pub(crate) struct PolicyUpdate;

impl PartialSchema for PolicyUpdate {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(Ref::from_schema_name(PolicySchema::name()))
            .into()
    }
}

impl ToSchema for PolicyUpdate {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((PolicySchema::name().into(), PolicySchema::schema()));
    }
}

/// A key as the API shows it.
#[derive(ToSchema)]
#[schema(as = Key)]
pub(crate) struct KeySchema {
    /// The key's address, EIP-55 checksummed.
    address: Address,
    /// A label for people.
    #[schema(required)]
    label: Option<String>,
    /// When the key was made (RFC 3339).
    created_at: String,
    /// The KMS key that wraps it.
    kms_key_id: String,
    /// Its policy, `null` when it has none.
    #[schema(required)]
    policy: Option<PolicySchema>,
    /// The uncompressed public key, `0x04…` (absent for records made before it was kept).
    #[schema(required = false)]
    public_key: HexBytes,
    /// For a key migrated from the AWS sample: the secret it came from.
    #[schema(required = false)]
    migrated_from: MigratedFrom,
}

/// The AWS sample's secret a key was migrated from.
#[derive(ToSchema)]
pub(crate) struct MigratedFrom {
    secret_arn: String,
    secret_name: String,
}

/// The keys the token may use.
#[derive(ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<KeySchema>,
}

/// `POST /v1/keys`: everything optional; an empty body is `{}`.
#[derive(ToSchema)]
#[schema(as = CreateKey)]
pub(crate) struct CreateKeySchema {
    /// At most 128 characters, no control characters.
    #[schema(max_length = 128, required = false)]
    label: Option<String>,
    #[schema(required = false)]
    policy: Option<PolicySchema>,
}

/// `POST /v1/keys/import`.
#[derive(ToSchema)]
#[schema(as = ImportKey)]
pub(crate) struct ImportKeySchema {
    /// The private key: 32 bytes as 64 hex digits, `0x` optional.
    #[schema(pattern = "^(0x)?[0-9a-fA-F]{64}$")]
    private_key: String,
    #[schema(max_length = 128, required = false)]
    label: Option<String>,
    #[schema(required = false)]
    policy: Option<PolicySchema>,
}

/// `POST /v1/keys/migrate`.
#[derive(ToSchema)]
#[schema(as = MigrateKey)]
pub(crate) struct MigrateSchema {
    /// The name or ARN of the secret the AWS sample's `set_key` wrote.
    #[schema(min_length = 1, max_length = 2048)]
    secret_id: String,
    /// The KMS key that encrypted the sample's secret, if the key policy needs it named.
    #[schema(required = false)]
    legacy_kms_key_id: Option<String>,
    #[schema(max_length = 128, required = false)]
    label: Option<String>,
    #[schema(required = false)]
    policy: Option<PolicySchema>,
}

// ---- Transactions -----------------------------------------------------------------------

/// An Ethereum JSON-RPC transaction object (`eth_signTransaction`'s). Nothing needed for
/// signing is guessed: `chainId` (not 0), `nonce`, `gas` (or `gasLimit`) and the fees of the
/// type must be present: `gasPrice` for types 0 and 1, `maxFeePerGas` and
/// `maxPriorityFeePerGas` for 2 to 4, plus `maxFeePerBlobGas` for 3. The type is `type`, or
/// inferred: `authorizationList` → 4, a blob field → 3, EIP-1559 fees → 2, `accessList` → 1,
/// else 0; a field of another type is refused. `to` absent or `null` creates a contract (types
/// 0 to 2). Unknown fields are ignored and `null` counts as absent.
#[derive(ToSchema)]
#[schema(as = TransactionRequest, rename_all = "camelCase")]
pub(crate) struct TransactionSchema {
    #[schema(required = false)]
    r#type: Option<Quantity>,
    chain_id: Quantity,
    nonce: Quantity,
    /// Gas limit (alias `gasLimit`).
    gas: Quantity,
    #[schema(required = false)]
    gas_limit: Option<Quantity>,
    #[schema(required = false)]
    gas_price: Option<Quantity>,
    #[schema(required = false)]
    max_fee_per_gas: Option<Quantity>,
    #[schema(required = false)]
    max_priority_fee_per_gas: Option<Quantity>,
    #[schema(required = false)]
    max_fee_per_blob_gas: Option<Quantity>,
    /// Must be the key's address when present.
    #[schema(required = false)]
    from: Option<Address>,
    #[schema(required = false)]
    to: Option<Address>,
    /// In wei; 0 when absent.
    #[schema(required = false)]
    value: Option<Quantity>,
    /// Call data or init code (alias `input`).
    #[schema(required = false)]
    data: Option<HexBytes>,
    #[schema(required = false)]
    input: Option<HexBytes>,
    #[schema(required = false)]
    access_list: Option<Vec<AccessListItem>>,
    /// Type 4: signed authorizations, at least one.
    #[schema(required = false)]
    authorization_list: Option<Vec<AuthorizationEntry>>,
    /// Type 3: 1 to 9 versioned hashes (version byte `0x01`).
    #[schema(required = false)]
    blob_versioned_hashes: Option<Vec<Hash>>,
    /// Type 3: the blobs, 131072 bytes each; their commitments, proofs and versioned hashes
    /// are computed.
    #[schema(required = false)]
    blobs: Option<Vec<HexBytes>>,
}

/// An EIP-2930 access-list entry.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct AccessListItem {
    address: Address,
    storage_keys: Vec<Hash>,
}

/// A signed EIP-7702 authorization in a transaction's `authorizationList` (`v` 0 or 1 is
/// accepted for `yParity`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct AuthorizationEntry {
    chain_id: Quantity,
    address: Address,
    nonce: Quantity,
    y_parity: Quantity,
    r: Quantity,
    s: Quantity,
}

/// A signed transaction.
#[derive(ToSchema)]
pub(crate) struct SignedTransaction {
    /// The raw transaction for `eth_sendRawTransaction` (with the blobs' sidecar when the
    /// request gave blobs).
    raw_transaction: HexBytes,
    /// Its hash.
    transaction_hash: Hash,
    /// The signer's address.
    from: Address,
    signature: SignatureParts,
}

/// The parts of a transaction's signature.
#[derive(ToSchema)]
pub(crate) struct SignatureParts {
    r: HexQuantity,
    s: HexQuantity,
    /// `0x0` or `0x1`.
    y_parity: HexQuantity,
    /// EIP-155 `v` for legacy transactions, the parity for typed ones.
    v: HexQuantity,
}

/// The AWS sample's signing request.
#[derive(ToSchema)]
pub(crate) struct SampleSignRequest {
    /// The sample's payload: a transaction object whose `value` is in ether (a number or a
    /// decimal string, at most 18 decimal places).
    transaction_payload: serde_json::Map<String, serde_json::Value>,
    /// The secret the key was migrated from (`POST /v1/keys/migrate`).
    #[schema(min_length = 1, max_length = 2048)]
    secret_id: String,
}

/// The AWS sample's signing answer.
#[derive(ToSchema)]
pub(crate) struct SampleSignResponse {
    transaction_signed: HexBytes,
    transaction_hash: Hash,
}

// ---- Messages, hashes, authorizations ----------------------------------------------------

/// An EIP-191 personal message: a string (`0x`-hex means bytes, as in `personal_sign`),
/// `{"text": "…"}` or `{"raw": "0x…"}`.
#[derive(ToSchema)]
pub(crate) struct MessageRequest {
    message: PersonalMessage,
}

/// The message to sign: a string (bytes when `0x`-hex), `{"text": "…"}` or `{"raw": "0x…"}`.
pub(crate) struct PersonalMessage;

impl PartialSchema for PersonalMessage {
    fn schema() -> RefOr<Schema> {
        let one_key = |key: &str, value: RefOr<Schema>| {
            ObjectBuilder::new()
                .property(key, value)
                .required(key)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(one_key("text", String::schema()))
            .item(one_key("raw", HexBytes::schema()))
            .description(Some(
                "A string (`0x`-hex means bytes, as in `personal_sign`), `{\"text\": \"…\"}` or \
                 `{\"raw\": \"0x…\"}`",
            ))
            .into()
    }
}

impl ToSchema for PersonalMessage {}

/// An `eth_signTypedData_v4` document.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct TypedData {
    /// The struct types by name, with `EIP712Domain`.
    types: serde_json::Map<String, serde_json::Value>,
    primary_type: String,
    domain: serde_json::Map<String, serde_json::Value>,
    message: serde_json::Map<String, serde_json::Value>,
}

/// A raw digest.
#[derive(ToSchema)]
pub(crate) struct HashRequest {
    hash: Hash,
}

/// A signature of a message, typed data or digest.
#[derive(ToSchema)]
pub(crate) struct MessageSignature {
    /// The digest signed.
    hash: Hash,
    /// `r ‖ s ‖ v`, 65 bytes, v = 27 or 28.
    signature: HexBytes,
    r: HexQuantity,
    s: HexQuantity,
    /// `0x1b` or `0x1c`.
    v: HexQuantity,
    /// `0x0` or `0x1`.
    y_parity: HexQuantity,
    /// The key's address.
    signer: Address,
}

/// An EIP-7702 authorization to sign.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct AuthorizationRequest {
    /// Not 0 (valid on every chain) until key policies can allow it.
    chain_id: Quantity,
    /// The delegate contract.
    address: Address,
    /// Below 2^64 − 1.
    nonce: Quantity,
}

/// A signed EIP-7702 authorization, an `authorizationList` entry as it is.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct SignedAuthorization {
    chain_id: HexQuantity,
    address: Address,
    nonce: HexQuantity,
    y_parity: HexQuantity,
    r: HexQuantity,
    s: HexQuantity,
}

/// Web3Signer's `eth1/sign` body.
#[derive(ToSchema)]
pub(crate) struct Eth1SignRequest {
    /// Signed as keccak256(data), without a prefix.
    data: HexBytes,
}

// ---- Meta -------------------------------------------------------------------------------

/// `GET /v1/attestation`.
#[derive(ToSchema)]
pub(crate) struct Attestation {
    /// Always `COSE_Sign1`.
    format: String,
    /// The attestation document, base64.
    #[schema(content_encoding = "base64")]
    document: String,
    /// Whether it comes from dev mode's simulated NSM (then it proves nothing).
    dev: bool,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub(crate) struct Alive {
    /// `ok`.
    status: String,
}

/// `GET /readyz` when an enclave answers.
#[derive(ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: String,
    /// The first enclave that is up.
    enclave: ReadyEnclave,
    enclaves: Vec<EnclaveHealth>,
}

/// The first enclave that is up.
#[derive(ToSchema)]
pub(crate) struct ReadyEnclave {
    #[schema(required)]
    version: Option<String>,
    #[schema(required)]
    cached_keys: Option<u64>,
}

/// `GET /readyz` when no enclave answers: the error shape and each enclave's state.
#[derive(ToSchema)]
pub(crate) struct NotReady {
    error: ErrorDetail,
    enclaves: Vec<EnclaveHealth>,
}

/// One enclave's health and load.
#[derive(ToSchema)]
pub(crate) struct EnclaveHealth {
    endpoint: String,
    state: EnclaveState,
    in_flight: u64,
    served: u64,
    downs: u64,
    failed_probes: u64,
    #[schema(required = false)]
    last_error: String,
    #[schema(required = false)]
    version: String,
    #[schema(required = false)]
    cached_keys: u64,
    /// When its state last changed (RFC 3339).
    since: String,
}

/// An enclave's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum EnclaveState {
    Starting,
    Up,
    Down,
}

// ---- JSON-RPC ---------------------------------------------------------------------------

/// A JSON-RPC 2.0 request, or a batch of them.
pub(crate) struct JsonRpcBody;

impl PartialSchema for JsonRpcBody {
    fn schema() -> RefOr<Schema> {
        let call = || Ref::from_schema_name(JsonRpcRequest::name());
        OneOfBuilder::new()
            .item(call())
            .item(
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(call())
                    .min_items(Some(1)),
            )
            .description(Some("One call, or a batch of calls"))
            .into()
    }
}

impl ToSchema for JsonRpcBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((JsonRpcRequest::name().into(), JsonRpcRequest::schema()));
    }
}

/// One call; without `id` it is a notification, which is not answered.
#[derive(ToSchema)]
pub(crate) struct JsonRpcRequest {
    /// `2.0`.
    jsonrpc: String,
    /// `eth_accounts`, `eth_signTransaction`, `eth_sendTransaction`, `eth_sign`,
    /// `personal_sign`, `eth_signTypedData_v4`, `eth_chainId`; others go to the upstream node.
    method: String,
    #[schema(required = false)]
    params: Option<serde_json::Value>,
    #[schema(required = false)]
    id: Option<serde_json::Value>,
}

/// A JSON-RPC 2.0 answer (or a batch of them): `result` or `error`.
#[derive(ToSchema)]
pub(crate) struct JsonRpcResponse(serde_json::Value);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn closed_objects_exist() {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        for name in CLOSED {
            let schema = &document["components"]["schemas"][name];
            assert_eq!(schema["additionalProperties"], false, "{name}");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50, "{}", found.len());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(document.pointer(pointer).is_some(), "dangling {r}");
        }
    }

    #[test]
    fn operations_under_the_bearer_scheme_document_its_refusals() {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let open = operation["security"] == serde_json::json!([{}]);
                let responses = &operation["responses"];
                assert!(operation["operationId"].is_string(), "{method} {path}");
                if !open {
                    for status in ["401", "429"] {
                        assert!(responses[status].is_object(), "{method} {path}: {status}");
                    }
                }
            }
        }
    }
}
