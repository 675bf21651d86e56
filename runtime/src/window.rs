//! Event-time windows with Flink and Beam semantics: windows are half-open `[start, end)`,
//! aligned to the Unix epoch plus an offset (times are milliseconds); session windows merge per
//! key while records come less than the gap apart. A window fires when the watermark reaches
//! its end; with allowed lateness it is kept that much longer, and a late record updates it
//! and makes it fire again; a record for a window whose lateness has passed is dropped.
//!
//! Each aggregate keeps its groups in a [`Fixed`] (tumbling, sliding, or one global window) or
//! a [`Sessions`], with its own watermark: an upstream aggregate's output, emitted while the
//! watermark advances, is judged against the watermark this aggregate has seen so far, as in
//! Flink, where a watermark reaches an operator after the records emitted before it.

/// Group maps hash with foldhash (see `agg::FastMap`).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

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

/// An accumulator a window state can hold: generated accumulator structs implement it.
pub trait Merge: Default + Clone {
    fn merge_from(&mut self, other: Self);
}

/// One group's accumulator and whether it has fired (and changed since).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Slot<A> {
    pub acc: A,
    fired: bool,
    dirty: bool,
}

impl<A: Merge> Slot<A> {
    /// The watermark `wm` passed this group's window `[start, end)`: emits it if it has not
    /// fired since its last change, and says whether to keep it (its lateness has not passed;
    /// the earliest such time goes into `next_expiry`).
    #[allow(clippy::too_many_arguments, reason = "the fields of one group and the fire's bookkeeping")]
    fn emit<K: Clone>(
        &mut self,
        key: &K,
        start: i64,
        end: i64,
        allowed: i64,
        wm: i64,
        out: &mut Vec<Fired<K, A>>,
        next_expiry: &mut i64,
    ) -> bool {
        let keep = end != i64::MAX && end.saturating_add(allowed) > wm;
        if !self.fired || self.dirty {
            let acc = if keep { self.acc.clone() } else { std::mem::take(&mut self.acc) };
            out.push(Fired { key: key.clone(), start, end, acc });
            self.fired = true;
            self.dirty = false;
        }
        if keep {
            *next_expiry = (*next_expiry).min(end.saturating_add(allowed));
        }
        keep
    }
}

/// A group ready to emit: its key, window and accumulator.
#[derive(Debug)]
pub struct Fired<K, A> {
    pub key: K,
    pub start: i64,
    pub end: i64,
    pub acc: A,
}

/// Groups of fixed windows (tumbling or sliding: `size` long) or of one global window
/// (`size == 0`, which ends at +∞ and so fires only when a bounded input ends).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, A: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, A: Deserialize<'de>"
))]
pub struct Fixed<K, A> {
    groups: HashMap<(K, i64), Slot<A>>,
    size: i64,
    allowed: i64,
    /// The watermark this aggregate has seen.
    pub watermark: i64,
    /// The earliest end among groups not fired yet (`i64::MAX` for none).
    next_end: i64,
    /// The earliest time a fired group's lateness passes (`i64::MAX` for none).
    next_expiry: i64,
    /// Groups fired and updated since.
    dirty: usize,
}

impl<K: Hash + Eq + Clone, A: Merge> Fixed<K, A> {
    pub fn new(size: i64, allowed: i64) -> Fixed<K, A> {
        Fixed {
            groups: HashMap::default(),
            size,
            allowed,
            watermark: i64::MIN,
            next_end: i64::MAX,
            next_expiry: i64::MAX,
            dirty: 0,
        }
    }

    fn end(&self, start: i64) -> i64 {
        if self.size == 0 {
            i64::MAX
        } else {
            start.saturating_add(self.size)
        }
    }

    /// The accumulator of `key`'s window starting at `start`; `None` when that window's
    /// lateness has passed (the record is late and dropped).
    pub fn slot(&mut self, key: K, start: i64) -> Option<&mut A> {
        let end = self.end(start);
        if end != i64::MAX && end <= self.watermark {
            crate::run::behind();
            if end.saturating_add(self.allowed) <= self.watermark {
                return None;
            }
        }
        let slot = self.groups.entry((key, start)).or_default();
        if slot.fired {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty += 1;
            }
        } else {
            self.next_end = self.next_end.min(end);
        }
        Some(&mut slot.acc)
    }

    /// Advances the watermark to `wm` and returns every group whose window ended at or before
    /// it and has not fired since its last change. Groups whose lateness has passed go away.
    pub fn fire(&mut self, wm: i64) -> Vec<Fired<K, A>> {
        self.watermark = self.watermark.max(wm);
        let wm = self.watermark;
        let mut out = Vec::new();
        if wm < self.next_end && wm < self.next_expiry && self.dirty == 0 {
            return out;
        }
        let (size, allowed) = (self.size, self.allowed);
        // Room for every group whose window ended, counted first: a day's groups fire
        // together, and growing the vector to them copied it into fresh memory again and again.
        let ended = self.groups.keys().filter(|(_, start)| size != 0 && start.saturating_add(size) <= wm).count();
        out.reserve(ended);
        let mut next_end = i64::MAX;
        let mut next_expiry = i64::MAX;
        self.groups.retain(|(key, start), slot| {
            let end = if size == 0 { i64::MAX } else { start.saturating_add(size) };
            if end > wm {
                next_end = next_end.min(end);
                return true;
            }
            slot.emit(key, *start, end, allowed, wm, &mut out, &mut next_expiry)
        });
        self.next_end = next_end;
        self.next_expiry = next_expiry;
        self.dirty = 0;
        out
    }

    /// Folds another worker's partial groups into these.
    pub fn merge(&mut self, other: Fixed<K, A>) {
        for (k, slot) in other.groups {
            let end = self.end(k.1);
            if !slot.fired {
                self.next_end = self.next_end.min(end);
            }
            match self.groups.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().acc.merge_from(slot.acc),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(slot);
                }
            }
        }
        self.watermark = self.watermark.max(other.watermark);
    }

    /// Keeps only the groups whose key `keep` accepts (a restore on a different number of
    /// workers keeps the groups this worker now owns). The next `fire` looks at every group.
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.groups.retain(|(k, _), _| keep(k));
        self.next_end = i64::MIN;
    }

    /// How many groups are held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// One session of a key: `[start, end)` where `end` is the last record's time plus the gap.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session<A> {
    start: i64,
    end: i64,
    slot: Slot<A>,
}

/// Session windows per key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, A: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, A: Deserialize<'de>"
))]
pub struct Sessions<K, A> {
    keys: HashMap<K, Vec<Session<A>>>,
    gap: i64,
    allowed: i64,
    pub watermark: i64,
    next_end: i64,
    next_expiry: i64,
    dirty: usize,
    count: usize,
}

impl<K: Hash + Eq + Clone, A: Merge> Sessions<K, A> {
    pub fn new(gap: i64, allowed: i64) -> Sessions<K, A> {
        Sessions {
            keys: HashMap::default(),
            gap,
            allowed,
            watermark: i64::MIN,
            next_end: i64::MAX,
            next_expiry: i64::MAX,
            dirty: 0,
            count: 0,
        }
    }

    /// The accumulator of the session a record of `key` at `ts` belongs to: its own
    /// `[ts, ts + gap)` merged with every session of the key it overlaps. `None` when that
    /// session's lateness has passed.
    pub fn slot(&mut self, key: K, ts: i64) -> Option<&mut A> {
        let (mut start, mut end) = (ts, ts.saturating_add(self.gap));
        let sessions = self.keys.entry(key).or_default();
        // Overlapping sessions (half-open intervals) merge into one.
        let mut merged: Option<Session<A>> = None;
        let mut i = 0;
        while i < sessions.len() {
            let s = &sessions[i];
            if s.start < end && start < s.end {
                let s = sessions.swap_remove(i);
                self.count -= 1;
                start = start.min(s.start);
                end = end.max(s.end);
                merged = Some(match merged {
                    None => s,
                    Some(mut m) => {
                        m.slot.acc.merge_from(s.slot.acc);
                        m.slot.fired |= s.slot.fired;
                        m
                    }
                });
            } else {
                i += 1;
            }
        }
        if ts < self.watermark {
            // It may belong with a session that fired (and that may have gone already, so is
            // not here to merge); one at or after the watermark overlaps none that fired.
            crate::run::behind();
        }
        if end.saturating_add(self.allowed) <= self.watermark {
            // Put back what was taken out: nothing changes for a dropped record.
            if let Some(m) = merged {
                sessions.push(m);
                self.count += 1;
            }
            return None;
        }
        let mut session = merged.unwrap_or(Session { start, end, slot: Slot::default() });
        if session.slot.fired && !session.slot.dirty {
            session.slot.dirty = true;
            self.dirty += 1;
        }
        session.start = start;
        session.end = end;
        if !session.slot.fired {
            self.next_end = self.next_end.min(end);
        }
        sessions.push(session);
        self.count += 1;
        sessions.last_mut().map(|s| &mut s.slot.acc)
    }

    /// Advances the watermark and returns the sessions that ended at or before it (and have
    /// not fired since their last change); those whose lateness has passed go away.
    pub fn fire(&mut self, wm: i64) -> Vec<Fired<K, A>> {
        self.watermark = self.watermark.max(wm);
        let wm = self.watermark;
        let mut out = Vec::new();
        if wm < self.next_end && wm < self.next_expiry && self.dirty == 0 {
            return out;
        }
        let allowed = self.allowed;
        let mut next_end = i64::MAX;
        let mut next_expiry = i64::MAX;
        let mut count = 0;
        self.keys.retain(|key, sessions| {
            sessions.retain_mut(|s| {
                if s.end > wm {
                    next_end = next_end.min(s.end);
                    return true;
                }
                s.slot.emit(key, s.start, s.end, allowed, wm, &mut out, &mut next_expiry)
            });
            count += sessions.len();
            !sessions.is_empty()
        });
        self.count = count;
        self.next_end = next_end;
        self.next_expiry = next_expiry;
        self.dirty = 0;
        out
    }

    /// Folds another worker's sessions into these, merging sessions that overlap.
    pub fn merge(&mut self, other: Sessions<K, A>) {
        for (key, theirs) in other.keys {
            let mine = self.keys.entry(key).or_default();
            mine.extend(theirs);
            mine.sort_by_key(|s| s.start);
            let mut merged: Vec<Session<A>> = Vec::with_capacity(mine.len());
            for s in mine.drain(..) {
                match merged.last_mut() {
                    Some(last) if s.start < last.end => {
                        last.end = last.end.max(s.end);
                        last.slot.acc.merge_from(s.slot.acc);
                        last.slot.fired |= s.slot.fired;
                    }
                    _ => merged.push(s),
                }
            }
            for s in &merged {
                if !s.slot.fired {
                    self.next_end = self.next_end.min(s.end);
                }
            }
            *mine = merged;
        }
        self.count = self.keys.values().map(Vec::len).sum();
        self.watermark = self.watermark.max(other.watermark);
    }

    /// Keeps only the sessions of keys `keep` accepts; the next `fire` looks at every one.
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.keys.retain(|k, _| keep(k));
        self.count = self.keys.values().map(Vec::len).sum();
        self.next_end = i64::MIN;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The records of a rolling window (`window rolling(size)`), by key: each record leaves with
/// the accumulators of its key's records in `[t - size, t)` once the watermark has passed its
/// time `t` (so every earlier record has come), and a record stays while a later one can still
/// need it. Memory is bounded by the window, not by the history.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Rolling<K: Eq + Hash, V> {
    size: i64,
    /// Per key, its records in (time, sequence) order, and whether each has left.
    keys: HashMap<K, Vec<(i64, u64, V, bool)>>,
    watermark: i64,
    /// Records held, counted as they come and go (rebuilt by `merge` on a load).
    #[serde(skip)]
    held: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Rolling<K, V> {
    pub fn new(size: i64) -> Self {
        Rolling { size, keys: HashMap::default(), watermark: i64::MIN, held: 0 }
    }

    /// Takes in a record of `key` at `at` (`seq` orders records of one instant).
    pub fn add(&mut self, key: K, at: i64, seq: u64, value: V) {
        if at < self.watermark {
            // Records after it that left already went without it.
            crate::run::behind();
        }
        let rows = self.keys.entry(key).or_default();
        let i = rows.partition_point(|r| (r.0, r.1) <= (at, seq));
        rows.insert(i, (at, seq, value, false));
        self.held += 1;
    }

    /// The watermark reached `wm`: every record before it leaves, with the accumulator `fold`
    /// made from its key's records in `[t - size, t)` (records of the same instant are not
    /// in it). Returns (key, time, sequence, record, accumulator) in time order per key.
    pub fn advance<A: Default>(&mut self, wm: i64, fold: impl Fn(&mut A, &V)) -> Vec<(K, i64, u64, V, A)> {
        if wm <= self.watermark {
            return Vec::new();
        }
        self.watermark = wm;
        let size = self.size;
        let mut out = Vec::new();
        let held = &mut self.held;
        self.keys.retain(|k, rows| {
            for i in 0..rows.len() {
                let (at, seq) = (rows[i].0, rows[i].1);
                if rows[i].3 || at >= wm {
                    continue;
                }
                let from = at.saturating_sub(size);
                let start = rows.partition_point(|r| r.0 < from);
                let end = rows.partition_point(|r| r.0 < at);
                let mut acc = A::default();
                for r in &rows[start..end] {
                    fold(&mut acc, &r.2);
                }
                out.push((k.clone(), at, seq, rows[i].2.clone(), acc));
                rows[i].3 = true;
            }
            // Records that left and that no record still to come (at wm or later) reaches.
            let keep_from = wm.saturating_sub(size);
            let before = rows.len();
            rows.retain(|r| !r.3 || r.0 >= keep_from);
            *held = held.saturating_sub(before - rows.len());
            !rows.is_empty()
        });
        out
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps only the keys `keep` accepts (a restart's share of a checkpoint).
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.keys.retain(|k, _| keep(k));
        self.held = self.keys.values().map(Vec::len).sum();
    }

    /// Adds another worker's records (from a checkpoint).
    pub fn merge(&mut self, other: Rolling<K, V>) {
        self.watermark = self.watermark.max(other.watermark);
        for (k, rows) in other.keys {
            self.held += rows.len();
            let mine = self.keys.entry(k).or_default();
            mine.extend(rows);
            mine.sort_by_key(|r| (r.0, r.1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[derive(Clone, Default, Debug, PartialEq)]
    struct Sum(i64);
    impl Merge for Sum {
        fn merge_from(&mut self, o: Sum) {
            self.0 += o.0;
        }
    }

    fn sums<K: Clone>(f: Vec<Fired<K, Sum>>) -> Vec<(K, i64, i64, i64)> {
        f.into_iter().map(|x| (x.key, x.start, x.end, x.acc.0)).collect()
    }

    #[test]
    fn a_window_fires_when_the_watermark_reaches_its_end_and_late_records_are_dropped() {
        let mut w: Fixed<&str, Sum> = Fixed::new(10, 0);
        w.slot("a", 0).expect("open").0 += 1;
        w.slot("a", 10).expect("open").0 += 5;
        assert!(w.fire(9).is_empty());
        assert_eq!(sums(w.fire(10)), vec![("a", 0, 10, 1)]);
        // The window [0, 10) has fired and has no allowed lateness: a record for it is late.
        assert!(w.slot("a", 0).is_none());
        assert_eq!(sums(w.fire(25)), vec![("a", 10, 20, 5)]);
        assert!(w.is_empty());
    }

    #[test]
    fn allowed_lateness_re_emits_an_updated_result_then_drops() {
        let mut w: Fixed<&str, Sum> = Fixed::new(10, 5);
        w.slot("a", 0).expect("open").0 += 1;
        assert_eq!(sums(w.fire(12)), vec![("a", 0, 10, 1)]);
        // Within the lateness: the window is updated and fires again.
        w.slot("a", 0).expect("still allowed").0 += 2;
        assert_eq!(sums(w.fire(13)), vec![("a", 0, 10, 3)]);
        assert!(w.fire(14).is_empty());
        assert!(w.fire(15).is_empty());
        assert!(w.is_empty());
        assert!(w.slot("a", 0).is_none());
    }

    #[test]
    fn sessions_merge_when_gaps_overlap_and_fire_at_their_end() {
        let mut s: Sessions<&str, Sum> = Sessions::new(10, 0);
        s.slot("k", 0).expect("open").0 += 1; // [0, 10)
        s.slot("k", 25).expect("open").0 += 1; // [25, 35)
        s.slot("k", 10).expect("open").0 += 1; // [10, 20): touches [0, 10) but does not overlap
        s.slot("k", 17).expect("open").0 += 1; // [17, 27) joins [10, 20) and [25, 35)
        s.slot("j", 3).expect("open").0 += 7;
        assert_eq!(s.len(), 3);
        let mut fired = sums(s.fire(13));
        fired.sort();
        assert_eq!(fired, vec![("j", 3, 13, 7), ("k", 0, 10, 1)]);
        assert_eq!(sums(s.fire(100)), vec![("k", 10, 35, 3)]);
        assert!(s.is_empty());
    }

    #[test]
    fn partial_sessions_from_two_workers_merge_like_one() {
        let mut a: Sessions<&str, Sum> = Sessions::new(10, 0);
        let mut b: Sessions<&str, Sum> = Sessions::new(10, 0);
        a.slot("k", 0).expect("open").0 += 1;
        a.slot("k", 30).expect("open").0 += 1;
        b.slot("k", 8).expect("open").0 += 1; // bridges nothing alone: [8, 18)
        b.slot("k", 22).expect("open").0 += 1; // [22, 32) overlaps [30, 40) and [8, 18)? no: 18 <= 22
        a.merge(b);
        let mut fired = sums(a.fire(i64::MAX));
        fired.sort();
        assert_eq!(fired, vec![("k", 0, 18, 2), ("k", 22, 40, 2)]);
    }

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

    #[test]
    fn a_rolling_record_leaves_with_the_records_strictly_before_it() {
        let mut r: Rolling<&str, i64> = Rolling::new(10);
        for (at, seq, v) in [(5, 0, 1), (12, 1, 2), (15, 2, 4), (15, 3, 8), (30, 4, 16)] {
            r.add("k", at, seq, v);
        }
        r.add("other", 14, 5, 100);
        // A checkpoint's copy, loaded through `merge` as a restart does, holds the same records.
        let saved = postcard::to_stdvec(&r).expect("save");
        let mut copy: Rolling<String, i64> = Rolling::new(10);
        copy.merge(postcard::from_bytes(&saved).expect("load"));
        assert_eq!((copy.len(), r.len()), (6, 6));
        let sum = |acc: &mut i64, v: &i64| *acc += v;
        let mut out = r.advance(16, sum);
        out.sort_by_key(|o| (o.0, o.1, o.2));
        let got: Vec<(&str, i64, i64, i64)> = out.into_iter().map(|(k, at, _, v, acc)| (k, at, v, acc)).collect();
        // 12 sees 5 (within 10 before); both records at 15 see 5 and 12, not each other.
        assert_eq!(got, vec![("k", 5, 1, 0), ("k", 12, 2, 1), ("k", 15, 4, 3), ("k", 15, 8, 3), ("other", 14, 100, 0)]);
        // 30 sees nothing within [20, 30); what no later record can reach is gone.
        let out = r.advance(i64::MAX, sum);
        assert_eq!(out.iter().map(|o| (o.1, o.4)).collect::<Vec<_>>(), vec![(30, 0)]);
        assert!(r.is_empty());
    }
}
