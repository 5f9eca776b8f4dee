//! Fuzzes the reading of a client certificate's subject common name (mutual TLS), which maps
//! the certificate to a token.
//!
//! No panic on any bytes; a name, when found, is the only common name of the subject and is
//! found again in the bytes (it comes from them, nothing is made up).

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet::tls::ClientCert;

fuzz_target!(|data: &[u8]| {
    let cert = ClientCert::from_der(data);
    if let Some(name) = cert.common_name {
        assert!(
            data.windows(name.len().max(1)).any(|w| w == name.as_bytes()),
            "a common name that is not in the certificate's bytes"
        );
    }
});
