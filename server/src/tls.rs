//! TLS for the wire: the server's certificate and key (PEM files named in
//! the TOML), and the socket as the reader and writer share it, plain or,
//! after the client's `SSLRequest`, encrypted.
//!
//! MySQL's TLS starts inside the protocol: the server's greeting advertises
//! `CLIENT_SSL`, the client answers with a short `SSLRequest` packet (the
//! first 32 bytes of a handshake response, `CLIENT_SSL` set), then both run a
//! TLS handshake on the same socket and the client sends its real handshake
//! response (sequence id 2) encrypted. `opensrv-mysql`'s own TLS support
//! wraps its writer in the TLS stream, which would put [`crate::wire`]'s
//! packet rewriting under the encryption; so the server does TLS itself,
//! below the reader and writer (see [`crate::wire::WireReader`]): `opensrv`
//! (built without its `tls` feature) sees plain packets either way.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;

/// The `CLIENT_SSL` capability bit.
pub const CLIENT_SSL: u32 = 0x0800;

/// Reads a PEM certificate chain and private key and builds the TLS
/// configuration; errors name the file at fault.
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            ConfigError::Invalid(format!(
                "tls_cert {}: not a PEM certificate: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "tls_cert {}: no PEM certificate in the file",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        ConfigError::Invalid(format!(
            "tls_key {}: no PEM private key in the file: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            ConfigError::Invalid(format!(
                "tls_cert {} / tls_key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    Ok(Arc::new(config))
}

/// The client socket shared by the connection's reader, writer and session
/// (tokio's `TcpStream` allows one reader and one writer at once through a
/// shared reference); the TLS handshake runs on it.
#[derive(Debug, Clone)]
pub struct SharedTcp(pub Arc<TcpStream>);

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The socket as the reader and writer use it: plain until the TLS
/// handshake has finished, then through the TLS session.
#[derive(Debug)]
pub struct Transport {
    tcp: Arc<TcpStream>,
    tls: Mutex<Option<Box<TlsStream<SharedTcp>>>>,
}

impl Transport {
    /// A plain transport over `tcp`.
    pub fn new(tcp: Arc<TcpStream>) -> Self {
        Transport {
            tcp,
            tls: Mutex::new(None),
        }
    }

    /// The raw socket.
    pub fn tcp(&self) -> &Arc<TcpStream> {
        &self.tcp
    }

    fn lock(&self) -> MutexGuard<'_, Option<Box<TlsStream<SharedTcp>>>> {
        self.tls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, reads and writes go through `tls`.
    pub fn upgrade(&self, tls: TlsStream<SharedTcp>) {
        *self.lock() = Some(Box::new(tls));
    }

    /// Whether the TLS handshake has finished.
    pub fn is_secure(&self) -> bool {
        self.lock().is_some()
    }

    /// The negotiated cipher suite's name, once secure.
    pub fn cipher(&self) -> Option<String> {
        let guard = self.lock();
        let tls = guard.as_ref()?;
        let suite = tls.get_ref().1.negotiated_cipher_suite()?;
        Some(format!("{:?}", suite.suite()))
    }

    /// Reads into `out`; `Ok(0)` is EOF.
    pub fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if let Some(tls) = self.lock().as_mut() {
            let mut rb = ReadBuf::new(out);
            std::task::ready!(Pin::new(&mut **tls).poll_read(cx, &mut rb))?;
            return Poll::Ready(Ok(rb.filled().len()));
        }
        loop {
            std::task::ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(out) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes some of `data` (and, through TLS, pushes the records out).
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(tls) = self.lock().as_mut() {
            return Pin::new(&mut **tls).poll_write(cx, data);
        }
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Sends whatever TLS records are still buffered.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(tls) = self.lock().as_mut() {
            return Pin::new(&mut **tls).poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_errors_naming_the_file() {
        let e = load_server_config(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::Read { path, .. } if path == "/nonexistent/cert.pem"),
            "{e}"
        );
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    }

    #[test]
    fn files_that_are_not_pem_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("cascade-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = load_server_config(&junk, &junk).unwrap_err();
        assert!(e.to_string().contains("tls_cert"), "{e}");
        assert!(e.to_string().contains("junk.pem"), "{e}");
        let missing_key = dir.join("missing-key.pem");
        let e = load_server_config(&junk, &missing_key).unwrap_err();
        assert!(e.to_string().contains("missing-key.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
