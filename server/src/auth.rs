//! Logging in: login names (`tenant:user[:role]`, MatrixOne's convention),
//! the `mysql_native_password` and `caching_sha2_password` checks, and the
//! per-connection scramble.
//!
//! `caching_sha2_password` (MySQL 8's default): the same shape with
//! SHA-256 — the client answers `SHA256(password) XOR SHA256(SHA256(SHA256(password)) ++ scramble)`,
//! 32 bytes. MySQL checks it against a cache of `SHA256(SHA256(password))`
//! filled by a first "full" login (the password in clear over TLS, or
//! RSA-encrypted); this server keeps that value for every user configured
//! with a `password`, so its cache is always warm and every login is the
//! one-round-trip "fast auth": no password ever crosses the wire, with or
//! without TLS, and no RSA key is needed. The server tells which plugin a
//! client used by the answer's length (20 or 32 bytes).
//!
//! `mysql_native_password`: the server keeps `stage2 = SHA1(SHA1(password))`
//! and sends a 20-byte random scramble; the client answers
//! `SHA1(password) XOR SHA1(scramble ++ stage2)`. The server XORs the answer
//! with `SHA1(scramble ++ stage2)` again and checks that the SHA1 of the
//! result is `stage2`, so the password never crosses the wire and is never
//! stored.

use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::fmt;

use crate::config::{ServerConfig, User};

/// The tenant of a login name that names none.
pub const DEFAULT_TENANT: &str = "sys";

/// What a `mysql_native_password` check needs: `SHA1(SHA1(password))`, or
/// nothing for an empty password (which only an empty answer matches).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(Option<[u8; 20]>);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "PasswordHash(..)"
        } else {
            "PasswordHash(empty)"
        })
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl PasswordHash {
    /// The hash of a plain-text password.
    pub fn from_plain(password: &str) -> Self {
        if password.is_empty() {
            return PasswordHash(None);
        }
        PasswordHash(Some(sha1(&[&sha1(&[password.as_bytes()])])))
    }

    /// From 40 hex digits of `SHA1(SHA1(password))` (MySQL's
    /// `authentication_string` without its `*`); an empty string is the
    /// empty password.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.strip_prefix('*').unwrap_or(hex);
        if hex.is_empty() {
            return Some(PasswordHash(None));
        }
        if hex.len() != 40 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(PasswordHash(Some(out)))
    }

    /// The 40 hex digits (empty for the empty password).
    pub fn to_hex(&self) -> String {
        self.0
            .map(|h| h.iter().map(|b| format!("{b:02X}")).collect())
            .unwrap_or_default()
    }

    /// Whether `answer` is the client's `mysql_native_password` answer to
    /// `scramble` for this password.
    pub fn verify(&self, scramble: &[u8], answer: &[u8]) -> bool {
        let Some(stage2) = self.0 else {
            return answer.is_empty();
        };
        if answer.len() != 20 {
            return false;
        }
        let mask = sha1(&[scramble, &stage2]);
        let mut stage1 = [0u8; 20];
        for i in 0..20 {
            stage1[i] = answer[i] ^ mask[i];
        }
        // Compare without an early exit: the time taken says nothing about
        // how much of the answer was right.
        sha1(&[&stage1])
            .iter()
            .zip(stage2.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// What a `caching_sha2_password` check needs: `SHA256(SHA256(password))`,
/// or nothing for an empty password.
#[derive(Clone, PartialEq, Eq)]
pub struct Sha2Hash(Option<[u8; 32]>);

impl fmt::Debug for Sha2Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sha2Hash(..)"
        } else {
            "Sha2Hash(empty)"
        })
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl Sha2Hash {
    /// The hash of a plain-text password.
    pub fn from_plain(password: &str) -> Self {
        if password.is_empty() {
            return Sha2Hash(None);
        }
        Sha2Hash(Some(sha256(&[&sha256(&[password.as_bytes()])])))
    }

    /// Whether `answer` is the client's `caching_sha2_password` fast-auth
    /// answer to `scramble` for this password.
    pub fn verify(&self, scramble: &[u8], answer: &[u8]) -> bool {
        let Some(stage2) = self.0 else {
            return answer.is_empty();
        };
        if answer.len() != 32 {
            return false;
        }
        let mask = sha256(&[&stage2, scramble]);
        let mut stage1 = [0u8; 32];
        for i in 0..32 {
            stage1[i] = answer[i] ^ mask[i];
        }
        sha256(&[&stage1])
            .iter()
            .zip(stage2.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The length of a `caching_sha2_password` answer.
pub const SHA2_ANSWER_LEN: usize = 32;

/// The parts of a login name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginName<'a> {
    /// Tenant (`sys` when the name has none).
    pub tenant: &'a str,
    /// User.
    pub user: &'a str,
    /// Role, when the name gives one.
    pub role: Option<&'a str>,
}

impl<'a> LoginName<'a> {
    /// Parses `tenant:user[:role]`, or a bare `user` of tenant `sys`.
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut parts = name.split(':');
        let first = parts.next()?;
        let second = parts.next();
        let third = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let (tenant, user, role) = match (second, third) {
            (None, _) => (DEFAULT_TENANT, first, None),
            (Some(user), role) => (first, user, role),
        };
        if tenant.is_empty() || user.is_empty() || role.is_some_and(str::is_empty) {
            return None;
        }
        Some(LoginName { tenant, user, role })
    }
}

/// Why a login was refused; the message the client sees (MySQL error 1045).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The login name is not `tenant:user[:role]`.
    #[error("Access denied for user '{0}' (login names are tenant:user[:role])")]
    BadName(String),
    /// No such tenant/user, or the wrong password. Both read the same, as in
    /// MySQL, so that a client cannot probe which users exist.
    #[error("Access denied for user '{0}' (using password: {1})")]
    Denied(String, &'static str),
    /// A `caching_sha2_password` answer for a user configured with only a
    /// `password_sha1` (which that check cannot use).
    #[error("Access denied for user '{0}': this user has only a mysql_native_password hash (password_sha1); connect with mysql_native_password")]
    NeedsNativePassword(String),
    /// The user may not take that role.
    #[error("Access denied for user '{0}': role '{1}' is not granted")]
    RoleNotGranted(String, String),
}

/// The identity a successful login gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// Tenant.
    pub tenant: String,
    /// User.
    pub user: String,
    /// Role.
    pub role: String,
}

/// Checks a login against the configured users.
pub fn login(
    config: &ServerConfig,
    name: &[u8],
    scramble: &[u8],
    answer: &[u8],
) -> Result<Login, LoginError> {
    let shown = String::from_utf8_lossy(name).into_owned();
    let using = if answer.is_empty() { "NO" } else { "YES" };
    let name = std::str::from_utf8(name).map_err(|_| LoginError::BadName(shown.clone()))?;
    let parsed = LoginName::parse(name).ok_or_else(|| LoginError::BadName(shown.clone()))?;
    let user: &User = config
        .user(parsed.tenant, parsed.user)
        .ok_or_else(|| LoginError::Denied(shown.clone(), using))?;
    let ok = if answer.len() == SHA2_ANSWER_LEN {
        match &user.password_sha2 {
            Some(h) => h.verify(scramble, answer),
            None => return Err(LoginError::NeedsNativePassword(shown)),
        }
    } else {
        user.password.verify(scramble, answer)
    };
    if !ok {
        return Err(LoginError::Denied(shown, using));
    }
    let role = match parsed.role {
        None => user.roles[0].clone(),
        Some(r) if user.roles.iter().any(|g| g == r) => r.to_owned(),
        Some(r) => return Err(LoginError::RoleNotGranted(shown, r.to_owned())),
    };
    Ok(Login {
        tenant: user.tenant.clone(),
        user: user.name.clone(),
        role,
    })
}

/// A fresh 20-byte scramble from the OS's random source, printable and
/// free of `\0` and `$` as clients expect.
pub fn scramble() -> [u8; 20] {
    let mut raw = [0u8; 20];
    if getrandom::fill(&mut raw).is_err() {
        // No OS randomness: fall back to the per-process random keys of
        // std's hasher, still different for every connection.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        for (i, b) in raw.iter_mut().enumerate() {
            h.write_usize(i);
            *b = h.finish() as u8;
        }
    }
    // Map onto the 93 printable characters '!'..='~' minus '$'.
    raw.map(|b| {
        let c = b'!' + b % 93;
        if c == b'$' {
            b'#'
        } else {
            c
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's side of `mysql_native_password`.
    fn answer(password: &str, scramble: &[u8]) -> Vec<u8> {
        if password.is_empty() {
            return vec![];
        }
        let stage1 = sha1(&[password.as_bytes()]);
        let stage2 = sha1(&[&stage1]);
        let mask = sha1(&[scramble, &stage2]);
        stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
    }

    /// The client's side of `caching_sha2_password` (as pymysql computes it).
    fn sha2_answer(password: &str, scramble: &[u8]) -> Vec<u8> {
        let p1 = sha256(&[password.as_bytes()]);
        let p2 = sha256(&[&p1]);
        let p3 = sha256(&[&p2, scramble]);
        p1.iter().zip(p3).map(|(a, b)| a ^ b).collect()
    }

    #[test]
    fn caching_sha2_round_trip() {
        let s = scramble();
        let h = Sha2Hash::from_plain("secret");
        assert!(h.verify(&s, &sha2_answer("secret", &s)));
        assert!(!h.verify(&s, &sha2_answer("Secret", &s)));
        assert!(!h.verify(&scramble(), &sha2_answer("secret", &s)));
        assert!(
            !h.verify(&s, &answer("secret", &s)),
            "a native answer is not a sha2 one"
        );
        assert!(!h.verify(&s, &[]));
        assert!(Sha2Hash::from_plain("").verify(&s, &[]));
        // pymysql's answer for "secret" to the scramble "abcdefghijklmnopqrst"
        // (computed with Python's hashlib, independently of this code).
        let known = "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&known[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(h.verify(b"abcdefghijklmnopqrst", &bytes));
        assert_eq!(sha2_answer("secret", b"abcdefghijklmnopqrst"), bytes);
    }

    #[test]
    fn native_password_round_trip() {
        let s = scramble();
        let h = PasswordHash::from_plain("secret");
        assert!(h.verify(&s, &answer("secret", &s)));
        assert!(!h.verify(&s, &answer("Secret", &s)));
        assert!(!h.verify(&s, &[]));
        assert!(!h.verify(&s, &[1, 2, 3]));
        let empty = PasswordHash::from_plain("");
        assert!(empty.verify(&s, &[]));
        assert!(!empty.verify(&s, &answer("x", &s)));
    }

    #[test]
    fn mysql_known_hash() {
        // MySQL: PASSWORD('root') = '*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B'.
        let h = PasswordHash::from_plain("root");
        assert_eq!(h.to_hex(), "81F5E21E35407D884A6CD4A731AEBFB6AF209E1B");
        assert_eq!(
            PasswordHash::from_hex("*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B"),
            Some(h)
        );
        assert_eq!(PasswordHash::from_hex("zz"), None);
    }

    #[test]
    fn login_names() {
        let p = LoginName::parse;
        assert_eq!(
            p("acme:alice:admin"),
            Some(LoginName {
                tenant: "acme",
                user: "alice",
                role: Some("admin")
            })
        );
        assert_eq!(
            p("acme:alice"),
            Some(LoginName {
                tenant: "acme",
                user: "alice",
                role: None
            })
        );
        assert_eq!(
            p("root"),
            Some(LoginName {
                tenant: "sys",
                user: "root",
                role: None
            })
        );
        assert_eq!(p(""), None);
        assert_eq!(p(":alice"), None);
        assert_eq!(p("acme:alice:"), None);
        assert_eq!(p("a:b:c:d"), None);
    }

    #[test]
    fn logins_against_the_default_config() {
        let c = ServerConfig::default_local();
        let s = scramble();
        let ok = login(&c, b"acme:alice:admin", &s, &answer("alice", &s)).unwrap();
        assert_eq!(
            (ok.tenant.as_str(), ok.user.as_str(), ok.role.as_str()),
            ("acme", "alice", "admin")
        );
        assert_eq!(
            login(&c, b"acme:alice", &s, &answer("alice", &s))
                .unwrap()
                .role,
            "member"
        );
        assert_eq!(login(&c, b"root", &s, &[]).unwrap().tenant, "sys");
        assert!(matches!(
            login(&c, b"acme:alice", &s, &answer("bad", &s)),
            Err(LoginError::Denied(..))
        ));
        assert!(matches!(
            login(&c, b"nope:alice", &s, &answer("alice", &s)),
            Err(LoginError::Denied(..))
        ));
        assert!(matches!(
            login(&c, b"acme:bob:admin", &s, &answer("bob", &s)),
            Err(LoginError::RoleNotGranted(..))
        ));
        // caching_sha2_password answers work for users with a password.
        let ok = login(&c, b"acme:alice", &s, &sha2_answer("alice", &s)).unwrap();
        assert_eq!(ok.user, "alice");
        assert!(matches!(
            login(&c, b"acme:alice", &s, &sha2_answer("bad", &s)),
            Err(LoginError::Denied(..))
        ));
        assert!(matches!(
            login(&c, b"a:b:c:d", &s, &[]),
            Err(LoginError::BadName(_))
        ));
        assert!(matches!(
            login(&c, &[0xff, 0xfe], &s, &[]),
            Err(LoginError::BadName(_))
        ));
    }

    #[test]
    fn scrambles_are_printable_and_differ() {
        let a = scramble();
        assert!(a.iter().all(|&b| b.is_ascii_graphic() && b != b'$'));
        assert_ne!(a, scramble());
    }
}
