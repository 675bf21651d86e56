//! Accumulators of the model-evaluation aggregates — `auc`, `log_loss`, `accuracy` and
//! `quantile_means` — that the `metrics` step is made of. Each gives the value scikit-learn
//! gives on the same rows (`roc_auc_score`, `log_loss`, `accuracy_score`, and
//! `calibration_curve(strategy="quantile")`), and none depends on the order rows arrive in or
//! on how they were split between workers: the area under the curve is counted in integers over
//! the sorted scores, losses are summed exactly, bins are cut from the sorted values.

use serde::{Deserialize, Serialize};

use crate::agg::{Acc, ExactSum, Supplies};
use crate::record::Res;
use crate::stats::percentile;

/// A row's score and label, either of which may be null (the row is then skipped).
pub type Scored = (Option<f64>, Option<bool>);

/// A pair of inputs supplies a value when both are there.
impl<A, B> Supplies for (Option<A>, Option<B>) {
    #[inline]
    fn supplies(&self) -> bool {
        self.0.is_some() && self.1.is_some()
    }
}

/// The score and label of a row that has both (a NaN score counts as missing).
#[inline]
fn present(v: Scored) -> Option<(f64, bool)> {
    match v {
        (Some(s), Some(l)) if !s.is_nan() => Some((s, l)),
        _ => None,
    }
}

/// `auc(score, label)`: the area under the ROC curve — the chance that a random positive row
/// scores above a random negative one, ties counting half. Null unless the group has rows of
/// both labels (scikit-learn raises an error there).
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Auc(Vec<(f64, bool)>);

impl Acc for Auc {
    type In = Scored;
    type Out = Option<f64>;
    #[inline]
    fn add(&mut self, v: Scored) {
        if let Some(p) = present(v) {
            self.0.push(p);
        }
    }
    fn merge(&mut self, o: Self) {
        self.0.extend(o.0);
    }
    fn finish(mut self) -> Res<Option<f64>> {
        // Walk the scores from the highest down, one run of equal scores at a time: the ROC
        // curve moves by (negatives, positives) of the run, and the trapezoid under that move
        // has twice the area `negatives * (2 * positives before + positives)` in units of
        // one positive by one negative — an integer, so the sum is exact.
        self.0.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let (mut pos, mut neg, mut twice_area) = (0u128, 0u128, 0u128);
        let mut i = 0;
        while i < self.0.len() {
            let score = self.0[i].0;
            let (mut p, mut n) = (0u128, 0u128);
            while i < self.0.len() && self.0[i].0.total_cmp(&score).is_eq() {
                if self.0[i].1 {
                    p += 1;
                } else {
                    n += 1;
                }
                i += 1;
            }
            twice_area += n * (2 * pos + p);
            pos += p;
            neg += n;
        }
        if pos == 0 || neg == 0 {
            return Ok(None);
        }
        Ok(Some(twice_area as f64 / (2 * pos * neg) as f64))
    }
}

/// `log_loss(score, label)`: the mean of `-ln(score)` over positive rows and `-ln(1 - score)`
/// over negative ones, the score clipped to `[ε, 1 - ε]` (ε = `f64::EPSILON`, as
/// scikit-learn). Null for a group without rows.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct LogLoss {
    sum: ExactSum,
    n: u64,
}

impl Acc for LogLoss {
    type In = Scored;
    type Out = Option<f64>;
    #[inline]
    fn add(&mut self, v: Scored) {
        if let Some((s, l)) = present(v) {
            let p = s.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
            self.sum.add(-(if l { p } else { 1.0 - p }).ln());
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

/// `accuracy(score, label, threshold)`: the share of rows whose prediction — positive when the
/// score is above the threshold, as a classifier's `predict` and Keras' `BinaryAccuracy` —
/// equals the label. Its input is the prediction (the generated code compares the score with
/// the threshold written in the program) and the label. Null for a group without rows.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Accuracy {
    right: u64,
    n: u64,
}

impl Acc for Accuracy {
    type In = (Option<bool>, Option<bool>);
    type Out = Option<f64>;
    #[inline]
    fn add(&mut self, v: (Option<bool>, Option<bool>)) {
        if let (Some(predicted), Some(label)) = v {
            self.right += u64::from(predicted == label);
            self.n += 1;
        }
    }
    fn merge(&mut self, o: Self) {
        self.right += o.right;
        self.n += o.n;
    }
    fn finish(self) -> Res<Option<f64>> {
        Ok((self.n > 0).then(|| self.right as f64 / self.n as f64))
    }
}

/// `quantile_means(x, by, bins)`: the rows cut into `bins` bins at the quantiles of `by`
/// (interpolated linearly, as NumPy's `percentile`; a row equal to an edge goes to the lower
/// bin, as `searchsorted`), and the mean of `x` in each bin that has rows, in order. With
/// `x = by = score` and `x = label` it is scikit-learn's `calibration_curve(…,
/// strategy="quantile")`: the mean prediction and the observed rate per bin.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct QuantileMeans(Vec<(f64, f64)>);

impl QuantileMeans {
    /// Adds a row's `(x, by)`; a null or NaN in either skips it.
    #[inline]
    pub fn add(&mut self, v: (Option<f64>, Option<f64>)) {
        if let (Some(x), Some(by)) = v {
            if !x.is_nan() && !by.is_nan() {
                self.0.push((x, by));
            }
        }
    }
    pub fn merge(&mut self, o: Self) {
        self.0.extend(o.0);
    }
    /// The means of the non-empty bins of `bins` (at least 1).
    pub fn means(mut self, bins: usize) -> Res<Vec<f64>> {
        let bins = bins.max(1);
        let n = self.0.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.0.sort_unstable_by(|a, b| a.1.total_cmp(&b.1));
        let by: Vec<f64> = self.0.iter().map(|r| r.1).collect();
        // The inner edges: the `i / bins` quantiles for i in 1..bins.
        let step = 1.0 / bins as f64;
        // scikit-learn asks for the percentile `100 q`, which NumPy divides by 100 again.
        let edges: Vec<f64> = (1..bins).map(|i| percentile(&by, (i as f64 * step * 100.0) / 100.0)).collect();
        let mut sums = vec![ExactSum::default(); bins];
        let mut counts = vec![0u64; bins];
        // Sorted by `by`, a row's bin (the number of edges strictly below it) never decreases.
        let mut bin = 0;
        for &(x, b) in &self.0 {
            while bin < edges.len() && edges[bin] < b {
                bin += 1;
            }
            sums[bin].add(x);
            counts[bin] += 1;
        }
        Ok(sums.iter().zip(&counts).filter(|(_, c)| **c > 0).map(|(s, c)| s.value() / *c as f64).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(scores: &[f64], labels: &[bool]) -> Vec<Scored> {
        scores.iter().zip(labels).map(|(s, l)| (Some(*s), Some(*l))).collect()
    }

    fn fold<A: Acc<In = Scored>>(parts: &[Vec<Scored>]) -> A::Out {
        let mut total = A::default();
        for part in parts {
            let mut a = A::default();
            for v in part {
                a.add(*v);
            }
            total.merge(a);
        }
        total.finish().expect("finishes")
    }

    #[test]
    fn auc_counts_ties_half_and_is_null_with_one_class() {
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let r = rows(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert_eq!(fold::<Auc>(std::slice::from_ref(&r)), Some(0.75));
        // Split between workers in another order: the same value.
        assert_eq!(fold::<Auc>(&[r[2..].to_vec(), r[..2].to_vec()]), Some(0.75));
        // A positive and a negative with the same score count half: 0.5.
        assert_eq!(fold::<Auc>(&[rows(&[0.3, 0.3], &[true, false])]), Some(0.5));
        // roc_auc_score([1, 0, 1, 0, 1], [0.9, 0.8, 0.5, 0.5, 0.2]) == 0.41666…
        let tied = rows(&[0.9, 0.8, 0.5, 0.5, 0.2], &[true, false, true, false, true]);
        assert_eq!(fold::<Auc>(&[tied]), Some(2.5 / 6.0));
        assert_eq!(fold::<Auc>(&[rows(&[0.1, 0.9], &[true, true])]), None);
        // Nulls and NaN scores are skipped.
        let gaps = vec![(None, Some(true)), (Some(0.2), None), (Some(f64::NAN), Some(false)), (Some(0.7), Some(true))];
        assert_eq!(fold::<Auc>(&[gaps, rows(&[0.1], &[false])]), Some(1.0));
    }

    #[test]
    fn log_loss_clips_like_scikit_learn() {
        // log_loss([1, 0, 1], [0.9, 0.2, 0.6]) = (-ln .9 - ln .8 - ln .6) / 3
        let want = (-(0.9f64.ln()) - 0.8f64.ln() - 0.6f64.ln()) / 3.0;
        let got = fold::<LogLoss>(&[rows(&[0.9, 0.2, 0.6], &[true, false, true])]).expect("rows");
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        // A certain wrong prediction costs -ln(ε), not infinity.
        let got = fold::<LogLoss>(&[rows(&[0.0], &[true])]).expect("rows");
        assert_eq!(got, -(f64::EPSILON.ln()));
        assert_eq!(fold::<LogLoss>(&[vec![(None, Some(true))]]), None);
    }

    #[test]
    fn accuracy_counts_predictions_equal_to_labels() {
        let mut a = Accuracy::default();
        for v in [(Some(false), Some(false)), (Some(true), Some(true)), (Some(false), Some(true)), (None, Some(true))] {
            a.add(v);
        }
        assert_eq!(a.finish().expect("finishes"), Some(2.0 / 3.0));
    }

    #[test]
    fn quantile_means_bin_like_numpy() {
        // np.percentile([1..10], [25, 50, 75]) = [3.25, 5.5, 7.75]: bins {1,2,3}, {4,5},
        // {6,7}, {8,9,10}.
        let mut q = QuantileMeans::default();
        for v in (1..=10).rev() {
            q.add((Some(f64::from(v) * 10.0), Some(f64::from(v))));
        }
        assert_eq!(q.clone().means(4).expect("means"), vec![20.0, 45.0, 65.0, 90.0]);
        // Edges equal to values: a row on an edge goes below it, and empty bins are left out.
        // np.percentile([0, 0, 0, 1], [50]) = 0: bins {0, 0, 0} and {1}.
        let mut q = QuantileMeans::default();
        for b in [0.0, 1.0, 0.0, 0.0] {
            q.add((Some(b), Some(b)));
        }
        assert_eq!(q.means(2).expect("means"), vec![0.0, 1.0]);
        assert_eq!(QuantileMeans::default().means(10).expect("means"), Vec::<f64>::new());
    }
}
