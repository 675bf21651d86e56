//! Event-time window assignment with Flink and Beam semantics: windows are half-open
//! `[start, end)`, aligned to the Unix epoch plus an offset. Times are milliseconds.

/// The start of the tumbling window of `size` (shifted by `offset`) that contains `t`.
/// Works for times before the epoch too: the division rounds toward negative infinity.
pub fn tumbling_start(t: i64, size: i64, offset: i64) -> i64 {
    debug_assert!(size > 0 && (0..size).contains(&offset));
    t - (t - offset).rem_euclid(size)
}

/// The starts of every sliding window of `size`, starting every `every`, that contains `t`,
/// latest first. There are `ceil(size / every)` of them at most.
pub fn sliding_starts(t: i64, size: i64, every: i64, offset: i64) -> impl Iterator<Item = i64> {
    debug_assert!(size > 0 && every > 0 && every <= size);
    let last = tumbling_start(t, every, offset.rem_euclid(every));
    (0..).map(move |k| last - k * every).take_while(move |start| *start > t - size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn tumbling_windows_are_half_open_and_epoch_aligned() {
        assert_eq!(tumbling_start(0, H, 0), 0);
        assert_eq!(tumbling_start(H - 1, H, 0), 0);
        assert_eq!(tumbling_start(H, H, 0), H);
        assert_eq!(tumbling_start(-1, H, 0), -H);
        assert_eq!(tumbling_start(10 * 60_000, H, 15 * 60_000), -45 * 60_000);
        assert_eq!(tumbling_start(20 * 60_000, H, 15 * 60_000), 15 * 60_000);
    }

    #[test]
    fn a_sliding_window_holds_every_record_it_overlaps() {
        let starts: Vec<i64> = sliding_starts(90 * 60_000, 2 * H, H, 0).collect();
        assert_eq!(starts, vec![H, 0]);
        let exact: Vec<i64> = sliding_starts(2 * H, 2 * H, H, 0).collect();
        assert_eq!(exact, vec![2 * H, H]);
        for t in [-5 * H - 7, 0, 12_345, 7 * H + 1] {
            for s in sliding_starts(t, 3 * H, H, 0) {
                assert!(s <= t && t < s + 3 * H);
            }
            assert_eq!(sliding_starts(t, 3 * H, H, 0).count(), 3);
        }
    }
}
