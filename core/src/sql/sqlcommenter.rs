//! sqlcommenter comments: the trace context an application (an ORM, a
//! driver with OpenTelemetry) appends to a statement, as in
//! `SELECT * FROM t /*traceparent='00-4bf9…-00f0…-01',tracestate='congo%3Dt61'*/`
//! (<https://google.github.io/sqlcommenter/spec/>).
//!
//! The parser's AST keeps no comments, so they are read from the request's
//! text: a small scanner that knows MySQL's quoting (`'…'`, `"…"`, `` `…` ``
//! with doubled quotes and backslash escapes) and comments (`/* */`, `-- `,
//! `#`), splits the text at top-level `;`, and reads the sqlcommenter pairs
//! (`key='value'`, comma-separated, keys and values URL-encoded, `\'` inside
//! a value) of the block comments of each statement. A comment inside a
//! string literal is not a comment; `/*!…*/` (MySQL's executable comments)
//! and `/*+…*/` (optimizer hints) are not sqlcommenter comments. One pass,
//! no recursion, linear in the text.

use crate::trace_context::{TraceParent, TraceParentError};

/// What the sqlcommenter comments of one statement carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatementComments {
    /// The `traceparent` (with the `tracestate` of the same comment), or
    /// why it was refused; `None` without one.
    pub traceparent: Option<Result<TraceParent, TraceParentError>>,
}

/// The sqlcommenter trace context of each statement of `sql`, in order:
/// one entry per `;`-separated statement (text that is only comments and
/// blanks belongs to the statement before it, where sqlcommenter puts a
/// comment written after the `;`). When a statement has several
/// `traceparent` comments, the last one counts.
///
/// ```
/// use cascade::sql::sqlcommenter::statement_comments;
/// let c = statement_comments(
///     "SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
/// );
/// let tp = c[0].traceparent.clone().unwrap().unwrap();
/// assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
pub fn statement_comments(sql: &str) -> Vec<StatementComments> {
    let b = sql.as_bytes();
    let mut out: Vec<StatementComments> = Vec::new();
    let mut cur = StatementComments::default();
    let mut has_code = false;
    let mut i = 0;
    let end_segment =
        |out: &mut Vec<StatementComments>, cur: &mut StatementComments, has_code: &mut bool| {
            let seg = std::mem::take(cur);
            if *has_code || out.is_empty() {
                out.push(seg);
            } else if let (Some(last), Some(tp)) = (out.last_mut(), seg.traceparent) {
                // Only comments after a `;`: they belong to the statement
                // before.
                last.traceparent = Some(tp);
            }
            *has_code = false;
        };
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                has_code = true;
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i + 2;
                let close = sql[start..].find("*/").map(|x| start + x);
                let body_end = close.unwrap_or(b.len());
                let body = &sql[start..body_end];
                if body.starts_with('!') || body.starts_with('+') {
                    // Executable comment or optimizer hint: code.
                    has_code = true;
                } else if let Some(tp) = read_comment(body) {
                    cur.traceparent = Some(tp);
                }
                i = close.map_or(b.len(), |c| c + 2);
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = sql[i..].find('\n').map_or(b.len(), |x| i + x + 1);
            }
            b'#' => {
                i = sql[i..].find('\n').map_or(b.len(), |x| i + x + 1);
            }
            b';' => {
                end_segment(&mut out, &mut cur, &mut has_code);
                i += 1;
            }
            c => {
                if !c.is_ascii_whitespace() {
                    has_code = true;
                }
                i += 1;
            }
        }
    }
    if has_code || cur.traceparent.is_some() {
        end_segment(&mut out, &mut cur, &mut has_code);
    }
    out
}

/// The `traceparent` of one comment's body, if it has that key.
fn read_comment(body: &str) -> Option<Result<TraceParent, TraceParentError>> {
    let mut traceparent = None;
    let mut tracestate = None;
    for (key, value) in pairs(body) {
        match key.as_str() {
            "traceparent" => traceparent = Some(value),
            "tracestate" => tracestate = Some(value),
            _ => {}
        }
    }
    let tp = traceparent?;
    Some(TraceParent::parse(&tp).and_then(|p| match tracestate {
        Some(ts) => p.with_tracestate(&ts),
        None => Ok(p),
    }))
}

/// The `key='value'` pairs of a comment body, decoded. Text that is not a
/// pair ends the list (a comment that is not sqlcommenter's has none).
fn pairs(body: &str) -> Vec<(String, String)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return out;
        }
        let key = url_decode(body[key_start..i].trim());
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b'\'') {
            return out;
        }
        i += 1;
        let mut raw = Vec::new();
        while i < b.len() && b[i] != b'\'' {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'\'') {
                raw.push(b'\'');
                i += 2;
            } else {
                raw.push(b[i]);
                i += 1;
            }
        }
        if i >= b.len() {
            return out;
        }
        i += 1;
        out.push((key, url_decode(&String::from_utf8_lossy(&raw))));
    }
}

/// Percent-decoding (`%2C` is `,`); a `%` not followed by two hex digits
/// stays as it is.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(x) = hex {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn tp_of(c: &StatementComments) -> Option<String> {
        match &c.traceparent {
            Some(Ok(t)) => Some(t.to_string()),
            _ => None,
        }
    }

    #[test]
    fn reads_the_trailing_comment_with_encoded_values() {
        let sql = format!(
            "SELECT * FROM t WHERE a = 1 /*action='%2Fparam*d',controller='index',\
             traceparent='{}',tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/",
            TP.replace('-', "%2D")
        );
        let c = statement_comments(&sql);
        assert_eq!(c.len(), 1);
        let tp = c[0].traceparent.clone().unwrap().unwrap();
        assert_eq!(tp.to_string(), TP);
        assert_eq!(
            tp.tracestate.as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
    }

    #[test]
    fn comments_in_strings_and_other_comments_do_not_count() {
        for sql in [
            format!("SELECT '/*traceparent=''{TP}''*/'"),
            format!("SELECT \"/*traceparent='{TP}'*/\""),
            format!("SELECT 'it\\'s /*traceparent=\\'{TP}\\'*/'"),
            format!("SELECT 1 -- /*traceparent='{TP}'*/"),
            format!("SELECT 1 # /*traceparent='{TP}'*/"),
            format!("SELECT 1 /*! traceparent='{TP}'*/"),
            format!("SELECT 1 /* plain comment traceparent {TP} */"),
        ] {
            let c = statement_comments(&sql);
            assert_eq!(c.len(), 1, "{sql}");
            assert_eq!(c[0].traceparent, None, "{sql}");
        }
    }

    #[test]
    fn each_statement_gets_its_own_comment() {
        let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sql = format!(
            "SELECT 1 /*traceparent='{TP}'*/; SELECT ';'; SELECT 3 /*traceparent='{other}'*/;"
        );
        let c = statement_comments(&sql);
        assert_eq!(c.len(), 3);
        assert_eq!(tp_of(&c[0]).as_deref(), Some(TP));
        assert_eq!(c[1].traceparent, None);
        assert_eq!(tp_of(&c[2]).as_deref(), Some(other));
        // A comment written after the `;` belongs to the statement before.
        let after = statement_comments(&format!("SELECT 1; /*traceparent='{TP}'*/"));
        assert_eq!(after.len(), 1);
        assert_eq!(tp_of(&after[0]).as_deref(), Some(TP));
        // A leading comment belongs to its statement.
        let before = statement_comments(&format!("/*traceparent='{TP}'*/ SELECT 1; SELECT 2"));
        assert_eq!(before.len(), 2);
        assert_eq!(tp_of(&before[0]).as_deref(), Some(TP));
        assert_eq!(before[1].traceparent, None);
    }

    #[test]
    fn a_malformed_traceparent_is_an_error_entry_not_a_panic() {
        for v in [
            "00-zz",
            "",
            "%ZZ",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            let c = statement_comments(&format!("SELECT 1 /*traceparent='{v}'*/"));
            assert!(matches!(c[0].traceparent, Some(Err(_))), "{v}");
        }
        // Unterminated quotes and comments end the scan cleanly.
        for sql in [
            "SELECT 1 /*traceparent='00-",
            "SELECT '",
            "SELECT 1 /*",
            "SELECT 1 /*traceparent=*/",
            "/*=''*/",
            "SELECT 1 /*traceparent='%'*/",
            "%",
        ] {
            let c = statement_comments(sql);
            assert!(c.len() <= 1, "{sql}");
        }
    }
}
