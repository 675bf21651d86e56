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
