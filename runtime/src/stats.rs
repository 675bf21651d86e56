//! Accumulators of a column's statistics — `stddev`, `quantile_edges` and `top_values` — that
//! `pipec fit` computes the transforms' parameters with, and the linear percentile they share
//! with `quantile_means`. Each merges partial states from other workers into the same result.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::agg::{Acc, ExactSum};
use crate::record::Res;

/// `stddev(x)`: the population standard deviation (divided by the count, as scikit-learn's
/// `StandardScaler`). The sums of the values and of their squares are kept exactly (each square
/// split into its rounded value and the rounding error), and `n·Σx² − (Σx)²` is formed exactly
/// from them, so the variance is rounded only at the end: it does not lose digits when the mean
/// is large against the spread, nor depend on how rows were split between workers. Null for a
/// group without values.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct StdDev {
    n: u64,
    sum: ExactSum,
    squares: ExactSum,
}

/// `a * b` as the rounded product and its rounding error, exactly.
#[inline]
fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Acc for StdDev {
    type In = Option<f64>;
    type Out = Option<f64>;
    #[inline]
    fn add(&mut self, v: Option<f64>) {
        if let Some(x) = v.filter(|x| !x.is_nan()) {
            self.n += 1;
            self.sum.add(x);
            let (p, e) = two_product(x, x);
            self.squares.add(p);
            self.squares.add(e);
        }
    }
    fn merge(&mut self, o: Self) {
        self.n += o.n;
        self.sum.merge(o.sum);
        self.squares.merge(o.squares);
    }
    fn finish(self) -> Res<Option<f64>> {
        if self.n == 0 {
            return Ok(None);
        }
        let n = self.n as f64;
        if !self.sum.value().is_finite() || !self.squares.value().is_finite() {
            return Ok(Some(f64::NAN));
        }
        let mut d = ExactSum::default();
        for &q in self.squares.partials() {
            let (p, e) = two_product(q, n);
            d.add(p);
            d.add(e);
        }
        for &a in self.sum.partials() {
            for &b in self.sum.partials() {
                let (p, e) = two_product(a, b);
                d.add(-p);
                d.add(-e);
            }
        }
        Ok(Some((d.value().max(0.0) / n / n).sqrt()))
    }
}

/// `quantile_edges(x, n)`: the `n + 1` edges that cut the values into `n` buckets of equal
/// count: the percentiles at `0, 100/n, …, 100` of the averaged inverted distribution function
/// (NumPy's `method="averaged_inverted_cdf"`, what scikit-learn's `KBinsDiscretizer` uses since
/// 1.9): a value where the rank falls between two values, their mean where it falls on the
/// boundary. Exact: every value is kept until the group finishes. Empty for a group without
/// values.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct QuantileEdges(Vec<f64>);

impl QuantileEdges {
    #[inline]
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(x) = v.filter(|x| !x.is_nan()) {
            self.0.push(x);
        }
    }
    pub fn merge(&mut self, o: Self) {
        self.0.extend(o.0);
    }
    pub fn edges(mut self, n: usize) -> Res<Vec<f64>> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        self.0.sort_unstable_by(f64::total_cmp);
        let step = 100.0 / n.max(1) as f64;
        Ok((0..=n.max(1)).map(|i| averaged_inverted_cdf(&self.0, (i as f64 * step) / 100.0)).collect())
    }
}

/// The Jensen–Shannon divergence (base 2: from 0, the same distribution, to 1, disjoint ones)
/// between two distributions over the same buckets, each given as weights (normalized here).
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp <= 0.0 || sq <= 0.0 {
        return if sp <= 0.0 && sq <= 0.0 { 0.0 } else { 1.0 };
    }
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let mut d = 0.0;
    for (x, y) in p.iter().zip(q) {
        let (a, b) = (x / sp, y / sq);
        let m = (a + b) / 2.0;
        d += 0.5 * kl(a, m) + 0.5 * kl(b, m);
    }
    d.clamp(0.0, 1.0)
}

impl QuantileEdges {
    /// `drift(x)` of a number: the Jensen–Shannon divergence between the baseline's share of
    /// values in each bucket (`base`, one more than `inner` edges: a value's bucket counts the
    /// inner edges at or below it, as `quantile_bucket` does) and this group's. Null for a group
    /// without values.
    pub fn drift(self, inner: &[f64], base: &[f64]) -> Res<Option<f64>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let mut counts = vec![0.0; inner.len() + 1];
        for x in &self.0 {
            counts[inner.partition_point(|e| e <= x)] += 1.0;
        }
        Ok(Some(jensen_shannon(&counts, base)))
    }
}

/// `top_values(x, n)`: the `n` most frequent values, the most frequent first, equal counts in
/// the order of the values (so the result does not depend on arrival order). Keeps a count per
/// distinct value.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct TopValues(HashMap<String, u64>);

impl TopValues {
    #[inline]
    pub fn add(&mut self, v: Option<String>) {
        if let Some(s) = v {
            *self.0.entry(s).or_default() += 1;
        }
    }
    pub fn merge(&mut self, o: Self) {
        for (s, n) in o.0 {
            *self.0.entry(s).or_default() += n;
        }
    }
    pub fn top(self, n: usize) -> Res<Vec<String>> {
        let mut all: Vec<(String, u64)> = self.0.into_iter().collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(all.into_iter().take(n).map(|(s, _)| s).collect())
    }
}

impl TopValues {
    /// `drift(x)` of a string: the L-infinity distance (the largest difference of a value's
    /// share) between the baseline — the shares of its `values`, then of every other value
    /// together, in `base` — and this group's. Null for a group without values.
    pub fn drift(self, values: &[&str], base: &[f64]) -> Res<Option<f64>> {
        let total: u64 = self.0.values().sum();
        if total == 0 {
            return Ok(None);
        }
        let mut shares: Vec<f64> = values.iter().map(|v| self.0.get(*v).copied().unwrap_or(0) as f64).collect();
        let known: f64 = shares.iter().sum();
        shares.push(total as f64 - known);
        let sb: f64 = base.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let d = shares.iter().zip(base).map(|(c, b)| (c / total as f64 - b / sb).abs()).fold(0.0, f64::max);
        Ok(Some(d))
    }
}

/// The `q`-quantile of the sorted `v` (not empty), interpolated linearly between the two
/// nearest ranks with NumPy's arithmetic (`np.percentile(v, 100 * q)`, the default method), so
/// an edge that falls on a value is that value exactly.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    let n = v.len();
    let virtual_index = (n - 1) as f64 * q;
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let last = (n - 1) as f64;
    let at = |i: f64| v[i.clamp(0.0, last) as usize];
    let (a, b) = (at(below), at(below + 1.0));
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// The `q`-quantile of the sorted `v` (not empty) by NumPy's `averaged_inverted_cdf`, with its
/// arithmetic: the rank `n q` falls on value `⌈n q⌉`, or halfway between two when it is whole.
pub fn averaged_inverted_cdf(v: &[f64], q: f64) -> f64 {
    let n = v.len();
    let virtual_index = n as f64 * q - 1.0;
    let below = virtual_index.floor();
    let gamma = if virtual_index - below == 0.0 { 0.5 } else { 1.0 };
    let last = (n - 1) as f64;
    let at = |i: f64| v[i.clamp(0.0, last) as usize];
    let (a, b) = (at(below), at(below + 1.0));
    // NumPy's `_lerp` with gamma ≥ 0.5.
    b - (b - a) * (1.0 - gamma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deviation_merges_to_what_one_pass_gives() {
        // A large mean against a small spread; the exact deviation (from rational arithmetic)
        // is 5.343446359794398.
        let values: Vec<f64> = (0..1000).map(|i| 1e9 + f64::from(i % 37) * 0.5).collect();
        let want = 5.343_446_359_794_398;
        let mut whole = StdDev::default();
        let mut parts = [StdDev::default(), StdDev::default(), StdDev::default()];
        for (i, v) in values.iter().enumerate() {
            whole.add(Some(*v));
            parts[i % 3].add(Some(*v));
        }
        let [a, b, c] = parts;
        let mut merged = StdDev::default();
        merged.merge(c);
        merged.merge(a);
        merged.merge(b);
        for got in [whole.finish().expect("sd"), merged.finish().expect("sd")] {
            let got = got.expect("values");
            assert!((got - want).abs() < 1e-14 * want, "{got} vs {want}");
        }
        assert_eq!(StdDev::default().finish().expect("sd"), None);
    }

    #[test]
    fn drift_is_zero_for_the_baseline_and_grows_with_a_shift() {
        // Baseline: four equal buckets at inner edges 1, 2, 3.
        let (inner, base) = ([1.0, 2.0, 3.0], [0.25, 0.25, 0.25, 0.25]);
        let group = |v: &[f64]| {
            let mut q = QuantileEdges::default();
            for x in v {
                q.add(Some(*x));
            }
            q
        };
        assert_eq!(group(&[0.5, 1.5, 2.5, 3.5]).drift(&inner, &base).expect("drift"), Some(0.0));
        // Everything moved above the last edge: p = (0, 0, 0, 1), q = ¼ each, m = (⅛, ⅛, ⅛, ⅝),
        // JS = ½·KL(p‖m) + ½·KL(q‖m) = ½·log2(1/⅝) + ½·(3·¼·log2(2) + ¼·log2(¼/⅝)).
        let want = 0.5 * (1.0f64 / 0.625).log2() + 0.5 * (0.75 + 0.25 * (0.25f64 / 0.625).log2());
        let got = group(&[4.0, 5.0, 9.0]).drift(&inner, &base).expect("drift").expect("values");
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        assert_eq!(group(&[]).drift(&inner, &base).expect("drift"), None);
        assert_eq!(jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]), 1.0);

        // Strings: CA 50%, TX 30%, others 20% in the baseline; here CA 25%, TX 25%, others 50%.
        let mut t = TopValues::default();
        for s in ["CA", "TX", "NY", "WA"] {
            t.add(Some(s.to_string()));
        }
        let d = t.drift(&["CA", "TX"], &[0.5, 0.3, 0.2]).expect("drift").expect("values");
        assert!((d - 0.3).abs() < 1e-15, "{d}");
    }

    #[test]
    fn edges_and_top_values_are_numpy_s_and_do_not_depend_on_order() {
        let mut e = QuantileEdges::default();
        for v in [10.0, 1.0, 7.0, 3.0, 5.0] {
            e.add(Some(v));
        }
        // np.percentile([1, 3, 5, 7, 10], [0, 25, 50, 75, 100], method="averaged_inverted_cdf")
        // = [1, 3, 5, 7, 10]; at halves [1, 5, 10]; with a sixth value 12 at thirds the ranks 2
        // and 4 are whole: [1, 4, 8.5, 12].
        assert_eq!(e.clone().edges(4).expect("edges"), vec![1.0, 3.0, 5.0, 7.0, 10.0]);
        assert_eq!(e.clone().edges(2).expect("edges"), vec![1.0, 5.0, 10.0]);
        e.add(Some(12.0));
        assert_eq!(e.edges(3).expect("edges"), vec![1.0, 4.0, 8.5, 12.0]);
        let mut t = TopValues::default();
        let mut u = TopValues::default();
        for (i, s) in ["b", "a", "c", "a", "b", "d"].iter().enumerate() {
            if i % 2 == 0 { &mut t } else { &mut u }.add(Some((*s).to_string()));
        }
        t.merge(u);
        assert_eq!(t.top(3).expect("top"), vec!["a", "b", "c"]);
    }
}
