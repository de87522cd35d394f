//! Restart backoff for a slot whose process keeps failing during init: a broken import must not spin
//! the CPU. Pure: the supervisor keeps the count and applies the pause.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(10);

/// The pause before the next start after `failures` consecutive init failures: 0.1 s doubling to 10 s.
pub fn init_backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => doubling(FIRST, n, MAX),
    }
}

/// `first` for the first of `n` failures in a row, doubling with each one after, capped at `max`.
pub fn doubling(first: Duration, n: u32, max: Duration) -> Duration {
    first.saturating_mul(1 << n.saturating_sub(1).min(16)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_a_tenth_of_a_second_up_to_ten_seconds() {
        let cases = [(0, 0), (1, 100), (2, 200), (3, 400), (7, 6_400), (8, 10_000), (40, 10_000)];
        for (failures, ms) in cases {
            assert_eq!(init_backoff(failures), Duration::from_millis(ms), "after {failures} failures");
        }
    }
}
