//! Exact `DECIMAL` values with MySQL's arithmetic rules, on
//! [`rust_decimal`] (96-bit mantissa: up to 28 significant digits; MySQL
//! holds 65, and a result past 28 digits is error 1690 here).
//!
//! A [`Dec`] is a value and the scale it *shows*. MySQL keeps more digits
//! than it shows after a division (`1/3` is `0.333333333` inside, shown
//! `0.3333`; so `1/3*3` shows `1.0000`), and rounds to the shown scale only
//! when the value leaves an expression (printed, sent, stored, cast). The
//! rules:
//!
//! - a literal `1.50` has scale 2; an integer has scale 0;
//! - `a + b`, `a - b`: scale `max(sa, sb)`; `a * b`: `sa + sb`;
//! - `a / b`: shown scale `sa + 4` (`div_precision_increment`), the value
//!   kept to `9·(⌈sa/9⌉ + ⌈sb/9⌉ + 1)` digits (MySQL's whole 9-digit words),
//!   truncated;
//! - comparisons (and so `GROUP BY`, `DISTINCT`) are of the shown values:
//!   `1/3 = 0.3333` is true, `1/3 > 0.3333` false (as MariaDB answers),
//!   while arithmetic goes on with the kept digits (`FLOOR(1/3*3)` is 0);
//! - `ROUND(x, d)`: half away from zero, scale `max(d, 0)`;
//! - scales are capped at 28 (MySQL: 30).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The largest scale cascade keeps (rust_decimal's; MySQL's is 30).
pub const MAX_SCALE: u32 = 28;
/// MySQL's `div_precision_increment` (fixed at its default).
pub const DIV_PRECISION_INCREMENT: u32 = 4;

/// An exact decimal and the scale it shows (see the module docs). The
/// default is `0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dec {
    v: Decimal,
    scale: u8,
}

impl Dec {
    /// `v` shown with its own scale.
    pub fn new(v: Decimal) -> Dec {
        Dec {
            scale: v.scale() as u8,
            v,
        }
    }
    /// `mantissa / 10^scale` (`from_scaled(15, 1)` is `1.5`); the scale
    /// is capped at 28.
    pub fn from_scaled(mantissa: i64, scale: u32) -> Dec {
        Dec::new(Decimal::new(mantissa, scale.min(MAX_SCALE)))
    }
    /// An integer (scale 0).
    pub fn from_i64(i: i64) -> Dec {
        Dec::new(Decimal::from(i))
    }
    /// A literal such as `1.50` (scale 2) or `.5`; `None` if not a plain
    /// decimal number or past 28 digits.
    pub fn parse(s: &str) -> Option<Dec> {
        let t = s.trim();
        if t.is_empty() || t.contains(['e', 'E', '_']) {
            return None;
        }
        Decimal::from_str_exact(t).ok().map(Dec::new)
    }
    /// A double as a decimal: its shortest exact-round-trip digits, as
    /// MySQL converts (`0.1` is `0.1`, not the binary expansion); `None`
    /// past 28 digits (a magnitude past ~7.9e28, or a tiny fraction).
    pub fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        let v = Decimal::from_str_exact(&f.to_string())
            .ok()
            .or_else(|| rust_decimal::prelude::FromPrimitive::from_f64(f))?;
        Some(Dec::new(v.normalize()))
    }
    /// The value kept (with any digits beyond the shown scale).
    pub fn value(&self) -> Decimal {
        self.v
    }
    /// The shown scale.
    pub fn scale(&self) -> u32 {
        u32::from(self.scale)
    }
    /// The shown value: rounded half away from zero to the shown scale.
    pub fn shown(&self) -> Decimal {
        let mut r = self
            .v
            .round_dp_with_strategy(self.scale(), RoundingStrategy::MidpointAwayFromZero);
        // `rescale` pads trailing zeros so that the text has `scale` digits.
        r.rescale(self.scale());
        r
    }
    /// As a double (from the kept value, as MySQL converts).
    pub fn to_f64(&self) -> f64 {
        self.v.to_f64().unwrap_or(0.0)
    }
    /// Rounded half away from zero to an integer, if BIGINT holds it.
    pub fn to_i64(&self) -> Option<i64> {
        self.v
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_i64()
    }
    /// Whether zero.
    pub fn is_zero(&self) -> bool {
        self.v.is_zero()
    }
    fn with_scale(v: Decimal, scale: u32) -> Dec {
        Dec {
            v,
            scale: scale.min(MAX_SCALE) as u8,
        }
    }
    /// `a + b` (`None`: past 28 digits).
    pub fn checked_add(self, b: Dec) -> Option<Dec> {
        Some(Dec::with_scale(
            self.v.checked_add(b.v)?,
            self.scale().max(b.scale()),
        ))
    }
    /// `a - b`.
    pub fn checked_sub(self, b: Dec) -> Option<Dec> {
        Some(Dec::with_scale(
            self.v.checked_sub(b.v)?,
            self.scale().max(b.scale()),
        ))
    }
    /// `a * b`.
    pub fn checked_mul(self, b: Dec) -> Option<Dec> {
        Some(Dec::with_scale(
            self.v.checked_mul(b.v)?,
            self.scale() + b.scale(),
        ))
    }
    /// `a / b` for `b ≠ 0` (the caller handles zero: NULL or error 1365).
    pub fn checked_div(self, b: Dec) -> Option<Dec> {
        let words = |s: u32| s.div_ceil(9);
        let kept = (9 * (words(self.scale()) + words(b.scale()) + 1)).min(MAX_SCALE);
        let q = self.v.checked_div(b.v)?;
        Some(Dec::with_scale(
            q.trunc_with_scale(kept),
            self.scale() + DIV_PRECISION_INCREMENT,
        ))
    }
    /// `a % b` for `b ≠ 0`: the sign of `a`, scale `max(sa, sb)`.
    pub fn checked_rem(self, b: Dec) -> Option<Dec> {
        Some(Dec::with_scale(
            self.v.checked_rem(b.v)?,
            self.scale().max(b.scale()),
        ))
    }
    /// `ABS(a)`.
    pub fn abs(self) -> Dec {
        Dec {
            v: self.v.abs(),
            scale: self.scale,
        }
    }
    /// `ROUND(a, d)`: half away from zero; scale `max(d, 0)` (capped).
    /// A negative `d` rounds to tens, hundreds, …; `None` if that overflows.
    pub fn round(self, d: i64) -> Option<Dec> {
        if d >= 0 {
            let dp = u32::try_from(d).unwrap_or(u32::MAX).min(MAX_SCALE);
            let r = self
                .v
                .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            return Some(Dec::with_scale(r, dp));
        }
        // 10^k past 28 digits: every value rounds to 0.
        let k = u32::try_from(d.unsigned_abs()).unwrap_or(u32::MAX);
        if k > MAX_SCALE {
            return Some(Dec::with_scale(Decimal::ZERO, 0));
        }
        // k <= 28: 10^28 < 2^96 fits the mantissa, so this cannot panic.
        let p = Decimal::from_i128_with_scale(10i128.pow(k), 0);
        let q = self
            .v
            .checked_div(p)?
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        Some(Dec::with_scale(q.checked_mul(p)?, 0))
    }
    /// `FLOOR(a)` (scale 0).
    pub fn floor(self) -> Dec {
        Dec::with_scale(self.v.floor(), 0)
    }
    /// `CEIL(a)` (scale 0).
    pub fn ceil(self) -> Dec {
        Dec::with_scale(self.v.ceil(), 0)
    }
    /// `TRUNCATE(a, d)`: cut toward zero to `d` decimals (to tens,
    /// hundreds, … for a negative `d`); `None` on overflow.
    pub fn truncate(self, d: i64) -> Option<Dec> {
        if d >= 0 {
            let d = u32::try_from(d).unwrap_or(u32::MAX).min(MAX_SCALE);
            return Some(Dec::with_scale(self.v.trunc_with_scale(d), d));
        }
        let k = u32::try_from(d.unsigned_abs()).unwrap_or(u32::MAX);
        if k > MAX_SCALE {
            return Some(Dec::with_scale(Decimal::ZERO, 0));
        }
        // k <= 28: 10^28 < 2^96 fits the mantissa, so this cannot panic.
        let p = Decimal::from_i128_with_scale(10i128.pow(k), 0);
        Some(Dec::with_scale(
            self.v.checked_div(p)?.trunc().checked_mul(p)?,
            0,
        ))
    }
    /// The value as stored in (or cast to) `DECIMAL(precision, scale)`:
    /// rounded half away from zero to `scale` digits; `None` when more
    /// than `precision - scale` digits remain before the point (MySQL:
    /// 1264 in a column, 1690 in `CAST`... cascade refuses both).
    pub fn fit(self, precision: u32, scale: u32) -> Option<Dec> {
        let scale = scale.min(MAX_SCALE);
        let r = self
            .v
            .round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
        let int_digits = precision.saturating_sub(scale);
        // Past 28 digits no value reaches the limit (`try_…`: the plain
        // constructor panics past the 96-bit mantissa).
        let limit = 10i128
            .checked_pow(int_digits)
            .and_then(|p| Decimal::try_from_i128_with_scale(p, 0).ok());
        match limit {
            Some(l) if r.abs() >= l => None,
            _ => {
                let mut r = r;
                r.rescale(scale);
                Some(Dec::with_scale(r, scale))
            }
        }
    }
    /// Total order of the shown values (see the module docs).
    pub fn cmp_value(&self, other: &Dec) -> Ordering {
        self.shown().cmp(&other.shown())
    }
}

impl std::ops::Neg for Dec {
    type Output = Dec;
    /// `-a` (same scale).
    fn neg(self) -> Dec {
        Dec {
            v: -self.v,
            scale: self.scale,
        }
    }
}

impl PartialEq for Dec {
    /// Equal shown values, whatever their scales (`1.5 = 1.50`).
    fn eq(&self, other: &Dec) -> bool {
        self.shown() == other.shown()
    }
}
impl Eq for Dec {}

impl Hash for Dec {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // rust_decimal's hash is of the normalized value: 1.5 and 1.50
        // hash alike.
        self.shown().hash(state)
    }
}

impl fmt::Display for Dec {
    /// The shown value with exactly its scale's digits (`3.5000`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shown();
        if s.is_zero() {
            // No `-0.00`.
            if self.scale == 0 {
                return f.write_str("0");
            }
            return write!(f, "0.{}", "0".repeat(self.scale() as usize));
        }
        write!(f, "{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn literals_keep_their_scale() {
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("-0.00").to_string(), "0.00");
        assert_eq!(d("12").to_string(), "12");
        assert!(Dec::parse("1e3").is_none());
        assert!(Dec::parse("abc").is_none());
    }

    #[test]
    fn result_scales_follow_mysql() {
        assert_eq!(d("1.5").checked_add(d("2.25")).unwrap().to_string(), "3.75");
        assert_eq!(d("1.50").checked_sub(d("2")).unwrap().to_string(), "-0.50");
        assert_eq!(
            d("1.5").checked_mul(d("2.25")).unwrap().to_string(),
            "3.375"
        );
        assert_eq!(d("0.10").checked_mul(d("3")).unwrap().to_string(), "0.30");
        let seven = Dec::from_i64(7);
        assert_eq!(
            seven.checked_div(Dec::from_i64(2)).unwrap().to_string(),
            "3.5000"
        );
        assert_eq!(d("1.5").checked_div(d("3")).unwrap().to_string(), "0.50000");
        assert_eq!(d("10").checked_rem(d("3")).unwrap().to_string(), "1");
        assert_eq!(d("-7.5").checked_rem(d("2")).unwrap().to_string(), "-1.5");
    }

    #[test]
    fn division_keeps_hidden_digits_as_mysql() {
        let third = Dec::from_i64(1).checked_div(Dec::from_i64(3)).unwrap();
        assert_eq!(third.to_string(), "0.3333");
        assert_eq!(third.value().to_string(), "0.333333333");
        // 0.999999999 shown with 4 digits.
        assert_eq!(
            third.checked_mul(Dec::from_i64(3)).unwrap().to_string(),
            "1.0000"
        );
        // Compared as shown, as MariaDB: `1/3 = 0.3333`, `NOT 1/3 > 0.3333`.
        assert_eq!(third, d("0.3333"));
        assert_eq!(third.cmp_value(&d("0.3333")), Ordering::Equal);
        assert_ne!(third, d("0.333333333"));
        // Shown digits round half away from zero.
        let two_thirds = Dec::from_i64(2).checked_div(Dec::from_i64(3)).unwrap();
        assert_eq!(two_thirds.to_string(), "0.6667");
        assert_eq!((-two_thirds).to_string(), "-0.6667");
    }

    #[test]
    fn round_is_half_away_from_zero() {
        assert_eq!(d("2.5").round(0).unwrap().to_string(), "3");
        assert_eq!(d("-2.5").round(0).unwrap().to_string(), "-3");
        assert_eq!(d("1.005").round(2).unwrap().to_string(), "1.01");
        assert_eq!(d("1.5").round(3).unwrap().to_string(), "1.500");
        assert_eq!(d("155").round(-1).unwrap().to_string(), "160");
        assert_eq!(d("-155.5").round(-2).unwrap().to_string(), "-200");
        assert_eq!(d("155").round(-40).unwrap().to_string(), "0");
        assert_eq!(d("2.7").floor().to_string(), "2");
        assert_eq!(d("-2.2").ceil().to_string(), "-2");
        assert_eq!(d("-2.29").truncate(1).unwrap().to_string(), "-2.2");
        assert_eq!(d("-259.9").truncate(-2).unwrap().to_string(), "-200");
    }

    #[test]
    fn fitting_a_column_rounds_and_checks_the_integer_digits() {
        assert_eq!(d("123.456").fit(6, 2).unwrap().to_string(), "123.46");
        assert_eq!(d("1").fit(6, 2).unwrap().to_string(), "1.00");
        assert!(d("9999.995").fit(6, 2).is_none());
        assert_eq!(d("9999.994").fit(6, 2).unwrap().to_string(), "9999.99");
        assert!(d("1").fit(2, 2).is_none());
        // DECIMAL(65, 0): a limit past what 96 bits hold.
        assert_eq!(d("123").fit(65, 0).unwrap().to_string(), "123");
        assert_eq!(d("1.5").fit(40, 2).unwrap().to_string(), "1.50");
        assert_eq!(d("0.5").fit(2, 2).unwrap().to_string(), "0.50");
    }

    #[test]
    fn equal_values_are_equal_whatever_the_scale() {
        use std::collections::hash_map::DefaultHasher;
        let h = |x: Dec| {
            let mut s = DefaultHasher::new();
            x.hash(&mut s);
            s.finish()
        };
        assert_eq!(d("1.5"), d("1.50"));
        assert_eq!(h(d("1.5")), h(d("1.50")));
        assert_eq!(d("1.5").cmp_value(&d("1.49")), Ordering::Greater);
        assert!(Dec::from_i64(i64::MAX)
            .checked_mul(Dec::from_i64(i64::MAX))
            .is_none());
        assert_eq!(
            Dec::from_f64(0.1).map(|x| x.to_string()).as_deref(),
            Some("0.1")
        );
    }
}
