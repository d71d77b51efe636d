//! The wire forms: core's `WireContext` / `WireCause` as protobuf, the
//! `grpc-timeout` header, and `QueryError` as the `cascade-error-bin`
//! metadata entry of a status.

use std::sync::Arc;
use std::time::Duration;

use cascade::remote::{
    level_from_wire, level_to_wire, ReasonParts, RemoteError, WireCause, WireContext,
};
use cascade::{CancelKind, Cause, ErrorKind, Identity, QueryError};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::pb;

/// The metadata entry that carries the caller's context.
pub const CONTEXT_HEADER: &str = "cascade-context-bin";
/// The metadata entry that carries a failure.
pub const ERROR_HEADER: &str = "cascade-error-bin";
/// The metadata entry that authenticates the calling node to
/// [`StaticPeers`](crate::StaticPeers).
pub const PEER_TOKEN_HEADER: &str = "cascade-peer-token";
/// W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// W3C trace state.
pub const TRACESTATE_HEADER: &str = "tracestate";

/// `d` as a gRPC `TimeoutValue` (at most 8 digits and a unit), rounded up
/// to the finest unit that fits: a budget is never shortened by the
/// encoding.
pub fn encode_grpc_timeout(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let v = nanos.div_ceil(per);
        if v <= MAX {
            return format!("{v}{unit}");
        }
    }
    format!("{MAX}H")
}

/// Parses a gRPC `TimeoutValue`; `None` when malformed.
pub fn decode_grpc_timeout(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(match unit {
        'n' => Duration::from_nanos(v),
        'u' => Duration::from_micros(v),
        'm' => Duration::from_millis(v),
        'S' => Duration::from_secs(v),
        'M' => Duration::from_secs(v * 60),
        'H' => Duration::from_secs(v * 3600),
        _ => return None,
    })
}

fn kind_to_wire(k: CancelKind) -> u32 {
    match k {
        CancelKind::Canceled => 0,
        CancelKind::DeadlineExceeded => 1,
    }
}

fn kind_from_wire(n: u32) -> Result<CancelKind, RemoteError> {
    match n {
        0 => Ok(CancelKind::Canceled),
        1 => Ok(CancelKind::DeadlineExceeded),
        _ => Err(RemoteError::Malformed(format!("cancel kind {n}"))),
    }
}

pub(crate) fn cause_to_pb(c: &WireCause) -> pb::WireCause {
    let parts = ReasonParts::of(&c.reason);
    pb::WireCause {
        kind: kind_to_wire(c.kind),
        reason: parts.tag,
        a: parts.a,
        b: parts.b,
        text: parts.text,
        level: level_to_wire(c.level),
        origin_node: c.origin_node,
    }
}

pub(crate) fn cause_from_pb(c: pb::WireCause) -> Result<WireCause, RemoteError> {
    Ok(WireCause {
        kind: kind_from_wire(c.kind)?,
        reason: ReasonParts {
            tag: c.reason,
            a: c.a,
            b: c.b,
            text: c.text,
        }
        .into_reason()?,
        level: level_from_wire(c.level)?,
        origin_node: c.origin_node,
    })
}

/// The `cascade-context-bin` bytes of `w` with `call_id`.
pub(crate) fn context_to_bytes(w: &WireContext, call_id: u64) -> Vec<u8> {
    let id = w.identity.as_ref();
    pb::WireContext {
        origin_node: w.origin_node,
        level: w.level.map_or(u32::MAX, level_to_wire),
        tenant: id.map(|i| i.tenant.to_string()),
        user: id.map(|i| i.user.to_string()).unwrap_or_default(),
        role: id.map(|i| i.role.to_string()).unwrap_or_default(),
        connection_id: w.connection_id,
        session_id: w.session_id,
        txn_id: w.txn_id,
        statement_id: w.statement_id,
        deadline_cause: w.deadline_cause.as_ref().map(cause_to_pb),
        call_id,
        budget_ns: w
            .budget
            .map(|b| u64::try_from(b.as_nanos()).unwrap_or(u64::MAX)),
    }
    .encode_to_vec()
}

/// The context and call id of `cascade-context-bin` bytes, with the
/// budget if the caller sent it there (else it comes from `grpc-timeout`);
/// trace ids come from their own headers.
pub(crate) fn context_from_bytes(b: &[u8]) -> Result<(WireContext, u64), RemoteError> {
    let m = pb::WireContext::decode(b).map_err(|e| RemoteError::Malformed(e.to_string()))?;
    let identity = m
        .tenant
        .as_deref()
        .map(|t| Identity::new(t, &m.user, &m.role));
    Ok((
        WireContext {
            origin_node: m.origin_node,
            level: Some(level_from_wire(m.level)?),
            identity,
            connection_id: m.connection_id,
            session_id: m.session_id,
            txn_id: m.txn_id,
            statement_id: m.statement_id,
            budget: m.budget_ns.map(Duration::from_nanos),
            deadline_cause: m.deadline_cause.map(cause_from_pb).transpose()?,
            traceparent: None,
            tracestate: None,
        },
        m.call_id,
    ))
}

/// SQLSTATEs are `&'static str` in `QueryError`: the known ones, else
/// `HY000`.
fn static_sqlstate(s: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "HY000", "70100", "42000", "22012", "22003", "21000", "22007", "42S02", "42S22", "23000",
        "42S01", "3D000", "22001", "HY001", "08S01", "28000",
    ];
    KNOWN.iter().find(|k| **k == s).copied().unwrap_or("HY000")
}

/// The gRPC code nearest to a MySQL error.
fn grpc_code(e: &QueryError) -> Code {
    match e.kind {
        ErrorKind::Canceled => Code::Cancelled,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Error => match e.code {
            1045 | 1094 | 1095 | 1227 => Code::PermissionDenied,
            1064 | 1146 | 1049 | 1054 => Code::InvalidArgument,
            1041 => Code::ResourceExhausted,
            _ => Code::Unknown,
        },
    }
}

/// A status that carries `e` whole: code, SQLSTATE, message, kind, level
/// and cause (`node` is the node the status is built on, the origin of a
/// cause that started there).
pub fn status_from_error(e: &QueryError, node: u64) -> Status {
    let wire = pb::WireError {
        code: u32::from(e.code),
        sqlstate: e.sqlstate.to_owned(),
        message: e.message.clone(),
        kind: match e.kind {
            ErrorKind::Error => 0,
            ErrorKind::Canceled => 1,
            ErrorKind::DeadlineExceeded => 2,
        },
        level: e.level.map(level_to_wire),
        cause: e
            .cause
            .as_ref()
            .map(|c| cause_to_pb(&WireCause::of(c, node))),
    };
    let mut md = MetadataMap::new();
    md.insert_bin(
        ERROR_HEADER,
        MetadataValue::from_bytes(&wire.encode_to_vec()),
    );
    Status::with_metadata(grpc_code(e), e.to_string(), md)
}

/// A status for a refused or malformed remote context.
pub fn status_from_remote_error(e: &RemoteError, node: u64) -> Status {
    status_from_error(
        &QueryError::new(e.mysql_code(), e.sqlstate(), e.to_string()),
        node,
    )
}

/// The `QueryError` a status carries, as the remote side built it. A cause
/// that started on `this_node` comes back as it was (not as "cancelled by
/// node N" of itself). A status without `cascade-error-bin` (a foreign
/// server, a transport failure) becomes error 1105 with the gRPC message.
pub fn error_from_status(s: &Status, this_node: Option<u64>) -> QueryError {
    let decoded = s
        .metadata()
        .get_bin(ERROR_HEADER)
        .and_then(|v| v.to_bytes().ok())
        .and_then(|b| pb::WireError::decode(b.as_ref()).ok());
    let Some(w) = decoded else {
        return QueryError::new(
            1105,
            "HY000",
            format!("remote call failed: {} ({:?})", s.message(), s.code()),
        );
    };
    let cause = w.cause.and_then(|c| cause_from_pb(c).ok()).map(|c| {
        if Some(c.origin_node) == this_node {
            Arc::new(Cause {
                kind: c.kind,
                reason: c.reason.clone(),
                level: c.level,
                context_id: 0,
            })
        } else {
            Arc::new(c.to_cause(0))
        }
    });
    QueryError {
        code: u16::try_from(w.code).unwrap_or(1105),
        sqlstate: static_sqlstate(&w.sqlstate),
        kind: match w.kind {
            1 => ErrorKind::Canceled,
            2 => ErrorKind::DeadlineExceeded,
            _ => ErrorKind::Error,
        },
        message: w.message,
        cause,
        level: w.level.and_then(|l| level_from_wire(l).ok()),
        query_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade::{Level, Reason};

    #[test]
    fn grpc_timeout_round_trips_and_never_shortens() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_micros(1500),
            Duration::from_millis(150_000),
            Duration::from_secs(7 * 24 * 3600),
            Duration::from_nanos(123_456_789_123),
        ] {
            let s = encode_grpc_timeout(d);
            assert!(s.len() <= 9, "{s}");
            let back = decode_grpc_timeout(&s).unwrap();
            assert!(back >= d, "{d:?} -> {s} -> {back:?}");
        }
        assert_eq!(encode_grpc_timeout(Duration::from_secs(150)), "150000m");
        assert_eq!(
            encode_grpc_timeout(Duration::from_micros(1_500_001)),
            "1500001u"
        );
        assert_eq!(
            decode_grpc_timeout("150000m"),
            Some(Duration::from_secs(150))
        );
        for bad in ["", "m", "123456789m", "12x", "-1m", "1.5S"] {
            assert_eq!(decode_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn context_bytes_round_trip() {
        let w = WireContext {
            origin_node: 4,
            level: Some(Level::Query),
            identity: Some(Identity::new("acme", "alice", "member")),
            connection_id: Some(77),
            session_id: Some(3),
            txn_id: None,
            statement_id: Some(9),
            budget: None,
            deadline_cause: Some(WireCause {
                kind: CancelKind::DeadlineExceeded,
                reason: Reason::StatementTimeout { limit_ms: 5 },
                level: Level::Query,
                origin_node: 4,
            }),
            traceparent: None,
            tracestate: None,
        };
        let (back, call) = context_from_bytes(&context_to_bytes(&w, 42)).unwrap();
        assert_eq!((back, call), (w, 42));
        assert!(context_from_bytes(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn errors_keep_code_state_level_and_cause() {
        let e = QueryError::new(1365, "22012", "Division by 0").at_level(Level::Pipeline);
        let back = error_from_status(&status_from_error(&e, 2), Some(1));
        assert_eq!(back, e);
        let cause = Arc::new(Cause::canceled(
            Reason::KillQuery {
                by_connection: 9,
                by_user: "root".into(),
            },
            Level::Query,
            5,
        ));
        let killed = QueryError::cancelled(cause);
        let s = status_from_error(&killed, 2);
        assert_eq!(s.code(), Code::Cancelled);
        let back = error_from_status(&s, Some(1));
        assert_eq!(
            (back.code, back.sqlstate, back.kind),
            (1317, "70100", ErrorKind::Canceled)
        );
        assert_eq!(back.level, Some(Level::Query));
        assert_eq!(
            back.cause.unwrap().reason.to_string(),
            "cancelled by node 2: killed by KILL QUERY from connection 9 (user root)"
        );
        let foreign = error_from_status(&Status::unavailable("down"), Some(1));
        assert_eq!(foreign.code, 1105);
        assert!(foreign.message.contains("down"));
    }
}
