//! Accepting connections: TCP with Nagle off, then, with TLS, the handshake
//! on a task of its own (a slow or hostile client never holds up the
//! accept loop) under a deadline. Each connection carries a [`ConnInfo`]:
//! the peer's address and, with mutual TLS, the identity in its
//! certificate.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::audit::{Audit, Record};
use crate::tls::{certificate_identity, TlsState};

/// TLS handshakes in progress at most.
const MAX_HANDSHAKES: usize = 1024;

/// What a request knows about its connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// With mutual TLS: the identity in the client's certificate.
    pub cert_identity: Option<Arc<str>>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection.
pub(crate) struct Conn {
    io: Io,
    info: ConnInfo,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The accepted (and, with TLS, handshaken) connections of `listener`.
/// The accept loop runs until the returned task is aborted.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Option<Arc<TlsState>>,
    audit: Audit,
) -> (
    ReceiverStream<io::Result<Conn>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    // Handshakes in progress at most: past it new connections are closed
    // at once, so a flood of connections that never finish a handshake
    // cannot pile up tasks until their deadlines.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let Some(tls) = &tls else {
                let conn = Conn {
                    io: Io::Plain(tcp),
                    info: ConnInfo {
                        peer,
                        cert_identity: None,
                    },
                };
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
                continue;
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many TLS handshakes in progress: connection closed");
                continue;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let deadline = tls.handshake_timeout();
            let (tx, audit) = (tx.clone(), audit.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(deadline, acceptor.accept(tcp)).await;
                drop(permit);
                let refused = match handshake {
                    Ok(Ok(stream)) => {
                        let cert_identity = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| certificate_identity(c))
                            .map(Arc::from);
                        let conn = Conn {
                            io: Io::Tls(Box::new(stream)),
                            info: ConnInfo {
                                peer,
                                cert_identity,
                            },
                        };
                        let _ = tx.send(Ok(conn)).await;
                        return;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "handshake timed out".to_string(),
                };
                // A plaintext client, no certificate, one from another CA, an
                // expired one: refused here, before any gRPC.
                tracing::warn!(%peer, reason = %refused, "TLS handshake refused");
                audit.record(Record::connection_refused(peer.ip(), &refused));
            });
        }
    });
    (ReceiverStream::new(rx), task)
}
