//! Transport endpoints written as URIs.
//!
//! `vsock://16:5000` is an enclave in production (`vsock://any:5000` for the enclave's own
//! listener), `unix:///run/nitro-wallet/enclave.sock` is the local and test transport (AF_VSOCK
//! loopback is not available everywhere), `tcp://127.0.0.1:5000` is for tests only.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

/// `VMADDR_CID_ANY`: listen on every CID.
pub const VSOCK_CID_ANY: u32 = u32::MAX;

/// Where to listen or connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix-domain stream socket.
    Unix(PathBuf),
    /// An AF_VSOCK address.
    Vsock {
        /// Context id (16, 17, … for enclaves; [`VSOCK_CID_ANY`] to listen).
        cid: u32,
        /// Port.
        port: u32,
    },
    /// A TCP address (tests only: TCP leaves the host unencrypted).
    Tcp(SocketAddr),
}

/// An endpoint URI that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint `{uri}`: {reason} (expected unix:///path, vsock://CID:PORT or tcp://HOST:PORT)")]
pub struct EndpointError {
    uri: String,
    reason: &'static str,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(uri: &str) -> Result<Self, Self::Err> {
        let err = |reason| EndpointError {
            uri: uri.to_owned(),
            reason,
        };
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| err("missing scheme"))?;
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(err("empty path"));
                }
                Ok(Endpoint::Unix(PathBuf::from(rest)))
            }
            "vsock" => {
                let (cid, port) = rest.split_once(':').ok_or_else(|| err("missing port"))?;
                let cid = if cid.eq_ignore_ascii_case("any") {
                    VSOCK_CID_ANY
                } else {
                    cid.parse().map_err(|_| err("CID is not a number"))?
                };
                let port = port.parse().map_err(|_| err("port is not a number"))?;
                Ok(Endpoint::Vsock { cid, port })
            }
            "tcp" => Ok(Endpoint::Tcp(
                rest.parse().map_err(|_| err("not HOST:PORT"))?,
            )),
            _ => Err(err("unknown scheme")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Vsock { cid, port } if *cid == VSOCK_CID_ANY => {
                write!(f, "vsock://any:{port}")
            }
            Endpoint::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_prints() {
        for uri in [
            "unix:///tmp/e.sock",
            "vsock://16:5000",
            "vsock://any:5000",
            "tcp://127.0.0.1:9",
        ] {
            let e: Endpoint = uri.parse().unwrap();
            assert_eq!(e.to_string(), uri);
        }
        assert_eq!(
            "vsock://16:5000".parse::<Endpoint>().unwrap(),
            Endpoint::Vsock {
                cid: 16,
                port: 5000
            }
        );
    }

    #[test]
    fn rejects_nonsense() {
        for uri in [
            "",
            "16:5000",
            "vsock://16",
            "vsock://x:1",
            "http://a",
            "unix://",
            "tcp://nope",
        ] {
            assert!(uri.parse::<Endpoint>().is_err(), "{uri}");
        }
    }
}
