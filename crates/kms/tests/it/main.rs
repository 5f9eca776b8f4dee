//! Integration tests of `nitro-wallet-kms`: the real AWS SDK code path of `KmsClient` against
//! the local emulator and against moto, an independent KMS emulator; CMS envelopes against real
//! KMS output and OpenSSL; attested calls (`Recipient`) against the emulator's attestation
//! policy and against a stub KMS that answers with plaintext; the proxied transport (the
//! enclave's route through vsock-proxy) with TLS verified in the client.

mod attested;
mod cms;
mod common;
mod emulator;
mod moto;
mod protocol;
mod tls_proxy;
