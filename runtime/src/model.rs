//! Scoring kernels for compiled models. The generated code holds each model's trees as static
//! tables (packed nodes with per-tree offsets); these kernels walk them. A forest of numerical
//! splits is walked over bin indices ([`Binned`]: each row binned once, every split a compare
//! of two `u16`s); one with categorical splits over its values ([`Lgb`], [`Xgb`]). The
//! semantics are the libraries' own, so predictions match them: LightGBM in f64 with its
//! missing-value types and categorical bitsets, XGBoost in f32 with default directions.

/// LightGBM's `kZeroThreshold` (an f32 constant, compared as f64).
const ZERO: f64 = 1e-35f32 as f64;

/// One LightGBM split, packed so a visit touches one cache line: the threshold (or, for a
/// categorical split, the start of its bitset in `cat_bits`), the children (a negative child
/// `c` is leaf `!c` of the tree), the feature, the decision type and the bitset's length.
#[derive(Debug, Clone, Copy)]
pub struct LgbNode {
    pub threshold: f64,
    pub left: i32,
    pub right: i32,
    pub feature: u32,
    pub cat_len: u16,
    pub decision: u8,
}

/// A node, written compactly in generated tables.
pub const fn lgb(threshold: f64, left: i32, right: i32, feature: u32, decision: u8, cat_len: u16) -> LgbNode {
    LgbNode { threshold, left, right, feature, cat_len, decision }
}

/// Trees walked side by side: their walks are independent chains of loads and compares, so the
/// CPU overlaps them instead of waiting on one tree's next node at a time.
const LANES: usize = 8;

/// A LightGBM forest: tree `t`'s nodes start at `node_base[t]`, its leaves at `leaf_base[t]`,
/// and its deepest leaf is `depth[t]` splits down.
#[derive(Debug)]
pub struct Lgb {
    pub node_base: &'static [u32],
    pub leaf_base: &'static [u32],
    pub depth: &'static [u8],
    pub nodes: &'static [LgbNode],
    pub leaf: &'static [f64],
    pub cat_bits: &'static [u32],
    /// `Some(s)` for a binary objective: the probability is `1 / (1 + exp(-s · raw))`.
    pub sigmoid: Option<f64>,
}

impl Lgb {
    #[inline(always)]
    fn goes_left(&self, n: &LgbNode, x: f64) -> bool {
        let d = n.decision;
        if d & 1 == 1 {
            return self.categorical_left(n, x);
        }
        // Numerical, without branches on the data (a tree walk is a chain of unpredictable
        // decisions; as selects, the walks of different trees overlap in the CPU): NaN is 0
        // unless the missing type is NaN; a zero (type Zero) or a NaN (type NaN) takes the
        // default direction; otherwise `x <= threshold`.
        let missing = (d >> 2) & 3;
        let is_nan = x.is_nan();
        let v = if is_nan & (missing != 2) { 0.0 } else { x };
        let take_default = ((missing == 1) & (-ZERO..=ZERO).contains(&v)) | ((missing == 2) & is_nan);
        let default_left = d & 2 != 0;
        (take_default & default_left) | (!take_default & (v <= n.threshold))
    }

    #[inline(never)]
    fn categorical_left(&self, n: &LgbNode, x: f64) -> bool {
        // NaN goes right; LightGBM truncates to an integer first (-0.5 is category 0), and a
        // negative category goes right; a set bit goes left.
        if x.is_nan() {
            return false;
        }
        let v = x as i64;
        if v < 0 {
            return false;
        }
        let word = (v / 32) as usize;
        if word >= n.cat_len as usize {
            return false;
        }
        self.cat_bits.get(n.threshold as usize + word).is_some_and(|w| (w >> (v % 32)) & 1 == 1)
    }

    fn tree_nodes(&self, t: usize) -> (usize, usize) {
        let nb = self.node_base[t] as usize;
        let end = self.node_base.get(t + 1).map_or(self.nodes.len(), |n| *n as usize);
        (nb, end)
    }

    /// One step of a walk without branches: from node `cur` (or a reached leaf `!leaf`, which
    /// stays put) to the child `x` goes to.
    #[inline(always)]
    fn step(&self, node: &LgbNode, x: &[f64], cur: i32) -> i32 {
        let v = x.get(node.feature as usize).copied().unwrap_or(f64::NAN);
        let left = -i32::from(self.goes_left(node, v));
        let next = node.right ^ ((node.left ^ node.right) & left);
        let done = cur >> 31; // -1 at a leaf, 0 inside the tree
        (cur & done) | (next & !done)
    }

    /// The leaf `x` reaches in a tree of at least one split.
    fn leaf_of(&self, tree: &[LgbNode], x: &[f64]) -> usize {
        let mut cur = 0i32;
        while cur >= 0 {
            cur = self.step(&tree[cur as usize], x, cur);
        }
        (!cur) as usize
    }

    /// The raw score: the sum of every tree's leaf, in f64 and tree order.
    #[allow(clippy::needless_range_loop, reason = "a lane indexes several arrays in step")]
    pub fn raw(&self, x: &[f64]) -> f64 {
        let trees = self.leaf_base.len();
        let last = self.nodes.len().saturating_sub(1);
        let mut sum = 0.0;
        let mut t = 0;
        while t + LANES <= trees && !self.nodes.is_empty() {
            // Each lane holds its tree's current node (>= 0) or reached leaf (`!leaf` < 0).
            let mut base = [0usize; LANES];
            let mut at = [0i32; LANES];
            let mut depth = 0u8;
            for lane in 0..LANES {
                let (nb, end) = self.tree_nodes(t + lane);
                base[lane] = nb;
                at[lane] = if end > nb { 0 } else { -1 };
                depth = depth.max(self.depth[t + lane]);
            }
            for _ in 0..depth {
                for lane in 0..LANES {
                    let cur = at[lane];
                    at[lane] = self.step(&self.nodes[(base[lane] + cur.max(0) as usize).min(last)], x, cur);
                }
            }
            for lane in 0..LANES {
                sum += self.leaf[self.leaf_base[t + lane] as usize + (!at[lane]) as usize];
            }
            t += LANES;
        }
        for t in t..trees {
            let lb = self.leaf_base[t] as usize;
            let (nb, end) = self.tree_nodes(t);
            let tree = &self.nodes[nb..end];
            sum += self.leaf[lb + if tree.is_empty() { 0 } else { self.leaf_of(tree, x) }];
        }
        sum
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        self.link(self.raw(x))
    }

    fn link(&self, r: f64) -> f64 {
        lgb_link(self.sigmoid, r)
    }

    /// Scores a block of rows a tree at a time (the tree stays in cache), walking eight rows
    /// side by side through it; each row's leaves are still added in tree order.
    #[allow(clippy::needless_range_loop, reason = "a lane indexes several arrays in step")]
    pub fn predict_block<const N: usize>(&self, rows: &[[f64; N]], out: &mut Vec<f64>) {
        out.clear();
        out.resize(rows.len(), 0.0);
        for t in 0..self.leaf_base.len() {
            let lb = self.leaf_base[t] as usize;
            let (nb, end) = self.tree_nodes(t);
            let tree = &self.nodes[nb..end];
            if tree.is_empty() {
                for sum in out.iter_mut() {
                    *sum += self.leaf[lb];
                }
                continue;
            }
            let depth = self.depth[t];
            let mut r = 0;
            while r + LANES <= rows.len() {
                let mut at = [0i32; LANES];
                for _ in 0..depth {
                    for lane in 0..LANES {
                        let cur = at[lane];
                        at[lane] = self.step(&tree[cur.max(0) as usize], &rows[r + lane], cur);
                    }
                }
                for lane in 0..LANES {
                    out[r + lane] += self.leaf[lb + (!at[lane]) as usize];
                }
                r += LANES;
            }
            for (x, sum) in rows[r..].iter().zip(out[r..].iter_mut()) {
                *sum += self.leaf[lb + self.leaf_of(tree, x)];
            }
        }
        for v in out.iter_mut() {
            *v = self.link(*v);
        }
    }
}

/// One XGBoost node, packed: the split value (the leaf value at a leaf), the children (-1 at
/// a leaf), the feature, the default direction, and for a categorical split where its
/// categories (which go right) are in `cats`.
#[derive(Debug, Clone, Copy)]
pub struct XgbNode {
    pub cond: f32,
    pub left: i32,
    pub right: i32,
    pub feature: u32,
    pub cat_start: u32,
    pub cat_len: u16,
    pub default_left: bool,
    pub categorical: bool,
}

/// A node, written compactly in generated tables.
#[allow(clippy::too_many_arguments, reason = "one argument per field, for compact generated tables")]
pub const fn xgb(
    cond: f32,
    left: i32,
    right: i32,
    feature: u32,
    default_left: bool,
    categorical: bool,
    cat_start: u32,
    cat_len: u16,
) -> XgbNode {
    XgbNode { cond, left, right, feature, cat_start, cat_len, default_left, categorical }
}

/// An XGBoost forest, in f32 as XGBoost computes. Tree `t`'s nodes start at `node_base[t]`,
/// and its deepest leaf is `depth[t]` splits down.
#[derive(Debug)]
pub struct Xgb {
    pub node_base: &'static [u32],
    pub depth: &'static [u8],
    pub nodes: &'static [XgbNode],
    pub cats: &'static [u32],
    pub base_margin: f32,
    pub logistic: bool,
}

impl Xgb {
    #[inline(always)]
    fn goes_left(&self, node: &XgbNode, x: f64) -> bool {
        let v = x as f32;
        if node.categorical {
            return self.categorical_left(node, v);
        }
        // Without branches on the data: a missing value takes the default direction.
        let nan = v.is_nan();
        (nan & node.default_left) | (!nan & (v < node.cond))
    }

    #[inline(never)]
    fn categorical_left(&self, node: &XgbNode, v: f32) -> bool {
        if v.is_nan() {
            return node.default_left;
        }
        let start = node.cat_start as usize;
        let set = self.cats.get(start..start + node.cat_len as usize).unwrap_or_default();
        // A category in the set goes right.
        !(v >= 0.0 && set.binary_search(&(v as u32)).is_ok())
    }

    fn tree_nodes(&self, t: usize) -> (usize, usize) {
        let nb = self.node_base[t] as usize;
        let end = self.node_base.get(t + 1).map_or(self.nodes.len(), |n| *n as usize);
        (nb, end)
    }

    /// One step of a walk without branches: from node `at` of `tree` to the child `x` goes
    /// to; a leaf stays put.
    #[inline(always)]
    fn step(&self, tree: &[XgbNode], x: &[f64], at: usize) -> usize {
        let node = &tree[at];
        let v = x.get(node.feature as usize).copied().unwrap_or(f64::NAN);
        let left = -i32::from(self.goes_left(node, v));
        let next = node.right ^ ((node.left ^ node.right) & left);
        let leaf = -i32::from(node.left < 0);
        ((at as i32 & leaf) | (next & !leaf)) as usize
    }

    /// The value of the leaf `x` reaches.
    fn leaf_value(&self, tree: &[XgbNode], x: &[f64]) -> f32 {
        let mut at = 0;
        while tree[at].left >= 0 {
            at = self.step(tree, x, at);
        }
        tree[at].cond
    }

    /// The margin: `base_margin` plus every tree's leaf, added in f32 in tree order.
    #[allow(clippy::needless_range_loop, reason = "a lane indexes several arrays in step")]
    pub fn margin(&self, x: &[f64]) -> f32 {
        let trees = self.node_base.len();
        let last = self.nodes.len().saturating_sub(1);
        let mut m = self.base_margin;
        let mut t = 0;
        while t + LANES <= trees && !self.nodes.is_empty() {
            // Each lane holds its tree's current node; leaves have no children.
            let mut base = [0usize; LANES];
            let mut at = [0usize; LANES];
            let mut depth = 0u8;
            for lane in 0..LANES {
                base[lane] = self.tree_nodes(t + lane).0;
                depth = depth.max(self.depth[t + lane]);
            }
            for _ in 0..depth {
                for lane in 0..LANES {
                    let (nb, end) = self.tree_nodes(t + lane);
                    at[lane] = self.step(&self.nodes[nb..end], x, at[lane]);
                }
            }
            for lane in 0..LANES {
                m += self.nodes[(base[lane] + at[lane]).min(last)].cond;
            }
            t += LANES;
        }
        for t in t..trees {
            let (nb, end) = self.tree_nodes(t);
            m += self.leaf_value(&self.nodes[nb..end], x);
        }
        m
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        self.link(self.margin(x))
    }

    fn link(&self, m: f32) -> f64 {
        xgb_link(self.logistic, m)
    }

    /// Scores a block of rows a tree at a time, eight rows side by side (see
    /// [`Lgb::predict_block`]); each row's margin is still summed in f32 in tree order.
    #[allow(clippy::needless_range_loop, reason = "a lane indexes several arrays in step")]
    pub fn predict_block<const N: usize>(&self, rows: &[[f64; N]], out: &mut Vec<f64>) {
        let mut margins = vec![self.base_margin; rows.len()];
        for t in 0..self.node_base.len() {
            let (nb, end) = self.tree_nodes(t);
            let tree = &self.nodes[nb..end];
            let depth = self.depth[t];
            let mut r = 0;
            while r + LANES <= rows.len() {
                let mut at = [0usize; LANES];
                for _ in 0..depth {
                    for lane in 0..LANES {
                        at[lane] = self.step(tree, &rows[r + lane], at[lane]);
                    }
                }
                for lane in 0..LANES {
                    margins[r + lane] += tree[at[lane]].cond;
                }
                r += LANES;
            }
            for (x, m) in rows[r..].iter().zip(margins[r..].iter_mut()) {
                *m += self.leaf_value(tree, x);
            }
        }
        out.clear();
        out.extend(margins.into_iter().map(|m| self.link(m)));
    }
}

/// One split of a forest whose thresholds are all known when the pipeline compiles, as an
/// 8-byte node over bin indices (see [`Binned`]): the threshold's bin, the column of the row's
/// bins it reads, and the left child (the right child follows it).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub struct BinNode {
    pub bin: u16,
    pub column: u16,
    pub left: u16,
}

/// A binned node, written compactly in generated tables.
pub const fn bin_node(bin: u16, column: u16, left: u16) -> BinNode {
    BinNode { bin, column, left }
}

/// The trees of a forest of numerical splits, walked over bin indices instead of values. Each
/// feature's thresholds `c_1 < … < c_k` (every split of every tree on it, sorted, from
/// `cut_base[f]` in the model's `cuts`) cut the line into bins, and a row is binned once (a
/// binary search per feature); every split after that compares two `u16`s. For XGBoost's
/// `v < c_j` a value is bin `1 + #{c ≤ v}`, for LightGBM's `v <= c_j` bin `1 + #{c < v}`; either
/// way the split goes left exactly when the bin is below `j + 1`. A value that takes the split's
/// default direction (a missing one) is bin 0 in the columns read by splits whose default is
/// left and `u16::MAX - 1` in those whose default is right, so every split is the same compare.
/// A leaf points at itself with threshold `u16::MAX`, which no bin reaches, so a walk of a
/// tree's full depth stays on the leaf it reached. Nodes are numbered so that the
/// children of a split are adjacent; a model's `value` holds each leaf's value at its node's
/// index.
#[derive(Debug)]
pub struct Binned {
    pub node_base: &'static [u32],
    pub depth: &'static [u8],
    pub nodes: &'static [BinNode],
}

/// The bin of a value that takes the default direction in a column of splits whose default is
/// right: above every threshold's bin, below a leaf's.
const MISSING_RIGHT: u16 = u16::MAX - 1;

/// Rows walked side by side through a binned tree (their walks are independent, and eight
/// positions stay in registers).
const BIN_LANES: usize = 8;

impl Binned {
    #[inline(always)]
    fn step<const N: usize, const K: usize>(tree: &[BinNode], bins: &[[u16; N]; K], at: u16) -> u16 {
        let n = &tree[usize::from(at)];
        let b = bins.as_flattened().get(usize::from(n.column)).copied().unwrap_or(0);
        n.left + u16::from(b >= n.bin)
    }

    /// Adds to each row's sum the value of the leaf it reaches in every tree, in tree order, a
    /// tree at a time over the block; a row has `K` columns of bins of its `N` features.
    #[allow(clippy::needless_range_loop, reason = "a lane indexes several arrays in step")]
    fn walk<S: Copy + std::ops::AddAssign, const N: usize, const K: usize>(
        &self,
        value: &[S],
        bins: &[[[u16; N]; K]],
        sums: &mut [S],
    ) {
        for t in 0..self.node_base.len() {
            let nb = self.node_base[t] as usize;
            let end = self.node_base.get(t + 1).map_or(self.nodes.len(), |n| *n as usize);
            let (tree, value) = (&self.nodes[nb..end], &value[nb..end]);
            let depth = self.depth[t];
            let mut lanes = bins.chunks_exact(BIN_LANES);
            let mut groups = sums.chunks_exact_mut(BIN_LANES);
            for (b, m) in (&mut lanes).zip(&mut groups) {
                let mut at = [0u16; BIN_LANES];
                for _ in 0..depth {
                    for lane in 0..BIN_LANES {
                        at[lane] = Self::step(tree, &b[lane], at[lane]);
                    }
                }
                for lane in 0..BIN_LANES {
                    m[lane] += value[usize::from(at[lane])];
                }
            }
            for (b, m) in lanes.remainder().iter().zip(groups.into_remainder()) {
                let mut at = 0;
                for _ in 0..depth {
                    at = Self::step(tree, b, at);
                }
                *m += value[usize::from(at)];
            }
        }
    }
}

/// The features' thresholds of `cut_base`/`cuts` as a slice each.
fn feature_cuts<'c, C>(cut_base: &[u32], cuts: &'c [C], f: usize) -> &'c [C] {
    let Some(&[lo, hi]) = cut_base.get(f..f + 2) else { return &[] };
    cuts.get(lo as usize..hi as usize).unwrap_or_default()
}

/// An XGBoost forest of numerical splits over bins ([`Binned`]); values are compared as f32,
/// as XGBoost compares them. A row has two columns of bins: `f` for splits whose missing values
/// go left, `N + f` for those whose go right, with `N` the model's features.
#[derive(Debug)]
pub struct XgbBinned {
    pub trees: Binned,
    pub value: &'static [f32],
    pub cut_base: &'static [u32],
    pub cuts: &'static [f32],
    pub base_margin: f32,
    pub logistic: bool,
}

impl XgbBinned {
    /// Scores a block of rows; each row's margin is summed in f32 in tree order, as XGBoost
    /// sums it.
    pub fn predict_block<const N: usize>(&self, rows: &[[f64; N]], out: &mut Vec<f64>) {
        let bins: Vec<[[u16; N]; 2]> = rows
            .iter()
            .map(|x| {
                let mut b = [[0u16; N]; 2];
                for (f, v) in x.iter().enumerate() {
                    let v = *v as f32;
                    let bin = if v.is_nan() {
                        None
                    } else {
                        Some(1 + feature_cuts(self.cut_base, self.cuts, f).partition_point(|c| *c <= v) as u16)
                    };
                    b[0][f] = bin.unwrap_or(0);
                    b[1][f] = bin.unwrap_or(MISSING_RIGHT);
                }
                b
            })
            .collect();
        let mut margins = vec![self.base_margin; rows.len()];
        self.trees.walk(self.value, &bins, &mut margins);
        out.clear();
        out.extend(margins.into_iter().map(|m| xgb_link(self.logistic, m)));
    }

    pub fn predict<const N: usize>(&self, x: &[f64; N]) -> f64 {
        let mut out = Vec::with_capacity(1);
        self.predict_block(std::slice::from_ref(x), &mut out);
        out[0]
    }
}

/// A LightGBM forest of numerical splits over bins ([`Binned`]), compared in f64. LightGBM's
/// splits treat a missing value three ways (missing type NaN: a NaN takes the default; None: a
/// NaN is 0.0; Zero: a NaN or a value within `kZeroThreshold` of zero takes the default), each
/// with a default to the left or right: a row has one column of bins per way the model's
/// splits use (`columns`), column `c` of feature `f` at `c·N + f`, with `N` the model's
/// features (its inputs, in order).
#[derive(Debug)]
pub struct LgbBinned<const K: usize> {
    pub trees: Binned,
    pub value: &'static [f64],
    pub cut_base: &'static [u32],
    pub cuts: &'static [f64],
    pub columns: [BinColumn; K],
    pub sigmoid: Option<f64>,
}

/// A column of LightGBM bins: the missing type of the splits that read it (0 NaN, 1 None,
/// 2 Zero) and whether their default direction is right.
#[derive(Debug, Clone, Copy)]
pub struct BinColumn {
    pub missing: u8,
    pub right: bool,
}

impl<const K: usize> LgbBinned<K> {
    /// Scores a block of rows; each row's leaves are summed in f64 in tree order.
    pub fn predict_block<const N: usize>(&self, rows: &[[f64; N]], out: &mut Vec<f64>) {
        let bins: Vec<[[u16; N]; K]> = rows
            .iter()
            .map(|x| {
                let mut b = [[0u16; N]; K];
                for (f, v) in x.iter().enumerate() {
                    let cuts = feature_cuts(self.cut_base, self.cuts, f);
                    let bin = |v: f64| Some(1 + cuts.partition_point(|c| *c < v) as u16);
                    // Per missing type (NaN, None, Zero): the bin, or None to take the default.
                    let kinds = if v.is_nan() {
                        [None, bin(0.0), None]
                    } else {
                        let at = bin(*v);
                        [at, at, if (-ZERO..=ZERO).contains(v) { None } else { at }]
                    };
                    for (b, c) in b.iter_mut().zip(&self.columns) {
                        let at = kinds.get(usize::from(c.missing)).copied().flatten();
                        b[f] = at.unwrap_or(if c.right { MISSING_RIGHT } else { 0 });
                    }
                }
                b
            })
            .collect();
        let mut sums = vec![0.0; rows.len()];
        self.trees.walk(self.value, &bins, &mut sums);
        out.clear();
        out.extend(sums.into_iter().map(|r| lgb_link(self.sigmoid, r)));
    }

    pub fn predict<const N: usize>(&self, x: &[f64; N]) -> f64 {
        let mut out = Vec::with_capacity(1);
        self.predict_block(std::slice::from_ref(x), &mut out);
        out[0]
    }
}

/// LightGBM's output from a raw score: `1 / (1 + exp(-s · raw))` for a binary objective.
fn lgb_link(sigmoid: Option<f64>, r: f64) -> f64 {
    match sigmoid {
        Some(s) => 1.0 / (1.0 + (-s * r).exp()),
        None => r,
    }
}

/// XGBoost's output from a margin, in f32: the logistic function for a logistic objective.
fn xgb_link(logistic: bool, m: f32) -> f64 {
    if logistic {
        f64::from(1.0f32 / (1.0f32 + (-m).exp()))
    } else {
        f64::from(m)
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
    pub fn predict_block<const N: usize>(&self, rows: &[[f64; N]], out: &mut Vec<f64>) {
        out.clear();
        out.extend(rows.iter().map(|x| self.predict(x)));
    }

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
        depth: &[2],
        nodes: &[lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0), lgb(0.0, -1, -2, 1, 1, 1)],
        leaf: &[10.0, 20.0, 30.0],
        cat_bits: &[0b100],
        sigmoid: None,
    };

    /// Nine copies of the tree (more than a group of lanes), summed.
    static FOREST: Lgb = Lgb {
        node_base: &[0, 2, 4, 6, 8, 10, 12, 14, 16],
        leaf_base: &[0, 3, 6, 9, 12, 15, 18, 21, 24],
        depth: &[2; 9],
        nodes: &[
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
            lgb(1.5, 1, -3, 0, 2 | (2 << 2), 0),
            lgb(0.0, -1, -2, 1, 1, 1),
        ],
        leaf: &[
            10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0,
            10.0, 20.0, 30.0, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0,
        ],
        cat_bits: &[0b100, 0b100, 0b100, 0b100, 0b100, 0b100, 0b100, 0b100, 0b100],
        sigmoid: Some(1.0),
    };

    #[test]
    fn blocks_lanes_and_single_rows_agree() {
        let rows: Vec<[f64; 2]> =
            (0..21).map(|i| [f64::from(i % 4) * 0.75, if i % 5 == 0 { f64::NAN } else { f64::from(i % 4) }]).collect();
        let mut block = Vec::new();
        FOREST.predict_block(&rows, &mut block);
        for (x, b) in rows.iter().zip(&block) {
            assert_eq!(FOREST.predict(x), *b);
            assert_eq!(FOREST.raw(x), 9.0 * TREE.raw(x));
        }
    }

    /// One XGBoost tree two ways: node 0 splits feature 0 at 1.5 (a missing value goes right),
    /// node 1 feature 1 at 2.0 (missing goes left); leaves 30, 10, 20.
    static XGB: Xgb = Xgb {
        node_base: &[0],
        depth: &[2],
        nodes: &[
            xgb(1.5, 1, 2, 0, false, false, 0, 0),
            xgb(2.0, 3, 4, 1, true, false, 0, 0),
            xgb(30.0, -1, -1, 0, false, false, 0, 0),
            xgb(10.0, -1, -1, 0, false, false, 0, 0),
            xgb(20.0, -1, -1, 0, false, false, 0, 0),
        ],
        cats: &[],
        base_margin: 0.5,
        logistic: false,
    };

    /// The same tree over bins: each feature has one threshold, so a value below it is bin 1,
    /// one at or above it bin 2; a split goes right from bin `j + 1` of its `j`-th threshold.
    /// Node 0 reads x0's column for "missing goes right" (2 + 0), node 1 x1's other one (1).
    static XGB_BINNED: XgbBinned = XgbBinned {
        trees: Binned {
            node_base: &[0],
            depth: &[2],
            nodes: &[
                bin_node(2, 2, 1),
                bin_node(2, 1, 3),
                bin_node(u16::MAX, 0, 2),
                bin_node(u16::MAX, 0, 3),
                bin_node(u16::MAX, 0, 4),
            ],
        },
        value: &[0.0, 0.0, 30.0, 10.0, 20.0],
        cut_base: &[0, 1, 2],
        cuts: &[1.5, 2.0],
        base_margin: 0.5,
        logistic: false,
    };

    #[test]
    fn binned_xgboost_walks_agree_with_the_values_at_thresholds_and_when_missing() {
        let values = [1.0, 1.5, 1.4999999, 2.0, -0.0, f64::NAN, f64::INFINITY];
        let rows: Vec<[f64; 2]> = values.iter().flat_map(|a| values.iter().map(move |b| [*a, *b])).collect();
        let mut binned = Vec::new();
        XGB_BINNED.predict_block(&rows, &mut binned);
        let mut plain = Vec::new();
        XGB.predict_block(&rows, &mut plain);
        assert_eq!(binned, plain);
        for (x, p) in rows.iter().zip(&binned) {
            assert_eq!(XGB_BINNED.predict(x), *p);
        }
        assert_eq!(XGB_BINNED.predict(&[1.5, 1.0]), 30.5, "a value at the threshold goes right");
        assert_eq!(XGB_BINNED.predict(&[f64::NAN, 1.0]), 30.5, "missing goes right at node 0");
        assert_eq!(XGB_BINNED.predict(&[1.0, f64::NAN]), 10.5, "missing goes left at node 1");
        assert_eq!(XGB_BINNED.predict(&[1.0, 2.0]), 20.5);
    }

    /// A LightGBM tree with a split of each missing type: node 0 `x0 <= 1` (None: a NaN is 0;
    /// default right; right: leaf 8), node 1 `x1 <= 0.5` (Zero: NaN and zero take the default,
    /// left; right: leaf 1), node 2 `x1 <= -0.5` (NaN: a NaN takes the default, right; leaves 2
    /// and 4).
    static LGB: Lgb = Lgb {
        node_base: &[0],
        leaf_base: &[0],
        depth: &[3],
        nodes: &[lgb(1.0, 1, -4, 0, 0, 0), lgb(0.5, 2, -1, 1, 2 | (1 << 2), 0), lgb(-0.5, -2, -3, 1, 2 << 2, 0)],
        leaf: &[1.0, 2.0, 4.0, 8.0],
        cat_bits: &[],
        sigmoid: None,
    };

    /// The same tree over bins (thresholds: x0 `[1]`, x1 `[-0.5, 0.5]`), numbered breadth
    /// first (node 0, node 1, leaf 8, node 2, leaf 1, leaf 2, leaf 4), with a column for each
    /// (missing type, default) of its splits: node 0 reads x0 in column 2 (None, right), node 1
    /// x1 in column 1 (Zero, left), node 2 x1 in column 0 (NaN, right), which the leaves read
    /// too: a missing x0 there must not move a leaf reached before the last step.
    static LGB_BINNED: LgbBinned<3> = LgbBinned {
        trees: Binned {
            node_base: &[0],
            depth: &[3],
            nodes: &[
                bin_node(2, 2 * 2, 1),
                bin_node(3, 2 + 1, 3),
                bin_node(u16::MAX, 0, 2),
                bin_node(2, 1, 5),
                bin_node(u16::MAX, 0, 4),
                bin_node(u16::MAX, 0, 5),
                bin_node(u16::MAX, 0, 6),
            ],
        },
        value: &[0.0, 0.0, 8.0, 0.0, 1.0, 2.0, 4.0],
        cut_base: &[0, 1, 3],
        cuts: &[1.0, -0.5, 0.5],
        columns: [
            BinColumn { missing: 0, right: true },
            BinColumn { missing: 2, right: false },
            BinColumn { missing: 1, right: true },
        ],
        sigmoid: None,
    };

    #[test]
    fn binned_lightgbm_walks_agree_for_every_missing_type() {
        let values = [f64::NAN, 0.0, -0.0, 1e-40, -1e-40, 1.0, 0.5, -0.5, 2.0, -1.0, 0.75, f64::NEG_INFINITY];
        let rows: Vec<[f64; 2]> = values.iter().flat_map(|a| values.iter().map(move |b| [*a, *b])).collect();
        let mut binned = Vec::new();
        LGB_BINNED.predict_block(&rows, &mut binned);
        let mut plain = Vec::new();
        LGB.predict_block(&rows, &mut plain);
        assert_eq!(binned, plain);
        for (x, p) in rows.iter().zip(&binned) {
            assert_eq!(LGB_BINNED.predict(x), *p, "{x:?}");
        }
        assert_eq!(LGB_BINNED.predict(&[f64::NAN, 0.75]), 1.0, "a NaN is 0 at node 0, 0.75 > 0.5");
        assert_eq!(LGB_BINNED.predict(&[0.0, f64::NAN]), 4.0, "missing: node 1's default left, node 2's right");
        assert_eq!(LGB_BINNED.predict(&[0.0, 1e-40]), 4.0, "within 1e-35 of zero: node 1's default");
        assert_eq!(LGB_BINNED.predict(&[0.0, -0.5]), 2.0, "a value at the threshold goes left");
        assert_eq!(LGB_BINNED.predict(&[2.0, f64::NAN]), 8.0);
    }

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
