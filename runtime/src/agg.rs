//! Accumulators for `aggregate { … }`: each is created empty, adds a row's value, merges with a
//! partial accumulator from another worker, and finishes into the output value. Nulls are
//! skipped. Merging is what lets every rayon worker (and later every partition of a stream)
//! aggregate on its own.

/// Distinct sets hash with foldhash: SipHash's protection is not worth its cost here, and
/// foldhash is still seeded per process.
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::record::{Reject, Res};

pub trait Acc: Default + Send + Clone {
    type In;
    type Out;
    fn add(&mut self, v: Self::In);
    fn merge(&mut self, other: Self);
    fn finish(self) -> Res<Self::Out>;
}

/// `count()` and `count(x)`.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Count(i64);
impl Acc for Count {
    type In = bool;
    type Out = i64;
    #[inline]
    fn add(&mut self, present: bool) {
        self.0 += i64::from(present);
    }
    fn merge(&mut self, o: Self) {
        self.0 += o.0;
    }
    fn finish(self) -> Res<i64> {
        Ok(self.0)
    }
}

/// `count_distinct(x)`, exact. Most groups see a handful of values: those are kept in a vector
/// searched linearly (one allocation, no hashing); past `FEW` values they move to a hash set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de> + Eq + Hash"))]
pub enum CountDistinct<T> {
    Few(Vec<T>),
    Many(HashSet<T>),
}
impl<T> Default for CountDistinct<T> {
    fn default() -> Self {
        CountDistinct::Few(Vec::new())
    }
}
/// Distinct values a group keeps in a vector before it switches to a hash set.
const FEW: usize = 16;
impl<T: Hash + Eq + Send + Clone> Acc for CountDistinct<T> {
    type In = Option<T>;
    type Out = i64;
    #[inline]
    fn add(&mut self, v: Option<T>) {
        let Some(v) = v else { return };
        match self {
            CountDistinct::Few(vals) => {
                if !vals.contains(&v) {
                    if vals.len() < FEW {
                        vals.push(v);
                    } else {
                        let mut set: HashSet<T> = vals.drain(..).collect();
                        set.insert(v);
                        *self = CountDistinct::Many(set);
                    }
                }
            }
            CountDistinct::Many(set) => {
                set.insert(v);
            }
        }
    }
    fn merge(&mut self, o: Self) {
        let vals: Vec<T> = match o {
            CountDistinct::Few(v) => v,
            CountDistinct::Many(mut theirs) => {
                if let CountDistinct::Many(mine) = self {
                    if theirs.len() > mine.len() {
                        std::mem::swap(mine, &mut theirs);
                    }
                }
                theirs.into_iter().collect()
            }
        };
        for v in vals {
            self.add(Some(v));
        }
    }
    fn finish(self) -> Res<i64> {
        let n = match self {
            CountDistinct::Few(v) => v.len(),
            CountDistinct::Many(s) => s.len(),
        };
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// `count_distinct(x)` of strings, exact. A group's first values (up to `FEW`) are kept end to
/// end in one buffer, each behind its length (four bytes, little-endian), and searched
/// linearly; past `FEW` values they move to a hash set. Against a vector of strings: one
/// allocation per group instead of one per value, the row's string freed at once by the worker
/// that read it (a group's values crossed to the worker that owns it, to be freed there), and
/// one buffer to free when the group fires (BENCHMARKS.md, *Daily*).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DistinctStrs {
    Few { bytes: Vec<u8>, n: usize },
    Many(HashSet<String>),
}
impl Default for DistinctStrs {
    fn default() -> Self {
        DistinctStrs::Few { bytes: Vec::new(), n: 0 }
    }
}
impl DistinctStrs {
    /// The values of a `Few` buffer.
    fn entries(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
        let mut rest = bytes;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let n = (u32::from_le_bytes(*len) as usize).min(tail.len());
            let (v, tail) = tail.split_at(n);
            rest = tail;
            Some(v)
        })
    }

    /// Adds the value `v` (a string's bytes), copied only if it is new.
    fn add_bytes(&mut self, v: &[u8]) {
        match self {
            DistinctStrs::Few { bytes, n } => {
                if Self::entries(bytes).any(|x| x == v) {
                    return;
                }
                match u32::try_from(v.len()) {
                    Ok(len) if *n < FEW => {
                        // Room for four values like the first at once: grown from empty, the
                        // buffer was reallocated at its second, third and fifth.
                        if bytes.is_empty() {
                            bytes.reserve(4 * (4 + v.len()));
                        }
                        bytes.extend_from_slice(&len.to_le_bytes());
                        bytes.extend_from_slice(v);
                        *n += 1;
                    }
                    _ => {
                        let mut set: HashSet<String> =
                            Self::entries(bytes).map(|x| String::from_utf8_lossy(x).into_owned()).collect();
                        set.insert(String::from_utf8_lossy(v).into_owned());
                        *self = DistinctStrs::Many(set);
                    }
                }
            }
            DistinctStrs::Many(set) => {
                let v = String::from_utf8_lossy(v);
                if !set.contains(&*v) {
                    set.insert(v.into_owned());
                }
            }
        }
    }
}
impl Acc for DistinctStrs {
    type In = Option<String>;
    type Out = i64;
    #[inline]
    fn add(&mut self, v: Option<String>) {
        let Some(v) = v else { return };
        match self {
            // The string stays the caller's (and is freed where it was made) unless kept.
            DistinctStrs::Few { .. } => self.add_bytes(v.as_bytes()),
            DistinctStrs::Many(set) => {
                set.insert(v);
            }
        }
    }
    fn merge(&mut self, o: Self) {
        match o {
            DistinctStrs::Few { bytes, .. } => {
                for v in Self::entries(&bytes) {
                    self.add_bytes(v);
                }
            }
            DistinctStrs::Many(mut theirs) => {
                // The larger set takes the other's values: a few buffered values go into a
                // set, not a set's values one by one into a buffer.
                match self {
                    DistinctStrs::Many(mine) if theirs.len() > mine.len() => std::mem::swap(mine, &mut theirs),
                    DistinctStrs::Many(_) => {}
                    DistinctStrs::Few { .. } => {
                        let few = std::mem::replace(self, DistinctStrs::Many(theirs));
                        self.merge(few);
                        return;
                    }
                }
                for v in theirs {
                    self.add(Some(v));
                }
            }
        }
    }
    fn finish(self) -> Res<i64> {
        let n = match self {
            DistinctStrs::Few { n, .. } => n,
            DistinctStrs::Many(s) => s.len(),
        };
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The distinct source records (their [`crate::record::Origin::id`]) that gave a group's
/// aggregate a value, kept up to `K`: `aggregate(k >= K)` releases a group only when each of
/// its aggregates has `K` of them. Rows do not count people: an `explode`, or a `union` that
/// reads a stream twice, repeats a record, and a null argument supplies nothing. Stopping at
/// `K` keeps a group's state small and still decides, since a merge of capped sets reaches
/// `K` exactly when the whole sets would.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Origins<const K: usize>(Vec<u64>);
impl<const K: usize> Origins<K> {
    /// Counts record `id` when `supplies` (the row gave the aggregate a non-null value).
    #[inline]
    pub fn add(&mut self, supplies: bool, id: u64) {
        if supplies && self.0.len() < K && !self.0.contains(&id) {
            self.0.push(id);
        }
    }
    pub fn merge(&mut self, o: Self) {
        for id in o.0 {
            self.add(true, id);
        }
    }
    /// At least `K` distinct records.
    pub fn enough(&self) -> bool {
        self.0.len() >= K
    }
}

/// Whether an accumulator's input is a value (not null) that the aggregate uses.
pub trait Supplies {
    fn supplies(&self) -> bool;
}
impl Supplies for bool {
    #[inline]
    fn supplies(&self) -> bool {
        *self
    }
}
impl<T> Supplies for Option<T> {
    #[inline]
    fn supplies(&self) -> bool {
        self.is_some()
    }
}
impl<T> Supplies for (i64, u64, Option<T>) {
    #[inline]
    fn supplies(&self) -> bool {
        self.2.is_some()
    }
}

/// `sum` of integers, exact: kept in 128 bits, an overflow of `i64` at the end rejects the group.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct SumInt(i128);
impl Acc for SumInt {
    type In = Option<i64>;
    type Out = i64;
    #[inline]
    fn add(&mut self, v: Option<i64>) {
        self.0 += i128::from(v.unwrap_or(0));
    }
    fn merge(&mut self, o: Self) {
        self.0 += o.0;
    }
    fn finish(self) -> Res<i64> {
        i64::try_from(self.0).map_err(|_| Reject::new("`sum` overflows i64"))
    }
}

/// An exact sum of doubles: the running total is kept as non-overlapping partials
/// (Shewchuk's algorithm, as Python's `math.fsum`), and the result is the exact sum rounded
/// once. So a sum does not depend on the order rows arrive in or on how they were split
/// between workers and processes: 1 worker and 30 give the same bits.
///
/// The partials are held inline up to two (a group's decimal amounts seldom need more): a sum
/// per group then costs no allocation of its own (BENCHMARKS.md, *Daily*).
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct ExactSum {
    partials: smallvec::SmallVec<[f64; 2]>,
    /// The sum of the non-finite values (infinities and NaN), which partials cannot hold.
    special: f64,
}

impl ExactSum {
    #[inline]
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            self.special += v;
            return;
        }
        let mut x = v;
        let mut i = 0;
        for j in 0..self.partials.len() {
            let y = self.partials[j];
            let (big, small) = if x.abs() < y.abs() { (y, x) } else { (x, y) };
            let hi = big + small;
            let lo = small - (hi - big);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        if !x.is_finite() {
            // The exact total left the range of doubles.
            self.special += x;
            self.partials.clear();
        } else if x != 0.0 {
            self.partials.push(x);
        }
    }

    /// The non-overlapping parts whose sum is the exact total (when it is finite).
    pub fn partials(&self) -> &[f64] {
        &self.partials
    }

    pub fn merge(&mut self, o: ExactSum) {
        self.special += o.special;
        for p in o.partials {
            self.add(p);
        }
    }

    /// The exact sum, correctly rounded (ties to even).
    pub fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else { return 0.0 };
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Half-way cases: the partials below decide the direction of rounding.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct SumDouble(ExactSum);
impl Acc for SumDouble {
    type In = Option<f64>;
    type Out = f64;
    #[inline]
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.0.add(v);
        }
    }
    fn merge(&mut self, o: Self) {
        self.0.merge(o.0);
    }
    fn finish(self) -> Res<f64> {
        Ok(self.0.value())
    }
}

#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Avg {
    sum: ExactSum,
    n: i64,
}
impl Acc for Avg {
    type In = Option<f64>;
    type Out = Option<f64>;
    #[inline]
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.sum.add(v);
            self.n += 1;
        }
    }
    fn merge(&mut self, o: Self) {
        self.sum.merge(o.sum);
        self.n += o.n;
    }
    fn finish(self) -> Res<Option<f64>> {
        Ok((self.n > 0).then(|| self.sum.value() / self.n as f64))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Min<T>(Option<T>);
impl<T> Default for Min<T> {
    fn default() -> Self {
        Min(None)
    }
}
impl<T: PartialOrd + Send + Clone> Acc for Min<T> {
    type In = Option<T>;
    type Out = Option<T>;
    #[inline]
    fn add(&mut self, v: Option<T>) {
        if let Some(v) = v {
            if self.0.as_ref().is_none_or(|m| v < *m) {
                self.0 = Some(v);
            }
        }
    }
    fn merge(&mut self, o: Self) {
        self.add(o.0);
    }
    fn finish(self) -> Res<Option<T>> {
        Ok(self.0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Max<T>(Option<T>);
impl<T> Default for Max<T> {
    fn default() -> Self {
        Max(None)
    }
}
impl<T: PartialOrd + Send + Clone> Acc for Max<T> {
    type In = Option<T>;
    type Out = Option<T>;
    #[inline]
    fn add(&mut self, v: Option<T>) {
        if let Some(v) = v {
            if self.0.as_ref().is_none_or(|m| v > *m) {
                self.0 = Some(v);
            }
        }
    }
    fn merge(&mut self, o: Self) {
        self.add(o.0);
    }
    fn finish(self) -> Res<Option<T>> {
        Ok(self.0)
    }
}

/// The value on the row with the earliest (`LATEST = false`) or latest (`LATEST = true`) event
/// time. Ties go by arrival sequence: `first` keeps the earliest arrival, `last` the latest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ByTime<T, const LATEST: bool>(Option<((i64, u64), T)>);
impl<T, const LATEST: bool> Default for ByTime<T, LATEST> {
    fn default() -> Self {
        ByTime(None)
    }
}
impl<T: Send + Clone, const LATEST: bool> Acc for ByTime<T, LATEST> {
    /// (event time, arrival sequence, value)
    type In = (i64, u64, Option<T>);
    type Out = Option<T>;
    fn add(&mut self, (t, seq, v): (i64, u64, Option<T>)) {
        if let Some(v) = v {
            let wins = |k: &(i64, u64)| if LATEST { (t, seq) >= *k } else { (t, seq) < *k };
            if self.0.as_ref().is_none_or(|(k, _)| wins(k)) {
                self.0 = Some(((t, seq), v));
            }
        }
    }
    fn merge(&mut self, o: Self) {
        if let Some(((t, s), v)) = o.0 {
            self.add((t, s, Some(v)));
        }
    }
    fn finish(self) -> Res<Option<T>> {
        Ok(self.0.map(|(_, v)| v))
    }
}

/// `approx_quantile(x, q)`: a DDSketch (relative error 1%, at most 2,048 bins per sign, so the
/// state stays bounded however many rows a group has). Merging adds bucket counts, so the
/// estimate does not depend on how rows were split between workers.
#[derive(Clone, Serialize, Deserialize)]
pub struct Quantile(sketches_ddsketch::DDSketch);
impl std::fmt::Debug for Quantile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Quantile({} values)", self.0.count())
    }
}
impl Default for Quantile {
    fn default() -> Self {
        Quantile(sketches_ddsketch::DDSketch::new(sketches_ddsketch::Config::defaults()))
    }
}
impl Quantile {
    #[inline]
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.0.add(v);
        }
    }
    pub fn merge(&mut self, o: Self) {
        // Sketches of one configuration always merge.
        let _ = self.0.merge(&o.0);
    }
    /// The estimated `q`-quantile, null for a group without values.
    pub fn quantile(&self, q: f64) -> Res<Option<f64>> {
        self.0.quantile(q).map_err(|_| Reject::new("`approx_quantile`: q must be between 0 and 1"))
    }
}

/// `first(x)`: the value on the row with the earliest event time.
pub type First<T> = ByTime<T, false>;
/// `last(x)`: the value on the row with the latest event time.
pub type Last<T> = ByTime<T, true>;

#[cfg(test)]
mod tests {
    use super::*;

    fn fold<A: Acc>(parts: Vec<Vec<A::In>>) -> Res<A::Out> {
        let mut total = A::default();
        for p in parts {
            let mut a = A::default();
            for v in p {
                a.add(v);
            }
            total.merge(a);
        }
        total.finish()
    }

    #[test]
    fn origins_count_distinct_records_that_supply_a_value() {
        let mut a = Origins::<3>::default();
        // One record exploded into three rows, and a record whose value is null.
        for (supplies, id) in [(true, 7), (true, 7), (true, 7), (false, 8), (true, 9)] {
            a.add(supplies, id);
        }
        assert!(!a.enough());
        let mut b = Origins::<3>::default();
        b.add(true, 9);
        a.merge(b.clone());
        assert!(!a.enough(), "the same record seen by two workers counts once");
        b.add(true, 10);
        a.merge(b);
        assert!(a.enough());
        assert_eq!(a.0.len(), 3, "no more than K are kept");
    }

    /// Strings counted in the shared buffer, in the hash set, and merged across the two (in
    /// either order, empty strings and multibyte ones among them), give the distinct count of a
    /// plain set; a serialized accumulator (a stream's checkpoint, an exchange between
    /// processes) reads back the same.
    #[test]
    fn distinct_strings_count_what_a_set_counts_in_every_representation() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let words = ["", "a", "ab", "é", "日本", "acct-0000001-3", "x"];
        for case in 0..200 {
            let parts: Vec<Vec<Option<String>>> = (0..1 + next(4))
                .map(|_| {
                    let len = [0, 1, 5, 16, 17, 40][next(6) as usize];
                    (0..len)
                        .map(|_| match next(10) {
                            0 => None,
                            1..=4 => Some(words[next(words.len() as u64) as usize].to_string()),
                            _ => Some(format!("v{}", next(30))),
                        })
                        .collect()
                })
                .collect();
            let want = parts.iter().flatten().flatten().collect::<std::collections::HashSet<_>>().len() as i64;
            assert_eq!(fold::<DistinctStrs>(parts.clone()), Ok(want), "case {case}: {parts:?}");
            let mut a = DistinctStrs::default();
            for v in parts.iter().flatten() {
                a.add(v.clone());
            }
            let back: DistinctStrs = serde_json::from_str(&serde_json::to_string(&a).expect("write")).expect("read");
            assert_eq!(back.finish(), Ok(want), "case {case}");
        }
    }

    #[test]
    fn partial_accumulators_merge_to_the_same_result() {
        assert_eq!(fold::<SumInt>(vec![vec![Some(1), None], vec![Some(i64::MAX)], vec![Some(-5)]]), Ok(i64::MAX - 4));
        assert!(fold::<SumInt>(vec![vec![Some(i64::MAX)], vec![Some(1)]]).is_err());
        assert_eq!(fold::<Avg>(vec![vec![Some(1.0)], vec![None, Some(3.0)]]), Ok(Some(2.0)));
        assert_eq!(fold::<Avg>(vec![vec![None]]), Ok(None));
        assert_eq!(fold::<CountDistinct<&str>>(vec![vec![Some("a"), Some("b")], vec![Some("a"), None]]), Ok(2));
        // Past the small-vector size, and merged across the two representations.
        let many: Vec<Option<i64>> = (0..100).map(|i| Some(i % 40)).collect();
        let few: Vec<Option<i64>> = vec![Some(3), Some(77), None];
        assert_eq!(fold::<CountDistinct<i64>>(vec![many.clone(), few.clone()]), Ok(41));
        assert_eq!(fold::<CountDistinct<i64>>(vec![few, many]), Ok(41));
        assert_eq!(fold::<Max<f64>>(vec![vec![Some(1.0)], vec![None, Some(3.0)]]), Ok(Some(3.0)));
        assert_eq!(fold::<Min<i64>>(vec![vec![], vec![None]]), Ok(None));
        assert_eq!(
            fold::<First<&str>>(vec![vec![(5, 0, Some("late"))], vec![(1, 1, Some("early")), (1, 2, Some("tie"))]]),
            Ok(Some("early"))
        );
        assert_eq!(
            fold::<Last<&str>>(vec![vec![(5, 0, Some("a"))], vec![(5, 1, Some("b")), (2, 2, Some("c"))]]),
            Ok(Some("b"))
        );
    }

    #[test]
    fn double_sums_are_exact_whatever_the_order_or_split() {
        // Naive left-to-right addition loses the small values and depends on the order.
        let values = [1e16, 1.0, -1e16, 1.0, 0.1, 0.2, -0.3, 3.5e-300, 1e300, -1e300];
        let mut fwd = ExactSum::default();
        values.iter().for_each(|v| fwd.add(*v));
        let mut back = ExactSum::default();
        values.iter().rev().for_each(|v| back.add(*v));
        let mut split = ExactSum::default();
        for chunk in values.chunks(3) {
            let mut part = ExactSum::default();
            chunk.iter().for_each(|v| part.add(*v));
            split.merge(part);
        }
        // 2 + (0.1 + 0.2 - 0.3 as doubles) + 3.5e-300, rounded once, is 2; adding in order
        // loses the first 1.0 to the 1e16 beside it.
        let naive: f64 = values.iter().sum();
        assert_ne!(naive, 2.0);
        assert_eq!(fwd.value(), 2.0);
        assert_eq!(back.value().to_bits(), fwd.value().to_bits());
        assert_eq!(split.value().to_bits(), fwd.value().to_bits());
        assert_eq!(ExactSum::default().value(), 0.0);
        let mut inf = ExactSum::default();
        inf.add(f64::MAX);
        inf.add(f64::MAX);
        assert_eq!(inf.value(), f64::INFINITY);
        inf.add(f64::NEG_INFINITY);
        assert!(inf.value().is_nan());
        assert_eq!(fold::<SumDouble>(vec![vec![Some(0.1), None], vec![Some(0.2)]]), Ok(0.30000000000000004));
    }

    #[test]
    fn quantiles_are_within_one_percent_and_independent_of_the_split() {
        let values: Vec<f64> = (1..=10_000).map(|i| f64::from(i) * 0.37 - 200.0).collect();
        let mut whole = Quantile::default();
        for v in &values {
            whole.add(Some(*v));
        }
        let mut parts = Quantile::default();
        for chunk in values.chunks(777) {
            let mut p = Quantile::default();
            for v in chunk {
                p.add(Some(*v));
            }
            p.add(None);
            parts.merge(p);
        }
        for q in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let exact = values[(q * (values.len() - 1) as f64) as usize];
            let est = whole.quantile(q).expect("q in range").expect("values");
            assert!((est - exact).abs() <= 0.01 * exact.abs() + 1e-9, "q {q}: {est} vs {exact}");
            assert_eq!(parts.quantile(q), whole.quantile(q));
        }
        assert_eq!(Quantile::default().quantile(0.5), Ok(None));
        assert!(whole.quantile(1.5).is_err());
    }
}
