//! The state of an interval join: per key, the rows of each side that a row still to come
//! could meet, dropped once the watermark has passed every time they could meet.
//!
//! A left row at `t` meets a right row at `u` when `lower <= u - t <= upper`. A pair is made
//! when the second of its two rows arrives, which finds the first in the state: rows arrive
//! at one owner (the key exchange) in any order, and every pair is made exactly once, so the
//! rows do not depend on the order of arrival — the same in a batch run (everything arrives
//! before the watermark moves) and in a stream. A record behind the watermark meets what is
//! still held.

use std::hash::Hash;

/// The hash map of join state and of lookup and as-of tables: foldhash, several times faster
/// than the standard library's SipHash on short keys (the keys are data, not attacker-chosen
/// requests; a table is one run's).
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashMap<K, V> = Map<K, V>;

/// One side's row: its event time, its place in the input (for a stable order), and its values.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Held<T> {
    at: i64,
    seq: u64,
    row: T,
    /// A left row that met a right one (a left join emits the others alone).
    met: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Sides<L, R> {
    left: Vec<Held<L>>,
    right: Vec<Held<R>>,
}

impl<L, R> Default for Sides<L, R> {
    fn default() -> Self {
        Sides { left: Vec::new(), right: Vec::new() }
    }
}

/// The rows of both sides of an interval join, by key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Interval<K: Eq + Hash, L, R> {
    lower: i64,
    upper: i64,
    keys: HashMap<K, Sides<L, R>>,
    watermark: i64,
    /// The earliest time the watermark must pass for a row to go (a left row at `t`:
    /// `t + upper`; a right row at `u`: `u - lower`): until it does, an advance has nothing to
    /// drop and looks at no key — a join whose rows all wait (a wide interval, a backfill) would
    /// otherwise scan its whole state at every round. Rows expiring all the time (a narrow
    /// interval in a stream) cost one scan per advance, as a per-key index would cost more
    /// there. Not saved: `merge` computes it when a checkpoint is loaded (a copy read directly
    /// starts from `i64::MIN`, so its first advance looks).
    #[serde(skip, default = "drop_unknown")]
    next_drop: i64,
    /// Rows held on both sides (rebuilt by `merge` on a load).
    #[serde(skip)]
    held: usize,
}

/// The earliest drop time of a join read from bytes without `merge`: unknown, so look.
fn drop_unknown() -> i64 {
    i64::MIN
}

impl<K: Eq + Hash + Clone, L: Clone, R: Clone> Interval<K, L, R> {
    /// A join whose rows meet when `lower <= right time - left time <= upper` (milliseconds).
    pub fn new(lower: i64, upper: i64) -> Self {
        Interval { lower, upper, keys: HashMap::default(), watermark: i64::MIN, next_drop: i64::MAX, held: 0 }
    }

    /// A left row arrives: the right rows it meets (their time and values), in input order.
    pub fn left(&mut self, key: K, at: i64, seq: u64, row: L) -> Vec<(i64, R)> {
        if at < self.watermark {
            // Right rows it could have met may have been dropped.
            crate::run::behind();
        }
        let (lower, upper) = (self.lower, self.upper);
        let sides = self.keys.entry(key).or_default();
        let mut met: Vec<&Held<R>> = sides
            .right
            .iter()
            .filter(|r| r.at.saturating_sub(at) >= lower && r.at.saturating_sub(at) <= upper)
            .collect();
        met.sort_by_key(|r| (r.at, r.seq));
        let out: Vec<(i64, R)> = met.into_iter().map(|r| (r.at, r.row.clone())).collect();
        sides.left.push(Held { at, seq, row, met: !out.is_empty() });
        self.held += 1;
        self.next_drop = self.next_drop.min(at.saturating_add(upper));
        out
    }

    /// A right row arrives: the left rows it meets (their time and values), in input order.
    pub fn right(&mut self, key: K, at: i64, seq: u64, row: R) -> Vec<(i64, L)> {
        if at < self.watermark {
            // Left rows it could have met may have been dropped (or emitted alone).
            crate::run::behind();
        }
        let (lower, upper) = (self.lower, self.upper);
        let sides = self.keys.entry(key).or_default();
        let mut out = Vec::new();
        let mut met: Vec<&mut Held<L>> = sides
            .left
            .iter_mut()
            .filter(|l| at.saturating_sub(l.at) >= lower && at.saturating_sub(l.at) <= upper)
            .collect();
        met.sort_by_key(|l| (l.at, l.seq));
        for l in met {
            l.met = true;
            out.push((l.at, l.row.clone()));
        }
        sides.right.push(Held { at, seq, row, met: false });
        self.held += 1;
        self.next_drop = self.next_drop.min(at.saturating_sub(lower));
        out
    }

    /// The watermark reached `wm`: rows no row still to come can meet are dropped. Returns the
    /// left rows dropped without having met any (key, time, values), for a left join to emit
    /// alone, in key-independent input order.
    pub fn advance(&mut self, wm: i64) -> Vec<(K, i64, L)> {
        if wm <= self.watermark {
            return Vec::new();
        }
        self.watermark = wm;
        let (lower, upper) = (self.lower, self.upper);
        if self.next_drop >= wm {
            return Vec::new();
        }
        let mut alone = Vec::new();
        let (mut held, mut next_drop) = (0, i64::MAX);
        self.keys.retain(|k, sides| {
            // Rows still to come have times >= wm: a left row at t can meet one only while
            // t + upper >= wm, a right row at u only while u - lower >= wm.
            let mut kept = Vec::with_capacity(sides.left.len());
            for l in sides.left.drain(..) {
                if l.at.saturating_add(upper) >= wm {
                    next_drop = next_drop.min(l.at.saturating_add(upper));
                    kept.push(l);
                } else if !l.met {
                    alone.push((l.seq, k.clone(), l.at, l.row));
                }
            }
            sides.left = kept;
            sides.right.retain(|r| r.at.saturating_sub(lower) >= wm);
            for r in &sides.right {
                next_drop = next_drop.min(r.at.saturating_sub(lower));
            }
            held += sides.left.len() + sides.right.len();
            !(sides.left.is_empty() && sides.right.is_empty())
        });
        (self.held, self.next_drop) = (held, next_drop);
        alone.sort_by_key(|(seq, _, at, _)| (*at, *seq));
        alone.into_iter().map(|(_, k, at, row)| (k, at, row)).collect()
    }

    /// Rows held, on both sides.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps only the keys `keep` accepts (a restart's share of a checkpoint).
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.keys.retain(|k, _| keep(k));
        self.held = self.keys.values().map(|s| s.left.len() + s.right.len()).sum();
    }

    /// Adds another worker's state (from a checkpoint); the watermark is the later one.
    pub fn merge(&mut self, other: Interval<K, L, R>) {
        self.watermark = self.watermark.max(other.watermark);
        let (lower, upper) = (self.lower, self.upper);
        for (k, s) in other.keys {
            for l in &s.left {
                self.next_drop = self.next_drop.min(l.at.saturating_add(upper));
            }
            for r in &s.right {
                self.next_drop = self.next_drop.min(r.at.saturating_sub(lower));
            }
            self.held += s.left.len() + s.right.len();
            let mine = self.keys.entry(k).or_default();
            mine.left.extend(s.left);
            mine.right.extend(s.right);
        }
    }
}

/// One version of the other side of an as-of join: its event time, its `order by` value, its
/// place in the input, and its values. Versions compare by (time, order, place).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Version<O, R> {
    at: i64,
    order: O,
    seq: u64,
    row: R,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Waiting<O, L, R> {
    /// Rows whose time the watermark has not passed yet.
    rows: Vec<Held<L>>,
    /// Versions in (time, order, place) order: at most one behind the watermark (the latest
    /// of those), then every version the watermark has not passed.
    versions: Vec<Version<O, R>>,
}

impl<O, L, R> Default for Waiting<O, L, R> {
    fn default() -> Self {
        Waiting { rows: Vec::new(), versions: Vec::new() }
    }
}

/// An as-of join with a stream of versions (`join asof OTHER` where `OTHER` is a stream): a
/// row at `t` meets its key's version with the greatest (time, order, place) whose time is
/// `<= t` and, with `within`, `>= t - within`. A row waits until the watermark has passed `t`
/// — every version at or before it has come — and then leaves with what it met, so the rows
/// do not depend on the order of arrival. A key keeps the rows still waiting, the versions the
/// watermark has not passed, and the latest one it has (the only one a row still to come can
/// meet among them): memory is bounded by the keys and the watermark's delay, not the history.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Versions<K: Eq + Hash, O, L, R> {
    within: Option<i64>,
    keys: HashMap<K, Waiting<O, L, R>>,
    /// The keys an advance of the watermark can change: rows waiting, versions it has not
    /// passed, or (with `within`) a version still to expire. A key holding only its latest
    /// version is left alone, so an advance costs the keys in motion, not every key ever seen.
    live: HashMap<K, ()>,
    watermark: i64,
    /// Rows and versions held, counted as they come and go (rebuilt by `merge` on a load).
    #[serde(skip)]
    held: usize,
}

/// What a row of an as-of join met: the version's time and values, or nothing.
pub type Met<R> = Option<(i64, R)>;

impl<K: Eq + Hash + Clone, O: Ord + Clone, L: Clone, R: Clone> Versions<K, O, L, R> {
    /// A join whose rows meet versions no older than `within` milliseconds (any age: `None`).
    pub fn new(within: Option<i64>) -> Self {
        Versions { within, keys: HashMap::default(), live: HashMap::default(), watermark: i64::MIN, held: 0 }
    }

    /// The version a row at `at` meets among `versions` (sorted).
    fn pick(versions: &[Version<O, R>], at: i64, within: Option<i64>) -> Met<R> {
        let v = versions[..versions.partition_point(|v| v.at <= at)].last()?;
        if within.is_some_and(|w| at.saturating_sub(v.at) > w) {
            return None;
        }
        Some((v.at, v.row.clone()))
    }

    /// A row arrives. One the watermark has already passed (a late row) meets at once what is
    /// held (`Some`); any other waits for [`Versions::advance`] (`None`).
    pub fn left(&mut self, key: K, at: i64, seq: u64, row: L) -> Option<Met<R>> {
        if at < self.watermark {
            crate::run::behind();
            let met = self.keys.get(&key).and_then(|w| Self::pick(&w.versions, at, self.within));
            return Some(met);
        }
        self.live.insert(key.clone(), ());
        self.keys.entry(key).or_default().rows.push(Held { at, seq, row, met: false });
        self.held += 1;
        None
    }

    /// A version arrives (one behind the watermark too: rows still waiting can meet it).
    pub fn right(&mut self, key: K, at: i64, order: O, seq: u64, row: R) {
        if at < self.watermark {
            // Rows that left already went without it.
            crate::run::behind();
        }
        self.live.insert(key.clone(), ());
        let versions = &mut self.keys.entry(key).or_default().versions;
        let i = versions.partition_point(|v| (v.at, &v.order, v.seq) <= (at, &order, seq));
        versions.insert(i, Version { at, order, seq, row });
        self.held += 1;
    }

    /// The watermark reached `wm`: every waiting row with a time before it leaves with the
    /// version it met (key, time, place, values, met), in (time, place) order per key;
    /// versions no row still to come can meet are dropped.
    pub fn advance(&mut self, wm: i64) -> Vec<(K, i64, u64, L, Met<R>)> {
        if wm <= self.watermark {
            return Vec::new();
        }
        self.watermark = wm;
        let within = self.within;
        let mut out = Vec::new();
        let keys = &mut self.keys;
        let held = &mut self.held;
        self.live.retain(|k, ()| {
            let Some(w) = keys.get_mut(k) else { return false };
            let before = w.rows.len() + w.versions.len();
            if w.rows.iter().any(|r| r.at < wm) {
                let (mut ready, rest): (Vec<_>, Vec<_>) = w.rows.drain(..).partition(|r| r.at < wm);
                w.rows = rest;
                ready.sort_by_key(|r| (r.at, r.seq));
                for r in ready {
                    let met = Self::pick(&w.versions, r.at, within);
                    out.push((k.clone(), r.at, r.seq, r.row, met));
                }
            }
            // Of the versions before the watermark only the latest can still be met, by rows
            // at `wm` or later, and not at all once `within` has passed it.
            let behind = w.versions.partition_point(|v| v.at < wm);
            if behind > 1 {
                w.versions.drain(..behind - 1);
            }
            if let Some(v) = w.versions.first() {
                if v.at < wm && within.is_some_and(|d| wm.saturating_sub(v.at) > d) {
                    w.versions.remove(0);
                }
            }
            *held = held.saturating_sub(before - (w.rows.len() + w.versions.len()));
            if w.rows.is_empty() && w.versions.is_empty() {
                keys.remove(k);
                return false;
            }
            // Still in motion: rows waiting, versions ahead of the watermark, or one to expire.
            !w.rows.is_empty() || w.versions.iter().any(|v| v.at >= wm) || within.is_some()
        });
        // The same order whatever the map's: by time, then input place.
        out.sort_by_key(|(_, at, seq, _, _)| (*at, *seq));
        out
    }

    /// Rows and versions held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps only the keys `keep` accepts (a restart's share of a checkpoint).
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.keys.retain(|k, _| keep(k));
        self.live.retain(|k, ()| keep(k));
        self.held = self.keys.values().map(|w| w.rows.len() + w.versions.len()).sum();
    }

    /// Adds another worker's state (from a checkpoint); the watermark is the later one.
    pub fn merge(&mut self, other: Versions<K, O, L, R>) {
        self.watermark = self.watermark.max(other.watermark);
        for (k, w) in other.keys {
            self.live.insert(k.clone(), ());
            self.held += w.rows.len() + w.versions.len();
            let mine = self.keys.entry(k).or_default();
            mine.rows.extend(w.rows);
            mine.versions.extend(w.versions);
            mine.versions.sort_by(|a, b| (a.at, &a.order, a.seq).cmp(&(b.at, &b.order, b.seq)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Interval, Versions};

    #[test]
    fn each_pair_meets_once_whichever_side_comes_first() {
        // Right within [-10, 0] of left.
        let mut a: Interval<&str, &str, &str> = Interval::new(-10, 0);
        assert!(a.right("k", 95, 0, "r95").is_empty());
        assert_eq!(a.left("k", 100, 1, "l100"), vec![(95, "r95")]);
        assert_eq!(a.right("k", 100, 2, "r100"), vec![(100, "l100")]);
        assert!(a.right("k", 101, 3, "r101").is_empty(), "after the left row: outside the bound");
        assert!(a.left("k", 200, 4, "l200").is_empty());
        assert!(a.left("other", 100, 5, "lo").is_empty());
        // Left rows whose bound closed leave; those that met nobody come back alone.
        let alone = a.advance(150);
        assert_eq!(alone, vec![("other", 100, "lo")]);
        assert_eq!(a.advance(i64::MAX), vec![("k", 200, "l200")]);
        assert!(a.is_empty());
    }

    #[test]
    fn a_right_row_waits_as_long_as_a_left_row_could_still_meet_it() {
        // Right within [0, 5] after left: a right row at 10 meets left rows at 5..=10.
        let mut a: Interval<u8, u8, u8> = Interval::new(0, 5);
        assert!(a.right(1, 10, 0, 0).is_empty());
        assert!(a.advance(10).is_empty());
        assert_eq!(a.left(1, 10, 1, 7), vec![(10, 0)], "a left row at the watermark still meets it");
        assert!(a.advance(11).is_empty());
        assert_eq!(a.len(), 1, "the right row is gone, the left one waits for rows up to 15");
        // A checkpoint's copy, loaded through `merge` as a restart does, goes on where the
        // state left off: it still meets, counts and drops the rows it held.
        let saved = postcard::to_stdvec(&a).expect("save");
        let mut back: Interval<u8, u8, u8> = Interval::new(0, 5);
        back.merge(postcard::from_bytes(&saved).expect("load"));
        assert_eq!(back.len(), 1);
        assert_eq!(back.right(1, 12, 2, 1), vec![(10, 7)]);
        assert!(back.advance(13).is_empty());
        assert_eq!(back.len(), 1, "the right row at 12 is gone, the left row at 10 waits until 15");
        assert!(back.advance(16).is_empty(), "the left row met one: it leaves with nothing to emit");
        assert!(back.is_empty());
        assert_eq!(back.len(), 0);
        let mut b = Interval::new(0, 5);
        b.merge(a.clone());
        b.retain_keys(|k| *k != 1);
        assert!(b.is_empty());
    }

    #[test]
    fn a_row_meets_the_latest_version_at_its_time_once_the_watermark_passed_it() {
        let mut a: Versions<&str, i64, &str, &str> = Versions::new(Some(50));
        // A row waits, whatever came before it.
        a.right("k", 10, 0, 0, "v10");
        assert_eq!(a.left("k", 100, 1, "l100"), None);
        assert_eq!(a.left("k", 40, 2, "l40"), None);
        // Versions after the row's time come, and one at its very instant: it counts.
        a.right("k", 100, 0, 3, "v100");
        a.right("k", 101, 0, 4, "v101");
        a.right("k", 30, 7, 5, "v30b");
        a.right("k", 30, 2, 6, "v30a");
        assert!(a.advance(40).is_empty(), "nothing before 40 waits");
        let out = a.advance(101);
        assert_eq!(
            out,
            vec![("k", 40, 2, "l40", Some((30, "v30b"))), ("k", 100, 1, "l100", Some((100, "v100")))],
            "ties at 30 go to the greatest order, 100 meets its own instant"
        );
        // Only the latest version behind the watermark stays, with those not behind it.
        assert_eq!(a.len(), 2);
        // A late row meets what is held; beyond `within` it meets nothing.
        assert_eq!(a.left("k", 100, 8, "late"), Some(Some((100, "v100"))));
        assert_eq!(a.left("k", 200, 9, "l200"), None);
        let saved = postcard::to_stdvec(&a).expect("save");
        let mut back: Versions<&str, i64, &str, &str> = postcard::from_bytes(&saved).expect("load");
        assert_eq!(back.advance(300), vec![("k", 200, 9, "l200", None)], "v101 is 99 ms old, within is 50");
        assert!(back.is_empty(), "no version can be met any more");
        let mut b = Versions::new(None);
        b.merge(a);
        b.retain_keys(|k| *k != "k");
        assert!(b.is_empty());
    }

    #[test]
    fn a_key_at_rest_keeps_its_latest_version_for_rows_long_after() {
        let mut a: Versions<u8, (), u8, &str> = Versions::new(None);
        a.right(1, 10, (), 0, "old");
        a.right(1, 20, (), 1, "new");
        a.right(2, 30, (), 2, "other");
        assert!(a.advance(100).is_empty());
        assert_eq!(a.len(), 2, "one version per key is left");
        assert!(a.live.is_empty(), "keys holding only their latest version are at rest");
        assert_eq!(a.left(1, 500, 3, 7), None);
        assert_eq!(a.left(2, 400, 4, 8), None);
        let out = a.advance(1000);
        assert_eq!(out, vec![(2, 400, 4, 8, Some((30, "other"))), (1, 500, 3, 7, Some((20, "new")))], "in time order");
    }

    #[test]
    fn an_advance_drops_exactly_the_rows_whose_bound_passed_among_many_keys() {
        // Right within [0, 100] after left; 1,000 keys, each with rows at its own times.
        let mut a: Interval<u32, u32, u32> = Interval::new(0, 100);
        for k in 0..1000u32 {
            let t = i64::from(k) * 10;
            a.left(k, t, u64::from(k), k);
            a.right(k, t + 50, u64::from(k), k);
        }
        assert_eq!(a.len(), 2000);
        // At 5,000: left rows at t with t + 100 < 5,000 (keys below 490) and right rows at
        // u = t + 50 with u < 5,000 (keys below 495) are gone; each left row met its right one.
        assert!(a.advance(5_000).is_empty());
        assert_eq!(a.len(), (1000 - 490) + (1000 - 495));
        // A late left row with nothing to meet leaves alone at the next advance.
        assert!(a.left(5, 0, 9_999, 5).is_empty());
        assert_eq!(a.advance(5_001), vec![(5, 0, 5)]);
        assert_eq!(a.advance(i64::MAX), Vec::new());
        assert!(a.is_empty());
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn a_copy_read_without_merge_still_drops_rows_before_1970() {
        let mut a: Interval<u8, u8, u8> = Interval::new(0, 5);
        assert!(a.left(1, -100, 0, 9).is_empty());
        let saved = postcard::to_stdvec(&a).expect("save");
        let mut copy: Interval<u8, u8, u8> = postcard::from_bytes(&saved).expect("load");
        assert_eq!(copy.advance(-50), vec![(1, -100, 9)], "the left row's bound (-95) passed");
        assert!(copy.is_empty());
    }
}
