//! Opening and accepting protocol streams on an [`Endpoint`].
//!
//! All three transports yield a boxed byte stream; framing and limits are the same on each.

use crate::endpoint::Endpoint;
use std::{io, time::Duration};
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream of any transport.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed stream.
pub type BoxStream = Box<dyn Stream>;

/// Connects to `endpoint`, giving up after `timeout`.
///
/// # Errors
/// The transport's error, or [`io::ErrorKind::TimedOut`].
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<BoxStream> {
    let fut = async {
        Ok::<BoxStream, io::Error>(match endpoint {
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Endpoint::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Vsock { cid, port } => Box::new(
                tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port)).await?,
            ),
        })
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to {endpoint} timed out"),
        )
    })?
}

/// A bound listener of any transport.
#[derive(Debug)]
pub enum Listener {
    /// Unix-domain socket; the socket file is removed on drop.
    Unix(tokio::net::UnixListener, std::path::PathBuf),
    /// TCP (tests).
    Tcp(tokio::net::TcpListener),
    /// AF_VSOCK.
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    /// Binds `endpoint`. A stale Unix socket file left by a crashed process is replaced.
    ///
    /// # Errors
    /// The transport's bind error.
    pub async fn bind(endpoint: &Endpoint) -> io::Result<Listener> {
        Ok(match endpoint {
            Endpoint::Unix(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    if meta.file_type().is_socket() {
                        std::fs::remove_file(path)?;
                    }
                }
                Listener::Unix(tokio::net::UnixListener::bind(path)?, path.clone())
            }
            Endpoint::Tcp(addr) => Listener::Tcp(tokio::net::TcpListener::bind(addr).await?),
            Endpoint::Vsock { cid, port } => Listener::Vsock(tokio_vsock::VsockListener::bind(
                tokio_vsock::VsockAddr::new(*cid, *port),
            )?),
        })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        Ok(match self {
            Listener::Unix(_, path) => Endpoint::Unix(path.clone()),
            Listener::Tcp(l) => Endpoint::Tcp(l.local_addr()?),
            Listener::Vsock(l) => {
                let a = l.local_addr()?;
                Endpoint::Vsock {
                    cid: a.cid(),
                    port: a.port(),
                }
            }
        })
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    /// The transport's accept error (for example too many open files); callers should back
    /// off and keep accepting.
    pub async fn accept(&self) -> io::Result<BoxStream> {
        Ok(match self {
            Listener::Unix(l, _) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => {
                let s = l.accept().await?.0;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Listener::Vsock(l) => Box::new(l.accept().await?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
