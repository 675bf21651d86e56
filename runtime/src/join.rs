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
}

impl<K: Eq + Hash + Clone, L: Clone, R: Clone> Interval<K, L, R> {
    /// A join whose rows meet when `lower <= right time - left time <= upper` (milliseconds).
    pub fn new(lower: i64, upper: i64) -> Self {
        Interval { lower, upper, keys: HashMap::default(), watermark: i64::MIN }
    }

    /// A left row arrives: the right rows it meets (their time and values), in input order.
    pub fn left(&mut self, key: K, at: i64, seq: u64, row: L) -> Vec<(i64, R)> {
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
        out
    }

    /// A right row arrives: the left rows it meets (their time and values), in input order.
    pub fn right(&mut self, key: K, at: i64, seq: u64, row: R) -> Vec<(i64, L)> {
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
        let mut alone = Vec::new();
        self.keys.retain(|k, sides| {
            // Rows still to come have times >= wm: a left row at t can meet one only while
            // t + upper >= wm, a right row at u only while u - lower >= wm.
            let mut kept = Vec::with_capacity(sides.left.len());
            for l in sides.left.drain(..) {
                if l.at.saturating_add(upper) >= wm {
                    kept.push(l);
                } else if !l.met {
                    alone.push((l.seq, k.clone(), l.at, l.row));
                }
            }
            sides.left = kept;
            sides.right.retain(|r| r.at.saturating_sub(lower) >= wm);
            !(sides.left.is_empty() && sides.right.is_empty())
        });
        alone.sort_by_key(|(seq, _, at, _)| (*at, *seq));
        alone.into_iter().map(|(_, k, at, row)| (k, at, row)).collect()
    }

    /// Rows held, on both sides.
    pub fn len(&self) -> usize {
        self.keys.values().map(|s| s.left.len() + s.right.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keeps only the keys `keep` accepts (a restart's share of a checkpoint).
    pub fn retain_keys(&mut self, keep: impl Fn(&K) -> bool) {
        self.keys.retain(|k, _| keep(k));
    }

    /// Adds another worker's state (from a checkpoint); the watermark is the later one.
    pub fn merge(&mut self, other: Interval<K, L, R>) {
        self.watermark = self.watermark.max(other.watermark);
        for (k, s) in other.keys {
            let mine = self.keys.entry(k).or_default();
            mine.left.extend(s.left);
            mine.right.extend(s.right);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Interval;

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
        // A checkpoint's copy goes on where the state left off.
        let saved = postcard::to_stdvec(&a).expect("save");
        let mut back: Interval<u8, u8, u8> = postcard::from_bytes(&saved).expect("load");
        assert_eq!(back.right(1, 12, 2, 1), vec![(10, 7)]);
        let mut b = Interval::new(0, 5);
        b.merge(a.clone());
        b.retain_keys(|k| *k != 1);
        assert!(b.is_empty());
    }
}
