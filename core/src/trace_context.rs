//! W3C Trace Context: trace ids, span ids and the `traceparent` /
//! `tracestate` headers (<https://www.w3.org/TR/trace-context/>).
//!
//! Every context's span (and every operator's) has a [`SpanContext`]: the
//! 16-byte [`TraceId`] it shares with its trace and its own 8-byte
//! [`TraceSpanId`]. A child inherits its parent's trace id; a context
//! without a traced parent starts a new trace, unless it is given a remote
//! parent ([`TraceParent`], from a `traceparent` header, a sqlcommenter
//! comment or another node), whose trace it joins. These are the ids the
//! recorder keeps, the `tracing` spans carry (fields `trace_id`, `span_id`,
//! `parent_span_id`), and an OpenTelemetry exporter should export, so that a
//! span id sent to another node names a span that exists.
//!
//! Ids are random: a splitmix64 sequence seeded once per process from the
//! standard library's per-process random hash keys, the host's clocks and
//! [`add_entropy`] (the web crate feeds it `Math.random()`, since wasm32 has
//! no OS randomness without extra crates). No allocation, no lock: one
//! atomic add per id.
//!
//! Parsing is strict and never panics: a malformed `traceparent` is a
//! [`TraceParentError`], which callers turn into a warning and ignore (a bad
//! header never fails a statement).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::host::Host;

/// A W3C trace id: 16 bytes, never all zero. Displays as 32 lower-case hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A W3C span id (the `parent-id` of a `traceparent`): 8 bytes, never zero.
/// Displays as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceSpanId(pub NonZeroU64);

impl TraceId {
    /// A fresh random trace id.
    pub fn random(host: &dyn Host) -> TraceId {
        let hi = next_random(host);
        let lo = next_random(host).max(1);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        TraceId(b)
    }
    /// The id as one number (big-endian bytes).
    pub fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl TraceSpanId {
    /// A fresh random span id.
    pub fn random(host: &dyn Host) -> TraceSpanId {
        TraceSpanId(nonzero(next_random(host)))
    }
    /// The id's 8 bytes, big-endian (as on the wire).
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }
}

fn nonzero(x: u64) -> NonZeroU64 {
    NonZeroU64::new(x).unwrap_or(NonZeroU64::MIN)
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.to_u128())
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for TraceSpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0.get())
    }
}
impl fmt::Debug for TraceSpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceSpanId({self})")
    }
}

impl serde::Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl serde::Serialize for TraceSpanId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The `sampled` bit of the trace flags.
pub const FLAG_SAMPLED: u8 = 0x01;

/// The W3C ids of one span, and what its trace carries from outside
/// (flags, `tracestate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: TraceSpanId,
    /// Trace flags (`01` = sampled; local traces are sampled).
    pub flags: u8,
    /// The caller's `tracestate`, carried opaque to every child and
    /// every outgoing call.
    pub tracestate: Option<Arc<str>>,
}

impl SpanContext {
    /// The first span of a new local trace.
    pub fn new_root(host: &dyn Host) -> SpanContext {
        SpanContext {
            trace_id: TraceId::random(host),
            span_id: TraceSpanId::random(host),
            flags: FLAG_SAMPLED,
            tracestate: None,
        }
    }
    /// A span whose parent is `parent`, in another process: same trace,
    /// flags and tracestate, a new span id.
    pub fn child_of_remote(parent: &TraceParent, host: &dyn Host) -> SpanContext {
        SpanContext {
            trace_id: parent.trace_id,
            span_id: TraceSpanId::random(host),
            flags: parent.flags,
            tracestate: parent.tracestate.as_deref().map(Arc::from),
        }
    }
    /// A child span of this one: same trace, a new span id.
    pub fn child(&self, host: &dyn Host) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: TraceSpanId::random(host),
            flags: self.flags,
            tracestate: self.tracestate.clone(),
        }
    }
    /// The `traceparent` (and `tracestate`) to send with a call made on
    /// behalf of this span: the callee's spans become its children.
    pub fn to_traceparent(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: self.span_id,
            flags: self.flags,
            tracestate: self.tracestate.as_deref().map(str::to_owned),
        }
    }
}

/// A parsed `traceparent` header (version `00`), with the `tracestate`
/// that came with it (opaque: checked for length only, passed on as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The caller's trace.
    pub trace_id: TraceId,
    /// The caller's span: the parent of the span that receives it.
    pub parent_id: TraceSpanId,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
    /// The `tracestate` header, if any.
    pub tracestate: Option<String>,
}

/// Why a `traceparent` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` with 2, 32, 16 and 2 hex digits.
    #[error("malformed traceparent {0:?}: expected 00-<32 hex>-<16 hex>-<2 hex>")]
    Malformed(String),
    /// Version `ff` (forbidden) or a version `00` header with extra parts.
    #[error("unsupported traceparent version in {0:?}")]
    Version(String),
    /// An all-zero trace id or parent id (invalid by the spec).
    #[error("traceparent {0:?} has an all-zero trace id or parent id")]
    ZeroId(String),
    /// A `tracestate` over the spec's 512 characters (only its length is
    /// checked; the rest is opaque).
    #[error("tracestate is longer than 512 characters")]
    TraceStateTooLong,
}

/// The longest `tracestate` kept (the spec: 32 members of up to 256 + 1
/// characters, but propagators may cut at 512).
pub const MAX_TRACESTATE: usize = 512;

fn hex_u64(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex_u8(s: &str) -> Option<u8> {
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

impl TraceParent {
    /// Parses a `traceparent` header value. Upper-case hex, a wrong
    /// length, a missing part, version `ff` or all-zero ids are errors.
    /// A future version (not `00`, not `ff`) is read by its first four
    /// parts, as the spec asks.
    ///
    /// ```
    /// use cascade::trace_context::TraceParent;
    /// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// assert!(TraceParent::parse("00-xyz").is_err());
    /// ```
    pub fn parse(header: &str) -> Result<TraceParent, TraceParentError> {
        let h = header.trim_matches([' ', '\t']);
        let bad = || TraceParentError::Malformed(shorten(header));
        if h.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let mut parts = h.split('-');
        let (Some(ver), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let version = hex_u8(ver).ok_or_else(bad)?;
        let rest = parts.next();
        if version == 0xff || (version == 0 && rest.is_some()) {
            return Err(TraceParentError::Version(shorten(header)));
        }
        if trace.len() != 32 {
            return Err(bad());
        }
        let (Some(hi), Some(lo)) = (hex_u64(&trace[..16]), hex_u64(&trace[16..])) else {
            return Err(bad());
        };
        let parent = hex_u64(parent).ok_or_else(bad)?;
        let flags = hex_u8(flags).ok_or_else(bad)?;
        let Some(parent) = NonZeroU64::new(parent) else {
            return Err(TraceParentError::ZeroId(shorten(header)));
        };
        if hi == 0 && lo == 0 {
            return Err(TraceParentError::ZeroId(shorten(header)));
        }
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        Ok(TraceParent {
            trace_id: TraceId(b),
            parent_id: TraceSpanId(parent),
            flags,
            tracestate: None,
        })
    }

    /// Attaches a `tracestate` header value (kept opaque; an empty one is
    /// none).
    pub fn with_tracestate(mut self, tracestate: &str) -> Result<TraceParent, TraceParentError> {
        let t = tracestate.trim();
        if t.len() > MAX_TRACESTATE {
            return Err(TraceParentError::TraceStateTooLong);
        }
        self.tracestate = (!t.is_empty()).then(|| t.to_owned());
        Ok(self)
    }

    /// Whether the caller sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

fn shorten(s: &str) -> String {
    let mut end = s.len().min(80);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl fmt::Display for TraceParent {
    /// The header value: `00-<trace id>-<parent id>-<flags>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

static STATE: AtomicU64 = AtomicU64::new(0);
static SEED: OnceLock<()> = OnceLock::new();
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mixes `bits` into the id generator's state (the web crate passes
/// `Math.random()` bits; natively the seed is random already).
pub fn add_entropy(bits: u64) {
    STATE.fetch_add(mix(bits) | 1, Ordering::Relaxed);
}

/// The next number of the process's splitmix64 sequence, seeded on first
/// use.
fn next_random(host: &dyn Host) -> u64 {
    SEED.get_or_init(|| {
        // `RandomState` holds per-process random keys natively (fixed ones
        // on wasm32-unknown-unknown, where the clocks and `add_entropy` do
        // the work).
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(host.now().0);
        h.write_i64(host.unix_micros());
        let local = 0u8;
        h.write_usize(std::ptr::addr_of!(local) as usize);
        add_entropy(h.finish());
    });
    mix(STATE
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ManualHost;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), GOOD);
        let not_sampled = TraceParent::parse(&GOOD.replace("-01", "-00")).unwrap();
        assert!(!not_sampled.sampled());
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "\u{e9}\u{e9}-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                matches!(TraceParent::parse(bad), Err(TraceParentError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            TraceParent::parse(&GOOD.replacen("00", "ff", 1)),
            Err(TraceParentError::Version(_))
        ));
        assert!(matches!(
            TraceParent::parse(&format!("{GOOD}-extra")),
            Err(TraceParentError::Version(_))
        ));
        assert!(matches!(
            TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Err(TraceParentError::ZeroId(_))
        ));
        assert!(matches!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Err(TraceParentError::ZeroId(_))
        ));
        // A future version is read by its first four parts.
        let v1 = TraceParent::parse(&format!("{}-later", GOOD.replacen("00", "01", 1))).unwrap();
        assert_eq!(v1.trace_id, TraceParent::parse(GOOD).unwrap().trace_id);
    }

    #[test]
    fn tracestate_is_carried_opaque_to_children() {
        let host = ManualHost::new();
        let tp = TraceParent::parse(GOOD)
            .unwrap()
            .with_tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
            .unwrap();
        let cx = SpanContext::child_of_remote(&tp, &host);
        let grandchild = cx.child(&host);
        assert_eq!(grandchild.trace_id, tp.trace_id);
        assert_ne!(grandchild.span_id, cx.span_id);
        let out = grandchild.to_traceparent();
        assert_eq!(out.parent_id, grandchild.span_id);
        assert_eq!(
            out.tracestate.as_deref(),
            Some("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        );
        assert_eq!(
            TraceParent::parse(GOOD)
                .unwrap()
                .with_tracestate(&"x".repeat(513)),
            Err(TraceParentError::TraceStateTooLong)
        );
    }

    #[test]
    fn random_ids_are_distinct_and_valid() {
        let host = ManualHost::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = TraceId::random(&host);
            assert_ne!(t.to_u128(), 0);
            assert!(seen.insert(t.to_u128()));
            let formatted = SpanContext {
                trace_id: t,
                span_id: TraceSpanId::random(&host),
                flags: FLAG_SAMPLED,
                tracestate: None,
            }
            .to_traceparent()
            .to_string();
            assert_eq!(
                TraceParent::parse(&formatted).unwrap().trace_id,
                t,
                "{formatted}"
            );
        }
    }
}
