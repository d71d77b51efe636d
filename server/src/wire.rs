//! The two halves of a client socket as `opensrv-mysql` sees them, and what
//! the server adds between the socket and the protocol library:
//!
//! * [`WireReader`] reads commands. It ends the stream (EOF) once the
//!   connection's [`Closer`] fires — `KILL CONNECTION`, shutdown, handshake
//!   timeout — so `opensrv`'s command loop ends where it waits for the next
//!   command, after the reply to the current one has gone out. It also caps
//!   the bytes a client may send before the server answers
//!   (`max_packet_bytes`): a bigger command closes that connection only,
//!   at once when a packet header announces more than the limit (also
//!   before login, instead of waiting for the handshake timeout).
//! * [`WireWriter`] buffers replies until `opensrv` flushes them, and
//!   rewrites error packets: `opensrv-mysql` 0.7 sends only the codes of its
//!   own `ErrorKind` table (which stops at 1885, so 3024 statement timeout
//!   is missing, and panics on an unknown code) with that table's SQLSTATE,
//!   and it refuses a login with code 1698. The session queues the error it
//!   means ([`WireError`]) and has `opensrv` write a placeholder error packet
//!   ([`PLACEHOLDER_CODE`] or 1698); the writer swaps that packet for the
//!   queued one (code, SQLSTATE, message), keeping its sequence number.
//!   Everything else passes through unchanged.
//! * [`peer_closed`] watches the socket while a query runs (nothing reads
//!   it then): it resolves when the client has gone away.
//!
//! Invariants: the reader and writer share the socket through an `Arc`,
//! and tokio's `TcpStream` allows one reader and one writer at once. Only
//! the connection's own task polls them. The writer's buffer always starts
//! at a packet boundary, and only whole, scanned packets leave it.

use futures::task::AtomicWaker;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::tls::{SharedTcp, Transport, CLIENT_SSL};

/// The code of the placeholder error packet the session has `opensrv`
/// write (`ER_HASHCHK`, which no engine error uses).
pub const PLACEHOLDER_CODE: u16 = 1000;
/// The code `opensrv` writes when a login fails.
pub const OPENSRV_LOGIN_FAILED_CODE: u16 = 1698;

/// The writer starts sending once this much is buffered, without waiting
/// for a flush.
const HIGH_WATER: usize = 256 * 1024;

/// Closes a connection from outside: makes its [`WireReader`] report EOF.
#[derive(Debug, Default)]
pub struct Closer {
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Closer {
    /// Asks the connection to close after its current reply.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether [`Closer::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// An error reply to send in place of the next placeholder error packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// MySQL error code.
    pub code: u16,
    /// SQLSTATE, five characters.
    pub sqlstate: [u8; 5],
    /// Message.
    pub message: String,
}

impl WireError {
    /// An error; a SQLSTATE that is not five ASCII characters becomes `HY000`.
    pub fn new(code: u16, sqlstate: &str, message: impl Into<String>) -> Self {
        let sqlstate = <[u8; 5]>::try_from(sqlstate.as_bytes())
            .ok()
            .filter(|s| s.is_ascii())
            .unwrap_or(*b"HY000");
        WireError {
            code,
            sqlstate,
            message: message.into(),
        }
    }

    fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(9 + self.message.len());
        p.push(0xFF);
        p.extend_from_slice(&self.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(&self.sqlstate);
        p.extend_from_slice(self.message.as_bytes());
        // A payload must stay below 16 MiB to be one packet.
        p.truncate(0xFF_FFFE);
        p
    }
}

/// State shared by a connection's reader, writer and session.
#[derive(Debug, Default)]
pub struct WireShared {
    /// Closes the connection.
    pub closer: Closer,
    /// The error that replaces the next placeholder error packet.
    pending_error: Mutex<Option<WireError>>,
    /// Bytes read since the server last wrote.
    unanswered: AtomicUsize,
    /// The client logged in with a `caching_sha2_password` scramble: the
    /// writer puts the "fast auth success" packet (`0x01 0x03`) before the
    /// next packet (the OK), as that plugin's clients expect.
    fast_auth_ok: AtomicBool,
}

impl WireShared {
    /// Queues the error that the next placeholder packet becomes.
    pub fn queue_error(&self, e: WireError) {
        *self.pending_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// Has the writer send `caching_sha2_password`'s "fast auth success"
    /// before the next packet.
    pub fn queue_fast_auth_ok(&self) {
        self.fast_auth_ok.store(true, Ordering::Release);
    }

    fn take_error(&self) -> Option<WireError> {
        self.pending_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The command byte of `COM_RESET_CONNECTION`.
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// Follows the packet framing of what a client sends, to spot
/// `COM_RESET_CONNECTION`: `opensrv-mysql` 0.7 does not parse that command
/// and answers it with OK without telling the shim, so the reader acts on it
/// itself. A command is the first packet of a sequence (sequence id 0); the
/// handshake and auth packets have higher ids, and so do the continuation
/// packets of a long command, so a one-byte packet `0x1f` with id 0 is that
/// command and nothing else.
#[derive(Debug)]
struct Framing {
    header: [u8; 4],
    have: usize,
    remaining: usize,
    /// The payload starting now is a one-byte command.
    watch: bool,
    /// The largest payload a packet header may declare; a bigger one marks
    /// the stream `oversized` as soon as its header is read, so a client
    /// that announces more than it may send is closed at once instead of
    /// being waited for (before login, until the handshake timeout).
    max_payload: usize,
    oversized: bool,
}

impl Framing {
    fn new(max_payload: usize) -> Self {
        Framing {
            header: [0; 4],
            have: 0,
            remaining: 0,
            watch: false,
            max_payload,
            oversized: false,
        }
    }

    /// Feeds bytes read from the client; returns how many
    /// `COM_RESET_CONNECTION` commands they complete.
    fn feed(&mut self, mut bytes: &[u8]) -> usize {
        let mut resets = 0;
        while let Some(&first) = bytes.first() {
            if self.remaining == 0 {
                let take = (4 - self.have).min(bytes.len());
                self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have == 4 {
                    self.have = 0;
                    let [a, b, c, seq] = self.header;
                    self.remaining = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
                    self.watch = seq == 0 && self.remaining == 1;
                    self.oversized |= self.remaining > self.max_payload;
                }
            } else {
                if std::mem::take(&mut self.watch) && first == COM_RESET_CONNECTION {
                    resets += 1;
                }
                let take = self.remaining.min(bytes.len());
                self.remaining -= take;
                bytes = &bytes[take..];
            }
        }
        resets
    }
}

/// What the reader calls when the client sends `COM_RESET_CONNECTION`.
pub type OnReset = Box<dyn Fn() + Send + Sync>;

/// Where the reader is in the TLS upgrade (only when TLS is configured).
enum Upgrade {
    /// Plain or already encrypted: bytes go straight to `opensrv`.
    Off,
    /// Reading the client's first packet exactly (no byte past it: after an
    /// `SSLRequest` the client's TLS `ClientHello` follows at once).
    FirstPacket(Vec<u8>),
    /// The client asked for TLS: the handshake is running on the socket.
    Accepting(Box<tokio_rustls::Accept<SharedTcp>>),
    /// Reading the handshake response that follows the TLS handshake.
    SecondPacket(Vec<u8>),
    /// A packet read ahead, being handed to `opensrv`.
    Deliver(Vec<u8>, usize),
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Upgrade::Off => "Off",
            Upgrade::FirstPacket(_) => "FirstPacket",
            Upgrade::Accepting(_) => "Accepting",
            Upgrade::SecondPacket(_) => "SecondPacket",
            Upgrade::Deliver(..) => "Deliver",
        })
    }
}

/// The read half (see the module docs).
///
/// With TLS configured ([`WireReader::with_tls`]) it also runs the upgrade:
/// it reads the client's first packet exactly; an `SSLRequest` is not
/// handed on, the TLS handshake runs on the socket, and the handshake
/// response read through TLS next is handed to `opensrv` with its
/// `CLIENT_SSL` bit cleared (its sequence id, 2, stays: `opensrv` answers
/// with 3, as the protocol wants). A client that does not ask for TLS gets
/// its first packet handed on as it came.
pub struct WireReader {
    transport: Arc<Transport>,
    shared: Arc<WireShared>,
    max_unanswered: usize,
    framing: Framing,
    on_reset: Option<OnReset>,
    tls: Option<TlsAcceptor>,
    /// The authentication plugin the greeting announces.
    announced_plugin: &'static str,
    upgrade: Upgrade,
}

impl std::fmt::Debug for WireReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireReader")
            .field("max_unanswered", &self.max_unanswered)
            .field("framing", &self.framing)
            .field("upgrade", &self.upgrade)
            .finish()
    }
}

impl WireReader {
    /// Reads `transport`; a client may send at most `max_packet_bytes` (plus
    /// framing) before the server answers.
    pub fn new(
        transport: Arc<Transport>,
        shared: Arc<WireShared>,
        max_packet_bytes: usize,
    ) -> Self {
        WireReader {
            transport,
            shared,
            // Room for the packet headers of a command split into 16 MiB
            // packets, and for a command pipelined behind it.
            max_unanswered: max_packet_bytes + max_packet_bytes / 4096 + 64 * 1024,
            // A packet carries at most 2^24 - 1 bytes; a longer command is
            // split into full packets, each within this bound when
            // max_packet_bytes allows 16 MiB commands.
            framing: Framing::new(max_packet_bytes),
            on_reset: None,
            tls: None,
            announced_plugin: "",
            upgrade: Upgrade::Off,
        }
    }

    /// Reads the client's handshake response ahead of `opensrv` (see
    /// [`prepare_handshake_response`]); the greeting announces
    /// `announced_plugin`. With `tls`, accepts TLS when the client asks for
    /// it (the writer must advertise it: [`WireWriter::advertise_tls`]).
    pub fn with_handshake(
        mut self,
        announced_plugin: &'static str,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        self.tls = tls;
        self.announced_plugin = announced_plugin;
        self.upgrade = Upgrade::FirstPacket(Vec::with_capacity(64));
        self
    }

    /// Calls `f` when the client sends `COM_RESET_CONNECTION`, as soon as
    /// the command is read: the protocol is request/response, so no other
    /// command of this client is running then, and the engine's reset
    /// (rollback on a cleanup context, variables to defaults) is done
    /// before `opensrv` answers OK.
    pub fn on_reset(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.on_reset = Some(Box::new(f));
    }

    /// Reads one whole packet into `packet` without reading past it.
    /// `Ready(Ok(false))`: EOF first.
    fn poll_packet(
        transport: &Transport,
        max_payload: usize,
        cx: &mut Context<'_>,
        packet: &mut Vec<u8>,
    ) -> Poll<io::Result<bool>> {
        loop {
            let want = if packet.len() < 4 {
                4
            } else {
                let len = usize::from(packet[0])
                    | usize::from(packet[1]) << 8
                    | usize::from(packet[2]) << 16;
                if len > max_payload {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("client announced a packet over max_packet_bytes ({max_payload})"),
                    )));
                }
                4 + len
            };
            if packet.len() == want {
                return Poll::Ready(Ok(true));
            }
            let have = packet.len();
            packet.resize(want, 0);
            match transport.poll_read(cx, &mut packet[have..]) {
                Poll::Ready(Ok(0)) => {
                    packet.truncate(have);
                    return Poll::Ready(Ok(false));
                }
                Poll::Ready(Ok(n)) => packet.truncate(have + n),
                Poll::Ready(Err(e)) => {
                    packet.truncate(have);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    packet.truncate(have);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Runs the TLS upgrade's steps until bytes can be handed on
    /// (`Some(n)` copied into `out`) or reading goes on plain (`None`).
    fn poll_upgrade(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<Option<usize>>> {
        let max = self.framing.max_payload;
        loop {
            match &mut self.upgrade {
                Upgrade::Off => return Poll::Ready(Ok(None)),
                Upgrade::FirstPacket(p) => {
                    let whole = std::task::ready!(Self::poll_packet(&self.transport, max, cx, p))?;
                    let p = std::mem::take(p);
                    let asks_tls = whole
                        && p.len() >= 6
                        && u32::from(u16::from_le_bytes([p[4], p[5]])) & CLIENT_SSL != 0;
                    self.upgrade = match (&self.tls, asks_tls) {
                        (Some(acceptor), true) => Upgrade::Accepting(Box::new(
                            acceptor.accept(SharedTcp(self.transport.tcp().clone())),
                        )),
                        _ => {
                            let mut p = p;
                            prepare_handshake_response(&mut p, self.announced_plugin);
                            Upgrade::Deliver(p, 0)
                        }
                    };
                }
                Upgrade::Accepting(accept) => {
                    let tls = std::task::ready!(Pin::new(&mut **accept).poll(cx))?;
                    self.transport.upgrade(tls);
                    self.upgrade = Upgrade::SecondPacket(Vec::with_capacity(256));
                }
                Upgrade::SecondPacket(p) => {
                    std::task::ready!(Self::poll_packet(&self.transport, max, cx, p))?;
                    let mut p = std::mem::take(p);
                    // opensrv is built without TLS: to it this is a plain
                    // handshake response.
                    if p.len() >= 6 {
                        p[5] &= !((CLIENT_SSL >> 8) as u8);
                    }
                    prepare_handshake_response(&mut p, self.announced_plugin);
                    self.upgrade = Upgrade::Deliver(p, 0);
                }
                Upgrade::Deliver(p, at) => {
                    let n = (p.len() - *at).min(out.len());
                    out[..n].copy_from_slice(&p[*at..*at + n]);
                    *at += n;
                    if *at == p.len() {
                        self.upgrade = Upgrade::Off;
                    }
                    return Poll::Ready(Ok(Some(n)));
                }
            }
        }
    }
}

use std::future::Future;

/// Capability bits of a handshake response that decide its layout.
const CLIENT_CONNECT_WITH_DB: u32 = 0x0008;
const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;

/// Where the auth plugin name sits in a `HandshakeResponse41` packet
/// (header included), and whether the client's auth answer is empty.
fn plugin_field(p: &[u8]) -> Option<(std::ops::Range<usize>, bool)> {
    let body = p.get(4..)?;
    let caps = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
    if caps & CLIENT_PROTOCOL_41 == 0 || caps & CLIENT_PLUGIN_AUTH == 0 {
        return None;
    }
    let mut at = 32; // capabilities, max packet, charset, 23 filler bytes
    at += body.get(at..)?.iter().position(|&b| b == 0)? + 1; // user
    let answer_len = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        let first = *body.get(at)?;
        let (len, size) = match first {
            0..=0xfa => (u64::from(first), 1),
            0xfc => (
                u64::from(u16::from_le_bytes(
                    body.get(at + 1..at + 3)?.try_into().ok()?,
                )),
                3,
            ),
            0xfd => {
                let b = body.get(at + 1..at + 4)?;
                (
                    u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16,
                    4,
                )
            }
            0xfe => (
                u64::from_le_bytes(body.get(at + 1..at + 9)?.try_into().ok()?),
                9,
            ),
            _ => return None,
        };
        at += size;
        usize::try_from(len).ok()?
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        at += 1;
        usize::from(*body.get(at - 1)?)
    } else {
        return None;
    };
    at = at.checked_add(answer_len)?;
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        at += body.get(at..)?.iter().position(|&b| b == 0)? + 1;
    }
    let len = body.get(at..)?.iter().position(|&b| b == 0)?;
    Some((4 + at..4 + at + len, answer_len == 0))
}

/// Makes `opensrv` answer a client that expects an auth switch with one.
///
/// A client whose own default plugin differs from the one the greeting
/// announced (`mariadb --default-auth=…`, libmysqlclient) sends an empty
/// answer naming its plugin and waits for the server's `AuthSwitchRequest`.
/// `opensrv-mysql` 0.7 switches only when that name differs from the plugin
/// it wants for the user, so when the two happen to be the same it checks
/// the empty answer as a password and refuses. Renaming the plugin in the
/// response (same length, so the packet keeps its size) makes the switch
/// happen always: the client then answers with the right scramble.
pub fn prepare_handshake_response(p: &mut [u8], announced_plugin: &str) {
    let Some((name, empty)) = plugin_field(p) else {
        return;
    };
    if empty && !name.is_empty() && p[name.clone()] != *announced_plugin.as_bytes() {
        p[name.start] = b'!';
    }
}

impl AsyncRead for WireReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.closer.waker.register(cx.waker());
        if this.shared.closer.is_closed() {
            return Poll::Ready(Ok(())); // EOF: opensrv's loop ends cleanly.
        }
        let unfilled = buf.initialize_unfilled();
        let n = match std::task::ready!(this.poll_upgrade(cx, unfilled))? {
            Some(n) => n,
            None => std::task::ready!(this.transport.poll_read(cx, unfilled))?,
        };
        if this.framing.feed(&unfilled[..n]) > 0 {
            if let Some(f) = &this.on_reset {
                f();
            }
        }
        if this.framing.oversized {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "client announced a packet over max_packet_bytes ({})",
                    this.framing.max_payload
                ),
            )));
        }
        buf.advance(n);
        let total = this.shared.unanswered.fetch_add(n, Ordering::Relaxed) + n;
        if total > this.max_unanswered {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "client sent more than {} bytes without a reply",
                    this.max_unanswered
                ),
            )));
        }
        Poll::Ready(Ok(()))
    }
}

/// The write half (see the module docs).
#[derive(Debug)]
pub struct WireWriter {
    transport: Arc<Transport>,
    shared: Arc<WireShared>,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already scanned (whole packets).
    scanned: usize,
    /// Bytes at the front of `buf` already sent.
    sent: usize,
    /// The last scanned packet was a full 16 MiB one, so the next packet
    /// continues it and is not a reply of its own.
    continues: bool,
    /// Set `CLIENT_SSL` in the greeting (the first packet).
    advertise_tls: bool,
    /// The greeting has been scanned.
    greeted: bool,
}

impl WireWriter {
    /// Writes to `transport`.
    pub fn new(transport: Arc<Transport>, shared: Arc<WireShared>) -> Self {
        WireWriter {
            transport,
            shared,
            buf: Vec::new(),
            scanned: 0,
            sent: 0,
            continues: false,
            advertise_tls: false,
            greeted: false,
        }
    }

    /// Advertises TLS (`CLIENT_SSL`) in the server's greeting; the reader
    /// must then accept it ([`WireReader::with_tls`]).
    pub fn advertise_tls(mut self) -> Self {
        self.advertise_tls = true;
        self
    }

    /// Walks the whole packets after `scanned`, swapping placeholder error
    /// packets for the queued error.
    fn scan(&mut self) {
        while self.buf.len() - self.scanned >= 4 {
            let h = &self.buf[self.scanned..self.scanned + 4];
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            let seq = h[3];
            let start = self.scanned + 4;
            if self.buf.len() < start + len {
                return;
            }
            if !std::mem::replace(&mut self.greeted, true) && self.advertise_tls {
                // HandshakeV10: protocol byte, NUL-terminated version,
                // connection id (4), scramble part 1 (8), filler (1), then
                // the low two capability bytes.
                let payload = &self.buf[start..start + len];
                if let Some(nul) = payload.iter().skip(1).position(|&b| b == 0) {
                    let caps = 1 + nul + 1 + 4 + 8 + 1;
                    if payload.first() == Some(&10) && caps + 1 < len {
                        self.buf[start + caps + 1] |= (CLIENT_SSL >> 8) as u8;
                    }
                }
            }
            if !self.continues && self.shared.fast_auth_ok.swap(false, Ordering::AcqRel) {
                // caching_sha2_password's "fast auth success" goes first,
                // with this packet's sequence id; this packet follows it.
                self.buf[self.scanned + 3] = seq.wrapping_add(1);
                self.buf
                    .splice(self.scanned..self.scanned, [2, 0, 0, seq, 0x01, 0x03]);
                self.scanned += 6;
                continue;
            }
            let payload = &self.buf[start..start + len];
            let is_placeholder = !self.continues
                && len >= 3
                && payload[0] == 0xFF
                && matches!(
                    u16::from_le_bytes([payload[1], payload[2]]),
                    PLACEHOLDER_CODE | OPENSRV_LOGIN_FAILED_CODE
                );
            self.continues = len == 0xFF_FFFF;
            if is_placeholder {
                if let Some(err) = self.shared.take_error() {
                    let new = err.payload();
                    let n = new.len();
                    let mut packet = Vec::with_capacity(4 + n);
                    packet.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
                    packet.extend_from_slice(&new);
                    self.buf.splice(self.scanned..start + len, packet);
                    self.scanned += 4 + n;
                    continue;
                }
            }
            self.scanned = start + len;
        }
    }

    /// Sends the scanned bytes.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.scanned {
            match std::task::ready!(self
                .transport
                .poll_write(cx, &self.buf[self.sent..self.scanned]))
            {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        std::task::ready!(self.transport.poll_flush(cx))?;
        self.buf.drain(..self.sent);
        self.scanned -= self.sent;
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WireWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() >= HIGH_WATER {
            this.scan();
            std::task::ready!(this.poll_send(cx))?;
        }
        this.buf.extend_from_slice(data);
        this.shared.unanswered.store(0, Ordering::Relaxed);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.scan();
        this.poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Resolves when the client has closed the connection or it broke. If the
/// client sends more data instead (a pipelined command), it never resolves:
/// that data is the next command's, and whether the peer left is then seen
/// when it is read.
pub async fn peer_closed(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => futures::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (Arc<TcpStream>, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), l.accept());
        (Arc::new(server.unwrap().0), client.unwrap())
    }

    #[test]
    fn framing_spots_com_reset_connection_only_as_a_command() {
        let mut f = Framing::new(1 << 20);
        let reset = packet(0, &[COM_RESET_CONNECTION]);
        assert_eq!(f.feed(&reset), 1);
        // Split across reads, byte by byte.
        let mut n = 0;
        for b in &reset {
            n += f.feed(std::slice::from_ref(b));
        }
        assert_eq!(n, 1);
        // Not a command: a handshake/auth packet (id 1), a longer payload
        // starting with 0x1f, a query whose text is that byte, an empty
        // packet before a real reset.
        assert_eq!(f.feed(&packet(1, &[COM_RESET_CONNECTION])), 0);
        assert_eq!(f.feed(&packet(0, &[COM_RESET_CONNECTION, 0])), 0);
        assert_eq!(f.feed(&packet(0, &[0x03, COM_RESET_CONNECTION])), 0);
        let mut stream = packet(0, &[]);
        stream.extend(packet(0, b"\x03SELECT 1"));
        stream.extend(&reset);
        assert_eq!(f.feed(&stream), 1);
        assert!(!f.oversized);
    }

    #[test]
    fn framing_flags_a_header_that_announces_more_than_the_limit() {
        // A handshake response announcing 16 MiB under a 1 MiB limit is
        // flagged from its header alone (found as a 5 s wait for the
        // handshake timeout in test_protocol's bad_sequence case).
        let mut f = Framing::new(1 << 20);
        assert_eq!(f.feed(&[0xff, 0xff, 0xff, 0x01]), 0);
        assert!(f.oversized);
        // At the limit is fine, split across reads too.
        let mut f = Framing::new(1 << 20);
        let n = 1usize << 20;
        f.feed(&[n as u8, (n >> 8) as u8]);
        f.feed(&[(n >> 16) as u8, 0]);
        assert!(!f.oversized);
    }

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn placeholder_errors_are_rewritten_and_the_rest_passes() {
        let (server, mut client) = pair().await;
        let shared = Arc::new(WireShared::default());
        let mut w = WireWriter::new(Arc::new(Transport::new(server)), shared.clone());
        shared.queue_error(WireError::new(3024, "HY000", "timeout"));
        let mut placeholder = vec![0xFF];
        placeholder.extend_from_slice(&PLACEHOLDER_CODE.to_le_bytes());
        placeholder.extend_from_slice(b"#HY000whatever");
        let ok = packet(1, &[0, 0, 0, 2, 0, 0, 0]);
        // Header and payload arrive in separate writes, as opensrv may send them.
        let ph = packet(3, &placeholder);
        w.write_all(&ok).await.unwrap();
        w.write_all(&ph[..4]).await.unwrap();
        w.write_all(&ph[4..]).await.unwrap();
        // A second placeholder with nothing queued stays as it is.
        w.write_all(&ph).await.unwrap();
        w.flush().await.unwrap();
        let mut expect = ok.clone();
        expect.extend(packet(3, b"\xFF\xD0\x0B#HY000timeout"));
        expect.extend(&ph);
        let mut got = vec![0; expect.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expect);
    }

    #[tokio::test]
    async fn reader_ends_when_closed_and_caps_unanswered_bytes() {
        let (server, mut client) = pair().await;
        let shared = Arc::new(WireShared::default());
        let mut r = WireReader::new(
            Arc::new(Transport::new(server.clone())),
            shared.clone(),
            1024,
        );
        client.write_all(&packet(0, b"\x03hi")).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).await.unwrap(), 7);
        let closer = shared.clone();
        let reading = tokio::spawn(async move { r.read(&mut [0u8; 16]).await.unwrap() });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        closer.closer.close();
        assert_eq!(reading.await.unwrap(), 0, "a closed connection reads EOF");

        let shared = Arc::new(WireShared::default());
        let mut r = WireReader::new(Arc::new(Transport::new(server)), shared, 1024);
        // Well-formed packets, each within the limit: the cap on what a
        // client may send without a reply ends it.
        let stream: Vec<u8> = (0..200).flat_map(|_| packet(0, &[7u8; 1000])).collect();
        client.write_all(&stream).await.unwrap();
        let mut sink = vec![0u8; 300_000];
        let mut err = None;
        for _ in 0..1000 {
            match r.read(&mut sink).await {
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn the_writer_advertises_tls_and_puts_fast_auth_success_before_the_ok() {
        let (server, mut client) = pair().await;
        let shared = Arc::new(WireShared::default());
        let mut w =
            WireWriter::new(Arc::new(Transport::new(server)), shared.clone()).advertise_tls();
        // A greeting: protocol 10, version, id, scramble part 1, filler,
        // capabilities (low bytes 0xff 0xf7: CLIENT_SSL clear), the rest.
        let mut greeting = vec![10];
        greeting.extend(b"8.0.36\0");
        greeting.extend([1, 0, 0, 0]);
        greeting.extend([b'a'; 8]);
        greeting.push(0);
        greeting.extend([0xff, 0xf7]);
        greeting.extend([33, 2, 0, 0xff, 0x81]);
        let g = packet(0, &greeting);
        w.write_all(&g).await.unwrap();
        // opensrv flushes the greeting and reads the client's answer before
        // the login check queues "fast auth success".
        w.flush().await.unwrap();
        shared.queue_fast_auth_ok();
        let ok = packet(4, &[0, 0, 0, 2, 0, 0, 0]);
        w.write_all(&ok).await.unwrap();
        // Only once: the next packet passes as it is.
        let next = packet(1, &[0, 0, 0, 2, 0, 0, 0]);
        w.write_all(&next).await.unwrap();
        w.flush().await.unwrap();
        let mut expect = g.clone();
        // The second capability byte (index 22) gains CLIENT_SSL (0x0800).
        expect[4 + 22] = 0xf7 | 0x08;
        expect.extend(packet(4, &[0x01, 0x03]));
        expect.extend(packet(5, &[0, 0, 0, 2, 0, 0, 0]));
        expect.extend(&next);
        let mut got = vec![0; expect.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expect);
    }

    /// A `HandshakeResponse41` as clients send it.
    fn handshake_response(answer: &[u8], db: Option<&str>, plugin: &str) -> Vec<u8> {
        let mut caps = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
        if db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        let mut b = caps.to_le_bytes().to_vec();
        b.extend([0, 0, 0, 1, 33]);
        b.extend([0; 23]);
        b.extend(b"acme:alice\0");
        b.push(answer.len() as u8);
        b.extend(answer);
        if let Some(db) = db {
            b.extend(db.as_bytes());
            b.push(0);
        }
        b.extend(plugin.as_bytes());
        b.push(0);
        b.extend([3, 1, b'a', 0]); // connection attributes follow
        packet(1, &b)
    }

    #[test]
    fn an_empty_answer_naming_another_plugin_always_gets_an_auth_switch() {
        let announced = "caching_sha2_password";
        // Empty answer for mysql_native_password: renamed, same length.
        for db in [None, Some("shop")] {
            let mut p = handshake_response(&[], db, "mysql_native_password");
            let before = p.len();
            prepare_handshake_response(&mut p, announced);
            assert_eq!(p.len(), before);
            let (name, empty) = plugin_field(&p).unwrap();
            assert!(empty);
            assert_eq!(&p[name], b"!ysql_native_password");
        }
        // A real answer, or an empty one for the announced plugin: untouched.
        for (answer, plugin) in [
            (&[7u8; 20][..], "mysql_native_password"),
            (&[][..], announced),
        ] {
            let p0 = handshake_response(answer, None, plugin);
            let mut p = p0.clone();
            prepare_handshake_response(&mut p, announced);
            assert_eq!(p, p0);
        }
        // Packets cut before the plugin name's end are left alone, never a
        // panic; the attributes after it do not matter.
        let full = handshake_response(&[], Some("db"), "mysql_native_password");
        let name_end = plugin_field(&full).unwrap().0.end;
        for cut in 0..full.len() {
            let mut p = full[..cut].to_vec();
            prepare_handshake_response(&mut p, announced);
            assert_eq!(p.len(), cut);
            assert_eq!(p == full[..cut], cut <= name_end, "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn peer_closed_sees_a_client_leave() {
        let (server, client) = pair().await;
        drop(client);
        tokio::time::timeout(std::time::Duration::from_secs(5), peer_closed(&server))
            .await
            .unwrap();
    }
}
