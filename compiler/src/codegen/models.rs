//! Models as static tables: each LightGBM or XGBoost forest becomes flat arrays (one per node
//! attribute, with per-tree offsets) that the runtime's kernel walks; a linear model becomes its
//! weights. Consecutive `score` steps are fused in `nodes.rs`: their inputs are computed once
//! and every model scores the same feature values.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use crate::models::{Body, Model};

fn f64s(v: &[f64]) -> Vec<TokenStream> {
    v.iter()
        .map(|x| {
            if x.is_finite() {
                let l = Literal::f64_suffixed(*x);
                quote!(#l)
            } else if x.is_nan() {
                quote!(f64::NAN)
            } else if *x > 0.0 {
                quote!(f64::INFINITY)
            } else {
                quote!(f64::NEG_INFINITY)
            }
        })
        .collect()
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

fn i32s(v: &[i32]) -> Vec<Literal> {
    v.iter().map(|x| Literal::i32_unsuffixed(*x)).collect()
}

/// `static NAME: rt::model::… = …;` for a model. Returns the item.
pub fn model_static(name: &Ident, m: &Model) -> TokenStream {
    match &m.body {
        Body::Lgb { trees, sigmoid } => {
            let (mut node_base, mut leaf_base) = (Vec::new(), Vec::new());
            let (mut feature, mut threshold, mut decision, mut left, mut right, mut leaf) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut cat_start, mut cat_len, mut cat_bits) = (Vec::new(), Vec::new(), Vec::new());
            for t in trees {
                node_base.push(feature.len() as u32);
                leaf_base.push(leaf.len() as u32);
                let bits_base = cat_bits.len() as u32;
                cat_bits.extend_from_slice(&t.cat_threshold);
                for k in 0..t.left.len() {
                    feature.push(t.split_feature[k]);
                    decision.push(t.decision_type[k]);
                    left.push(t.left[k]);
                    right.push(t.right[k]);
                    if t.decision_type[k] & 1 == 1 {
                        let idx = t.threshold[k] as usize;
                        let (a, b) = (t.cat_boundaries[idx], t.cat_boundaries[idx + 1]);
                        cat_start.push(bits_base + a);
                        cat_len.push(b - a);
                        threshold.push(0.0);
                    } else {
                        cat_start.push(0);
                        cat_len.push(0);
                        threshold.push(t.threshold[k]);
                    }
                }
                leaf.extend_from_slice(&t.leaf_value);
            }
            let (node_base, leaf_base, feature) = (u32s(&node_base), u32s(&leaf_base), u32s(&feature));
            let threshold = f64s(&threshold);
            let decision: Vec<Literal> = decision.iter().map(|d| Literal::u8_unsuffixed(*d)).collect();
            let (left, right, leaf) = (i32s(&left), i32s(&right), f64s(&leaf));
            let (cat_start, cat_len, cat_bits) = (u32s(&cat_start), u32s(&cat_len), u32s(&cat_bits));
            let sigmoid = match sigmoid {
                Some(s) => {
                    let s = f64s(&[*s]);
                    quote!(Some(#(#s)*))
                }
                None => quote!(None),
            };
            quote! {
                static #name: rt::model::Lgb = rt::model::Lgb {
                    node_base: &[#(#node_base),*],
                    leaf_base: &[#(#leaf_base),*],
                    feature: &[#(#feature),*],
                    threshold: &[#(#threshold),*],
                    decision: &[#(#decision),*],
                    left: &[#(#left),*],
                    right: &[#(#right),*],
                    leaf: &[#(#leaf),*],
                    cat_start: &[#(#cat_start),*],
                    cat_len: &[#(#cat_len),*],
                    cat_bits: &[#(#cat_bits),*],
                    sigmoid: #sigmoid,
                };
            }
        }
        Body::Xgb { trees, base_margin, logistic } => {
            let mut node_base = Vec::new();
            let (mut left, mut right, mut feature, mut cond, mut default_left, mut categorical) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut cat_start, mut cat_len, mut cats) = (Vec::new(), Vec::new(), Vec::new());
            for t in trees {
                node_base.push(left.len() as u32);
                for k in 0..t.left.len() {
                    left.push(t.left[k]);
                    right.push(t.right[k]);
                    feature.push(t.split_index[k]);
                    cond.push(t.split_condition[k]);
                    default_left.push(t.default_left[k]);
                    let is_cat = t.is_categorical.get(k).copied().unwrap_or(false);
                    categorical.push(is_cat);
                    let mut set = t.categories.get(k).cloned().unwrap_or_default();
                    set.sort_unstable();
                    cat_start.push(cats.len() as u32);
                    cat_len.push(if is_cat { set.len() as u32 } else { 0 });
                    if is_cat {
                        cats.extend(set);
                    }
                }
            }
            let (node_base, feature) = (u32s(&node_base), u32s(&feature));
            let (left, right, cond) = (i32s(&left), i32s(&right), f32s(&cond));
            let (cat_start, cat_len, cats) = (u32s(&cat_start), u32s(&cat_len), u32s(&cats));
            let base = f32s(&[*base_margin]);
            quote! {
                static #name: rt::model::Xgb = rt::model::Xgb {
                    node_base: &[#(#node_base),*],
                    left: &[#(#left),*],
                    right: &[#(#right),*],
                    feature: &[#(#feature),*],
                    cond: &[#(#cond),*],
                    default_left: &[#(#default_left),*],
                    categorical: &[#(#categorical),*],
                    cat_start: &[#(#cat_start),*],
                    cat_len: &[#(#cat_len),*],
                    cats: &[#(#cats),*],
                    base_margin: #(#base)*,
                    logistic: #logistic,
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
