//! Retry arithmetic for jobs and sends. Pure.

use crate::core::domain::Span;

/// Exponential backoff with ±25 % jitter: `base * 2^(attempt-1)`, capped at `max`.
/// `jitter` is in [-1, 1] (random in production, fixed in tests).
pub fn backoff(attempt: i64, base: Span, max: Span, jitter: f64) -> Span {
    let exp = (attempt.max(1) - 1).min(40) as u32;
    let raw = base
        .0
        .saturating_mul(1i64.checked_shl(exp).unwrap_or(i64::MAX))
        .min(max.0);
    let j = (raw as f64 * 0.25 * jitter.clamp(-1.0, 1.0)) as i64;
    Span((raw + j).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let base = Span::from_secs(5);
        let max = Span::from_secs(3600);
        assert_eq!(backoff(1, base, max, 0.0), Span(5_000));
        assert_eq!(backoff(2, base, max, 0.0), Span(10_000));
        assert_eq!(backoff(4, base, max, 0.0), Span(40_000));
        assert_eq!(backoff(30, base, max, 0.0), max);
        assert_eq!(backoff(1, base, max, 1.0), Span(6_250));
        assert_eq!(backoff(1, base, max, -1.0), Span(3_750));
    }
}
