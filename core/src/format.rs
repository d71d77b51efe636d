//! Human units for durations and counts ("11.30 ms", "1.53 M").

/// A duration given in microseconds, in the largest unit that keeps it ≥ 1.
pub fn duration_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1_000_000.0)
    } else if us >= 1_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else if us >= 1.0 {
        format!("{us:.2} µs")
    } else {
        format!("{:.0} ns", us * 1_000.0)
    }
}

/// A count with K / M / G suffixes.
pub fn count(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        format!("{:.2} G", f / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.2} M", f / 1e6)
    } else if n >= 10_000 {
        format!("{:.2} K", f / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(duration_us(11_300.0), "11.30 ms");
        assert_eq!(duration_us(2_500_000.0), "2.50 s");
        assert_eq!(duration_us(0.5), "500 ns");
        assert_eq!(count(1_530_000), "1.53 M");
        assert_eq!(count(999), "999");
    }
}
