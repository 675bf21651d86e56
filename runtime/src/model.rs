//! Scoring kernels for compiled models. The generated code holds each model's trees as static
//! tables (one flat array per node attribute, with per-tree offsets); these kernels walk them.
//! The semantics are the libraries' own, so predictions match them: LightGBM in f64 with its
//! missing-value types and categorical bitsets, XGBoost in f32 with default directions.

/// LightGBM's `kZeroThreshold` (an f32 constant, compared as f64).
const ZERO: f64 = 1e-35f32 as f64;

/// A LightGBM forest. Node `k` of tree `t` is at `node_base[t] + k`; a negative child `c` is
/// leaf `!c`, at `leaf_base[t] + !c`.
#[derive(Debug)]
pub struct Lgb {
    pub node_base: &'static [u32],
    pub leaf_base: &'static [u32],
    pub feature: &'static [u32],
    pub threshold: &'static [f64],
    pub decision: &'static [u8],
    pub left: &'static [i32],
    pub right: &'static [i32],
    pub leaf: &'static [f64],
    /// For a categorical node: where its bitset starts in `cat_bits`, and its length in words.
    pub cat_start: &'static [u32],
    pub cat_len: &'static [u32],
    pub cat_bits: &'static [u32],
    /// `Some(s)` for a binary objective: the probability is `1 / (1 + exp(-s · raw))`.
    pub sigmoid: Option<f64>,
}

impl Lgb {
    #[inline]
    fn goes_left(&self, k: usize, x: f64) -> bool {
        let d = self.decision[k];
        if d & 1 == 1 {
            // Categorical: NaN and negative values go right; a set bit goes left.
            if x.is_nan() || x < 0.0 {
                return false;
            }
            let v = x as i64;
            let word = (v / 32) as usize;
            if word >= self.cat_len[k] as usize {
                return false;
            }
            return (self.cat_bits[self.cat_start[k] as usize + word] >> (v % 32)) & 1 == 1;
        }
        let missing = (d >> 2) & 3;
        let mut v = x;
        if v.is_nan() && missing != 2 {
            v = 0.0;
        }
        if (missing == 1 && (-ZERO..=ZERO).contains(&v)) || (missing == 2 && v.is_nan()) {
            return d & 2 != 0;
        }
        v <= self.threshold[k]
    }

    /// The raw score: the sum of every tree's leaf, in f64 and tree order.
    pub fn raw(&self, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for t in 0..self.leaf_base.len() {
            let (nb, lb) = (self.node_base[t] as usize, self.leaf_base[t] as usize);
            let nodes = self.node_base.get(t + 1).map_or(self.left.len(), |n| *n as usize) - nb;
            if nodes == 0 {
                sum += self.leaf[lb];
                continue;
            }
            let mut node = 0usize;
            loop {
                let k = nb + node;
                let f = self.feature[k] as usize;
                let v = x.get(f).copied().unwrap_or(f64::NAN);
                let next = if self.goes_left(k, v) { self.left[k] } else { self.right[k] };
                if next < 0 {
                    sum += self.leaf[lb + (!next) as usize];
                    break;
                }
                node = next as usize;
            }
        }
        sum
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        let r = self.raw(x);
        match self.sigmoid {
            Some(s) => 1.0 / (1.0 + (-s * r).exp()),
            None => r,
        }
    }
}

/// An XGBoost forest, in f32 as XGBoost computes. A child of -1 marks a leaf, whose value is
/// its `cond`.
#[derive(Debug)]
pub struct Xgb {
    pub node_base: &'static [u32],
    pub left: &'static [i32],
    pub right: &'static [i32],
    pub feature: &'static [u32],
    pub cond: &'static [f32],
    pub default_left: &'static [bool],
    pub categorical: &'static [bool],
    /// For a categorical node, the categories that go right: `cats[cat_start..cat_start + cat_len]`.
    pub cat_start: &'static [u32],
    pub cat_len: &'static [u32],
    pub cats: &'static [u32],
    pub base_margin: f32,
    pub logistic: bool,
}

impl Xgb {
    pub fn margin(&self, x: &[f64]) -> f32 {
        let mut m = self.base_margin;
        for t in 0..self.node_base.len() {
            let nb = self.node_base[t] as usize;
            let mut k = nb;
            while self.left[k] >= 0 {
                let v = x.get(self.feature[k] as usize).copied().unwrap_or(f64::NAN) as f32;
                let left = if v.is_nan() {
                    self.default_left[k]
                } else if self.categorical[k] {
                    let start = self.cat_start[k] as usize;
                    let set = &self.cats[start..start + self.cat_len[k] as usize];
                    !(v >= 0.0 && set.binary_search(&(v as u32)).is_ok())
                } else {
                    v < self.cond[k]
                };
                k = nb + if left { self.left[k] } else { self.right[k] } as usize;
            }
            m += self.cond[k];
        }
        m
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        let m = self.margin(x);
        if self.logistic {
            f64::from(1.0f32 / (1.0f32 + (-m).exp()))
        } else {
            f64::from(m)
        }
    }
}

/// A linear model; a missing input counts as 0.
#[derive(Debug)]
pub struct Linear {
    pub weights: &'static [f64],
    pub intercept: f64,
    pub logistic: bool,
}

impl Linear {
    pub fn predict(&self, x: &[f64]) -> f64 {
        let z =
            self.intercept + self.weights.iter().zip(x).map(|(w, v)| if v.is_nan() { 0.0 } else { w * v }).sum::<f64>();
        if self.logistic {
            1.0 / (1.0 + (-z).exp())
        } else {
            z
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One tree: node 0 splits feature 0 at 1.5 (missing type NaN, default left), node 1 is a
    // categorical split on feature 1 with categories {2} going left.
    static TREE: Lgb = Lgb {
        node_base: &[0],
        leaf_base: &[0],
        feature: &[0, 1],
        threshold: &[1.5, 0.0],
        decision: &[2 | (2 << 2), 1],
        left: &[1, -1],
        right: &[-3, -2],
        leaf: &[10.0, 20.0, 30.0],
        cat_start: &[0, 0],
        cat_len: &[0, 1],
        cat_bits: &[0b100],
        sigmoid: None,
    };

    #[test]
    fn lightgbm_decisions() {
        assert_eq!(TREE.raw(&[1.0, 2.0]), 10.0);
        assert_eq!(TREE.raw(&[1.0, 3.0]), 20.0);
        assert_eq!(TREE.raw(&[1.0, f64::NAN]), 20.0);
        assert_eq!(TREE.raw(&[1.0, -2.0]), 20.0);
        assert_eq!(TREE.raw(&[2.0, 2.0]), 30.0);
        assert_eq!(TREE.raw(&[f64::NAN, 2.0]), 10.0, "missing goes the default way (left)");
    }
}
