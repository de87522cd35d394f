//! Percentiles of recent durations, as a pure function so the table below pins down its rounding.

/// The `p`-th percentile (0–100) of `values` by the nearest-rank method: the smallest value with at
/// least `p`% of the values at or below it. None when there are no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    nearest_rank(&sorted, p)
}

/// [`percentile`] of values already sorted, so several percentiles share one sort.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_table() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let cases: [(&[f64], f64, Option<f64>); 11] = [
            (&[], 50.0, None),
            (&[7.0], 0.0, Some(7.0)),
            (&[7.0], 50.0, Some(7.0)),
            (&[7.0], 100.0, Some(7.0)),
            (&[3.0, 1.0, 2.0], 50.0, Some(2.0)),
            (&[3.0, 1.0, 2.0], 99.0, Some(3.0)),
            (&[1.0, 2.0, 3.0, 4.0], 50.0, Some(2.0)),
            (&[1.0, 2.0, 3.0, 4.0], 75.0, Some(3.0)),
            (&hundred, 90.0, Some(90.0)),
            (&hundred, 99.0, Some(99.0)),
            (&hundred, 100.0, Some(100.0)),
        ];
        for (values, p, expected) in cases {
            assert_eq!(percentile(values, p), expected, "p{p} of {values:?}");
        }
    }

    #[test]
    fn a_lower_percentile_is_never_above_a_higher_one() {
        let values = [12.0, 0.5, 900.0, 3.0, 3.0, 41.0, 7.5];
        let ps = [0.0, 10.0, 50.0, 90.0, 99.0, 100.0];
        let got: Vec<f64> = ps.iter().map(|p| percentile(&values, *p).unwrap()).collect();
        assert!(got.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
    }
}
