//! Models as static tables: each LightGBM or XGBoost forest becomes arrays of packed nodes with
//! per-tree offsets that the runtime's kernel walks — over bin indices when every split is
//! numerical (`rt::model::Binned`: the thresholds are known here, so each feature's sorted
//! thresholds become its bins), else over values; a linear model becomes its weights.
//! Consecutive `score` steps are fused in `nodes.rs`: their inputs are computed once
//! and every model scores the same feature values.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use crate::models::{Body, Model};

fn f64s(v: &[f64]) -> Vec<TokenStream> {
    v.iter().map(|x| super::f64_lit(*x)).collect()
}

fn f32s(v: &[f32]) -> Vec<TokenStream> {
    v.iter()
        .map(|x| {
            if x.is_finite() {
                let l = Literal::f32_suffixed(*x);
                quote!(#l)
            } else if x.is_nan() {
                quote!(f32::NAN)
            } else if *x > 0.0 {
                quote!(f32::INFINITY)
            } else {
                quote!(f32::NEG_INFINITY)
            }
        })
        .collect()
}

fn u32s(v: &[u32]) -> Vec<Literal> {
    v.iter().map(|x| Literal::u32_unsuffixed(*x)).collect()
}

/// The longest path of a tree, in splits (the parsers refuse trees deeper than 255).
fn depth(left: &[i32], right: &[i32]) -> u8 {
    u8::try_from(crate::models::tree_depth(left, right)).unwrap_or(u8::MAX)
}

/// `static NAME: rt::model::… = …;` for a model. Returns the item.
pub fn model_static(name: &Ident, m: &Model) -> TokenStream {
    // Forests of numerical splits are walked over bins; the general tables remain for the others
    // (categorical splits, or counts beyond a `u16`).
    let binned = match &m.body {
        Body::Lgb { trees, sigmoid } => lgb_binned(name, trees, *sigmoid, m.features.len()),
        Body::Xgb { trees, base_margin, logistic } => {
            xgb_binned(name, trees, *base_margin, *logistic, m.features.len())
        }
        Body::Linear { .. } => None,
    };
    if let Some(table) = binned {
        return table;
    }
    match &m.body {
        Body::Lgb { trees, sigmoid } => {
            let (mut node_base, mut leaf_base, mut nodes, mut leaf, mut cat_bits) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut depths = Vec::new();
            let mut count = 0u32;
            for t in trees {
                node_base.push(count);
                leaf_base.push(leaf.len() as u32);
                depths.push(Literal::u8_unsuffixed(depth(&t.left, &t.right)));
                let bits_base = cat_bits.len() as u32;
                cat_bits.extend_from_slice(&t.cat_threshold);
                for k in 0..t.left.len() {
                    // A categorical split keeps where its bitset starts in the threshold slot.
                    let (threshold, cat_len) = if t.decision_type[k] & 1 == 1 {
                        let idx = t.threshold[k] as usize;
                        let (a, b) = (t.cat_boundaries[idx], t.cat_boundaries[idx + 1]);
                        (f64::from(bits_base + a), u16::try_from(b - a).unwrap_or(u16::MAX))
                    } else {
                        (t.threshold[k], 0)
                    };
                    let th = &f64s(&[threshold])[0];
                    let (l, r, f) = (
                        Literal::i32_unsuffixed(t.left[k]),
                        Literal::i32_unsuffixed(t.right[k]),
                        Literal::u32_unsuffixed(t.split_feature[k]),
                    );
                    let (d, c) = (Literal::u8_unsuffixed(t.decision_type[k]), Literal::u16_unsuffixed(cat_len));
                    nodes.push(quote!(lgb(#th, #l, #r, #f, #d, #c)));
                    count += 1;
                }
                leaf.extend_from_slice(&t.leaf_value);
            }
            let (node_base, leaf_base) = (u32s(&node_base), u32s(&leaf_base));
            let (leaf, cat_bits) = (f64s(&leaf), u32s(&cat_bits));
            let sigmoid = match sigmoid {
                Some(s) => {
                    let s = f64s(&[*s]);
                    quote!(Some(#(#s)*))
                }
                None => quote!(None),
            };
            quote! {
                static #name: rt::model::Lgb = {
                    use rt::model::lgb;
                    rt::model::Lgb {
                        node_base: &[#(#node_base),*],
                        leaf_base: &[#(#leaf_base),*],
                        depth: &[#(#depths),*],
                        nodes: &[#(#nodes),*],
                        leaf: &[#(#leaf),*],
                        cat_bits: &[#(#cat_bits),*],
                        sigmoid: #sigmoid,
                    }
                };
            }
        }
        Body::Xgb { trees, base_margin, logistic } => {
            let (mut node_base, mut nodes, mut cats) = (Vec::new(), Vec::new(), Vec::new());
            let mut depths = Vec::new();
            let mut count = 0u32;
            for t in trees {
                node_base.push(count);
                // XGBoost lists leaves as nodes: a path of n nodes takes n - 1 steps.
                let d = if t.left.first().is_some_and(|l| *l >= 0) {
                    depth(&t.left, &t.right).saturating_sub(1)
                } else {
                    0
                };
                depths.push(Literal::u8_unsuffixed(d));
                for k in 0..t.left.len() {
                    let is_cat = t.is_categorical.get(k).copied().unwrap_or(false);
                    let mut set = if is_cat { t.categories.get(k).cloned().unwrap_or_default() } else { Vec::new() };
                    set.sort_unstable();
                    let start = Literal::u32_unsuffixed(cats.len() as u32);
                    let len = Literal::u16_unsuffixed(u16::try_from(set.len()).unwrap_or(u16::MAX));
                    cats.extend(set);
                    let cond = &f32s(&[t.split_condition[k]])[0];
                    let (l, r, f) = (
                        Literal::i32_unsuffixed(t.left[k]),
                        Literal::i32_unsuffixed(t.right[k]),
                        Literal::u32_unsuffixed(t.split_index[k]),
                    );
                    let dl = t.default_left[k];
                    nodes.push(quote!(xgb(#cond, #l, #r, #f, #dl, #is_cat, #start, #len)));
                    count += 1;
                }
            }
            let node_base = u32s(&node_base);
            let cats = u32s(&cats);
            let base = f32s(&[*base_margin]);
            quote! {
                static #name: rt::model::Xgb = {
                    use rt::model::xgb;
                    rt::model::Xgb {
                        node_base: &[#(#node_base),*],
                        depth: &[#(#depths),*],
                        nodes: &[#(#nodes),*],
                        cats: &[#(#cats),*],
                        base_margin: #(#base)*,
                        logistic: #logistic,
                    }
                };
            }
        }
        Body::Linear { weights, intercept, logistic } => {
            let w = f64s(weights);
            let i = f64s(&[*intercept]);
            quote! {
                static #name: rt::model::Linear = rt::model::Linear {
                    weights: &[#(#w),*],
                    intercept: #(#i)*,
                    logistic: #logistic,
                };
            }
        }
    }
}

/// A split or leaf of a forest on its way to `rt::model::Binned`: children are indices in the
/// tree's list, the root is first; `kind` is the split's missing type (LightGBM's NaN 0, None 1,
/// Zero 2; XGBoost's always 0), which with its default side picks the bin column it reads.
enum Part {
    Split { feature: usize, kind: usize, cut: f64, default_left: bool, left: usize, right: usize },
    Leaf(f64),
}

/// An XGBoost forest as parts, if every split is numerical on a comparable threshold.
fn xgb_parts(trees: &[crate::models::XgbTree]) -> Option<Vec<Vec<Part>>> {
    let mut out = Vec::new();
    for t in trees {
        let mut parts = Vec::new();
        for k in 0..t.left.len() {
            if t.left[k] < 0 {
                parts.push(Part::Leaf(f64::from(t.split_condition[k])));
                continue;
            }
            if t.is_categorical.get(k).copied().unwrap_or(false) || t.split_condition[k].is_nan() {
                return None;
            }
            parts.push(Part::Split {
                feature: t.split_index[k] as usize,
                kind: 0,
                cut: f64::from(t.split_condition[k]),
                default_left: t.default_left[k],
                left: usize::try_from(t.left[k]).ok()?,
                right: usize::try_from(t.right[k]).ok()?,
            });
        }
        out.push(parts);
    }
    Some(out)
}

/// A LightGBM forest as parts (its leaves after its splits), if every split is numerical on a
/// comparable threshold.
fn lgb_parts(trees: &[crate::models::LgbTree]) -> Option<Vec<Vec<Part>>> {
    let mut out = Vec::new();
    for t in trees {
        let splits = t.left.len();
        let child = |c: i32| if c >= 0 { c as usize } else { splits + (!c) as usize };
        let mut parts = Vec::new();
        for k in 0..splits {
            let d = t.decision_type[k];
            if d & 1 == 1 || t.threshold[k].is_nan() {
                return None;
            }
            // Missing type NaN reads column 0, Zero column 2, None (any other) column 1.
            let kind = match (d >> 2) & 3 {
                2 => 0,
                1 => 2,
                _ => 1,
            };
            parts.push(Part::Split {
                feature: t.split_feature[k] as usize,
                kind,
                cut: t.threshold[k],
                default_left: d & 2 != 0,
                left: child(t.left[k]),
                right: child(t.right[k]),
            });
        }
        parts.extend(t.leaf_value.iter().map(|v| Part::Leaf(*v)));
        out.push(parts);
    }
    Some(out)
}

/// A forest over bins: `rt::model::Binned`'s tables, each leaf's value at its node's index, and
/// each feature's distinct thresholds. `None` when a count does not fit its `u16` (a tree's
/// nodes, a feature's bin columns, a feature's thresholds with room for bin 0 and the leaves'
/// sentinel).
struct BinnedForest {
    trees: TokenStream,
    values: Vec<f64>,
    cut_base: Vec<u32>,
    cuts: Vec<f64>,
}

fn binned_forest(forest: &[Vec<Part>], features: usize, column: impl Fn(usize, bool) -> usize) -> Option<BinnedForest> {
    // A row has a column of bins of the model's `features` inputs for each (missing type,
    // default left) the splits use (`column` says which); a split on another feature (one the
    // inputs do not name) reads a missing value in the general tables.
    let beyond = forest.iter().flatten().any(|p| matches!(p, Part::Split { feature, .. } if *feature >= features));
    let columns = forest
        .iter()
        .flatten()
        .filter_map(|p| match p {
            Part::Split { kind, default_left, .. } => Some(column(*kind, *default_left) + 1),
            Part::Leaf(_) => None,
        })
        .max()
        .unwrap_or(1);
    if beyond || features * columns >= usize::from(u16::MAX) {
        return None;
    }
    // Each feature's distinct thresholds, ascending (-0 as 0: they compare equal).
    let mut per_feature: Vec<Vec<f64>> = vec![Vec::new(); features];
    for p in forest.iter().flatten() {
        if let Part::Split { feature, cut, .. } = p {
            per_feature[*feature].push(cut + 0.0);
        }
    }
    for c in &mut per_feature {
        c.sort_by(f64::total_cmp);
        c.dedup();
        if c.len() > usize::from(u16::MAX) - 3 {
            return None;
        }
    }
    let (mut node_base, mut depths, mut nodes, mut values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for parts in forest {
        if parts.len() > usize::from(u16::MAX) {
            return None;
        }
        node_base.push(values.len() as u32);
        // Breadth first from the root, so that the two children of a split are adjacent; with
        // each part's depth in splits.
        let mut order = vec![(0usize, 0usize)];
        let mut at = 0;
        while at < order.len() {
            let (k, d) = order[at];
            if let Some(Part::Split { left, right, .. }) = parts.get(k) {
                if order.len() > parts.len() {
                    return None; // not a tree
                }
                order.push((*left, d + 1));
                order.push((*right, d + 1));
            }
            at += 1;
        }
        depths.push(Literal::u8_unsuffixed(u8::try_from(order.iter().map(|o| o.1).max().unwrap_or(0)).ok()?));
        let mut index = vec![0u16; parts.len()];
        for (i, (k, _)) in order.iter().enumerate() {
            *index.get_mut(*k)? = i as u16;
        }
        for (i, (k, _)) in order.iter().enumerate() {
            let (bin, column, left) = match parts.get(*k)? {
                Part::Leaf(v) => {
                    values.push(*v);
                    (u16::MAX, 0, i as u16)
                }
                Part::Split { feature, kind, cut, default_left, left, .. } => {
                    values.push(0.0);
                    let cuts = &per_feature[*feature];
                    let j = cuts.partition_point(|c| *c < cut + 0.0) + 1;
                    let column = column(*kind, *default_left) * features + feature;
                    ((j + 1) as u16, column as u16, index[*left])
                }
            };
            let lits = [bin, column, left].map(Literal::u16_unsuffixed);
            let [b, c, l] = &lits;
            nodes.push(quote!(bin_node(#b, #c, #l)));
        }
    }
    let mut cut_base = vec![0u32];
    let mut cuts = Vec::new();
    for c in &per_feature {
        cuts.extend_from_slice(c);
        cut_base.push(cuts.len() as u32);
    }
    let node_base = u32s(&node_base);
    let trees = quote! {
        rt::model::Binned { node_base: &[#(#node_base),*], depth: &[#(#depths),*], nodes: &[#(#nodes),*] }
    };
    Some(BinnedForest { trees, values, cut_base, cuts })
}

/// `static NAME: rt::model::XgbBinned = …;` for an XGBoost forest of numerical splits.
fn xgb_binned(
    name: &Ident,
    trees: &[crate::models::XgbTree],
    base_margin: f32,
    logistic: bool,
    features: usize,
) -> Option<TokenStream> {
    // Column 0 for splits whose missing values go left, 1 for those whose go right.
    let BinnedForest { trees, values, cut_base, cuts } =
        binned_forest(&xgb_parts(trees)?, features, |_, left| usize::from(!left))?;
    let narrow = |v: &[f64]| f32s(&v.iter().map(|x| *x as f32).collect::<Vec<_>>());
    let (values, cuts, base, cut_base) = (narrow(&values), narrow(&cuts), f32s(&[base_margin]), u32s(&cut_base));
    Some(quote! {
        static #name: rt::model::XgbBinned = {
            use rt::model::bin_node;
            rt::model::XgbBinned {
                trees: #trees,
                value: &[#(#values),*],
                cut_base: &[#(#cut_base),*],
                cuts: &[#(#cuts),*],
                base_margin: #(#base)*,
                logistic: #logistic,
            }
        };
    })
}

/// `static NAME: rt::model::LgbBinned = …;` for a LightGBM forest of numerical splits.
fn lgb_binned(
    name: &Ident,
    trees: &[crate::models::LgbTree],
    sigmoid: Option<f64>,
    features: usize,
) -> Option<TokenStream> {
    // A column per (missing type, default left) the splits use, in order.
    let parts = lgb_parts(trees)?;
    let mut used: Vec<(usize, bool)> = parts
        .iter()
        .flatten()
        .filter_map(|p| match p {
            Part::Split { kind, default_left, .. } => Some((*kind, *default_left)),
            Part::Leaf(_) => None,
        })
        .collect();
    used.sort_unstable();
    used.dedup();
    if used.is_empty() {
        used.push((0, true)); // a forest of leaves: one column, read by the leaves only
    }
    let column = |kind: usize, left: bool| used.iter().position(|u| *u == (kind, left)).unwrap_or(0);
    let BinnedForest { trees, values, cut_base, cuts } = binned_forest(&parts, features, column)?;
    let k = Literal::usize_unsuffixed(used.len());
    let columns = used.iter().map(|(kind, left)| {
        let (missing, right) = (Literal::u8_unsuffixed(*kind as u8), !left);
        quote!(rt::model::BinColumn { missing: #missing, right: #right })
    });
    let (values, cuts, cut_base) = (f64s(&values), f64s(&cuts), u32s(&cut_base));
    let sigmoid = match sigmoid {
        Some(s) => {
            let s = f64s(&[s]);
            quote!(Some(#(#s)*))
        }
        None => quote!(None),
    };
    Some(quote! {
        static #name: rt::model::LgbBinned<#k> = {
            use rt::model::bin_node;
            rt::model::LgbBinned {
                trees: #trees,
                value: &[#(#values),*],
                cut_base: &[#(#cut_base),*],
                cuts: &[#(#cuts),*],
                columns: [#(#columns),*],
                sigmoid: #sigmoid,
            }
        };
    })
}
