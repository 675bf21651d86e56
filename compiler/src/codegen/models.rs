//! Models as static tables: each LightGBM or XGBoost forest becomes flat arrays (one per node
//! attribute, with per-tree offsets) that the runtime's kernel walks; a linear model becomes its
//! weights. Consecutive `score` steps are fused in `nodes.rs`: their inputs are computed once
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
        Body::Xgb { trees, base_margin, logistic } if binnable(trees) => binned(name, trees, *base_margin, *logistic),
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

/// Whether an XGBoost forest can be walked over bin indices (`rt::model::XgbBinned`): numerical
/// splits on comparable thresholds only, and every count within a `u16` (a tree's nodes, the
/// features, a feature's distinct thresholds, which leave room for the missing bin and the
/// leaves' sentinel).
fn binnable(trees: &[crate::models::XgbTree]) -> bool {
    let mut cuts = std::collections::HashMap::<u32, std::collections::BTreeSet<u32>>::new();
    for t in trees {
        if t.left.len() > usize::from(u16::MAX) || t.is_categorical.iter().any(|c| *c) {
            return false;
        }
        for k in 0..t.left.len() {
            if t.left[k] < 0 {
                continue;
            }
            let (c, f) = (t.split_condition[k], t.split_index[k]);
            if c.is_nan() || f >= u32::from(u16::MAX) {
                return false;
            }
            // Keyed by the value's bits, -0 as 0 (they compare equal).
            cuts.entry(f).or_default().insert((c + 0.0).to_bits());
        }
    }
    cuts.values().all(|c| c.len() <= usize::from(u16::MAX) - 2)
}

/// `static NAME: rt::model::XgbBinned = …;` for a forest `binnable` accepts.
fn binned(name: &Ident, trees: &[crate::models::XgbTree], base_margin: f32, logistic: bool) -> TokenStream {
    // Each feature's distinct thresholds, ascending.
    let features = trees.iter().flat_map(|t| t.split_index.iter()).map(|f| *f as usize + 1).max().unwrap_or(0);
    let mut per_feature: Vec<Vec<f32>> = vec![Vec::new(); features];
    for t in trees {
        for k in (0..t.left.len()).filter(|k| t.left[*k] >= 0) {
            per_feature[t.split_index[k] as usize].push(t.split_condition[k] + 0.0);
        }
    }
    for c in &mut per_feature {
        c.sort_by(f32::total_cmp);
        c.dedup();
    }
    let (mut node_base, mut depths, mut nodes, mut values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in trees {
        node_base.push(nodes.len() as u32);
        let d = if t.left.first().is_some_and(|l| *l >= 0) { depth(&t.left, &t.right).saturating_sub(1) } else { 0 };
        depths.push(Literal::u8_unsuffixed(d));
        // Breadth first from the root, so that the two children of a split are adjacent.
        let mut order = vec![0usize];
        let mut at = 0;
        while at < order.len() {
            let k = order[at];
            if t.left[k] >= 0 {
                order.push(t.left[k] as usize);
                order.push(t.right[k] as usize);
            }
            at += 1;
        }
        let mut index = vec![0u16; t.left.len()];
        for (i, k) in order.iter().enumerate() {
            index[*k] = i as u16;
        }
        for (i, &k) in order.iter().enumerate() {
            let (bin, feature, left, offset) = if t.left[k] < 0 {
                values.push(t.split_condition[k]);
                (u16::MAX, 0u16, i as u16, 0u16)
            } else {
                values.push(0.0);
                let cuts = &per_feature[t.split_index[k] as usize];
                let j = cuts.partition_point(|c| *c < t.split_condition[k] + 0.0) + 1;
                let offset = u16::from(!t.default_left[k]);
                ((j + 1) as u16 - offset, t.split_index[k] as u16, index[t.left[k] as usize], offset)
            };
            let lits = [bin, feature, left, offset].map(Literal::u16_unsuffixed);
            let [b, f, l, o] = &lits;
            nodes.push(quote!(bin_node(#b, #f, #l, #o)));
        }
    }
    let mut cut_base = vec![0u32];
    let mut cuts = Vec::new();
    for c in &per_feature {
        cuts.extend_from_slice(c);
        cut_base.push(cuts.len() as u32);
    }
    let (node_base, cut_base) = (u32s(&node_base), u32s(&cut_base));
    let (values, cuts, base) = (f32s(&values), f32s(&cuts), f32s(&[base_margin]));
    quote! {
        static #name: rt::model::XgbBinned = {
            use rt::model::bin_node;
            rt::model::XgbBinned {
                node_base: &[#(#node_base),*],
                depth: &[#(#depths),*],
                nodes: &[#(#nodes),*],
                value: &[#(#values),*],
                cut_base: &[#(#cut_base),*],
                cuts: &[#(#cuts),*],
                base_margin: #(#base)*,
                logistic: #logistic,
            }
        };
    }
}
