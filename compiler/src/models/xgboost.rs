//! XGBoost JSON models (`Booster.save_model("….json")`): trees as parallel arrays, arithmetic
//! in f32 as the library does it. Objectives binary:logistic, reg:logistic, reg:squarederror.

use serde_json::Value;

use super::{Body, Model, ModelError, XgbTree};

fn num_list<T>(v: &Value, key: &str, tree: usize, f: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, ModelError> {
    v[key]
        .as_array()
        .ok_or_else(|| ModelError::new(format!("tree {tree} has no `{key}` list")))?
        .iter()
        .map(|x| f(x).ok_or_else(|| ModelError::new(format!("tree {tree}: `{key}` has a value of the wrong type"))))
        .collect()
}

/// `base_score` is written as `"5E-1"`, or since XGBoost 3.1 as `"[4.6E-1]"`.
fn base_score(v: &Value) -> Result<f32, ModelError> {
    let text = match v {
        Value::String(s) => s.trim().trim_start_matches('[').trim_end_matches(']').to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "0.5".to_string(),
        _ => return Err(ModelError::new("`base_score` is not a number")),
    };
    let first = text.split(',').next().unwrap_or("").trim();
    first.parse::<f32>().map_err(|_| ModelError::new(format!("`base_score` `{text}` is not a number")))
}

pub fn parse(text: &str) -> Result<Model, ModelError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ModelError::at(e.line(), format!("not JSON: {e}")))?;
    let learner = &v["learner"];
    if learner.is_null() {
        return Err(ModelError::new("not an XGBoost JSON model (no `learner`)"));
    }
    let objective = learner["objective"]["name"].as_str().unwrap_or("");
    let logistic = match objective {
        "binary:logistic" | "reg:logistic" => true,
        "reg:squarederror" | "reg:linear" => false,
        other => {
            return Err(ModelError::new(format!(
                "objective `{other}` is not supported yet (binary:logistic, reg:logistic and reg:squarederror are)"
            )))
        }
    };
    let param = &learner["learner_model_param"];
    let num_class = param["num_class"].as_str().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    if num_class > 1 {
        return Err(ModelError::new(format!("{num_class} classes: multiclass models are not supported yet")));
    }
    let base = base_score(&param["base_score"])?;
    // The margin the trees add to: base_score is stored in response space.
    let base_margin = if logistic {
        if !(base > 0.0 && base < 1.0) {
            return Err(ModelError::new(format!("`base_score` {base} is not a probability")));
        }
        -(1.0f32 / base - 1.0f32).ln()
    } else {
        base
    };
    let booster = &learner["gradient_booster"];
    if booster["name"].as_str() != Some("gbtree") {
        return Err(ModelError::new(format!(
            "booster `{}` is not supported (gbtree is)",
            booster["name"].as_str().unwrap_or("?")
        )));
    }
    let num_feature = param["num_feature"].as_str().and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let features: Vec<String> = match learner["feature_names"].as_array() {
        Some(names) if !names.is_empty() => names.iter().map(|n| n.as_str().unwrap_or("").to_string()).collect(),
        _ => (0..num_feature).map(|i| format!("f{i}")).collect(),
    };
    let categorical: Vec<bool> = match learner["feature_types"].as_array() {
        Some(types) if types.len() == features.len() => types.iter().map(|t| t.as_str() == Some("c")).collect(),
        _ => vec![false; features.len()],
    };
    let mut trees = Vec::new();
    for (i, t) in
        booster["model"]["trees"].as_array().ok_or_else(|| ModelError::new("no `trees` list"))?.iter().enumerate()
    {
        let mut tree = XgbTree {
            left: num_list(t, "left_children", i, |x| x.as_i64().and_then(|n| i32::try_from(n).ok()))?,
            right: num_list(t, "right_children", i, |x| x.as_i64().and_then(|n| i32::try_from(n).ok()))?,
            split_index: num_list(t, "split_indices", i, |x| x.as_u64().and_then(|n| u32::try_from(n).ok()))?,
            split_condition: num_list(t, "split_conditions", i, |x| x.as_f64().map(|f| f as f32))?,
            default_left: num_list(t, "default_left", i, |x| x.as_bool().or_else(|| x.as_u64().map(|n| n != 0)))?,
            is_categorical: Vec::new(),
            categories: Vec::new(),
        };
        let n = tree.left.len();
        for (key, len) in [
            ("right_children", tree.right.len()),
            ("split_indices", tree.split_index.len()),
            ("split_conditions", tree.split_condition.len()),
            ("default_left", tree.default_left.len()),
        ] {
            if len != n {
                return Err(ModelError::new(format!("tree {i}: `{key}` has {len} entries, `left_children` {n}")));
            }
        }
        if tree.left.iter().chain(&tree.right).any(|c| *c >= n as i32 || *c < -1) {
            return Err(ModelError::new(format!("tree {i}: a child index is out of range")));
        }
        if super::tree_depth(&tree.left, &tree.right) > super::MAX_DEPTH + 1 {
            return Err(ModelError::new(format!(
                "tree {i} is deeper than {} splits, which is not supported",
                super::MAX_DEPTH
            )));
        }
        for k in 0..n {
            if tree.left[k] >= 0 && tree.split_index[k] as usize >= features.len() {
                return Err(ModelError::new(format!(
                    "tree {i}: a split on feature {} of {}",
                    tree.split_index[k],
                    features.len()
                )));
            }
        }
        tree.categories = vec![Vec::new(); n];
        let split_type = num_list(t, "split_type", i, |x| x.as_u64()).unwrap_or_else(|_| vec![0; n]);
        tree.is_categorical = (0..n).map(|k| split_type.get(k) == Some(&1) && tree.left[k] >= 0).collect();
        if split_type.contains(&1) {
            let nodes = num_list(t, "categories_nodes", i, |x| x.as_u64())?;
            let segments = num_list(t, "categories_segments", i, |x| x.as_u64())?;
            let sizes = num_list(t, "categories_sizes", i, |x| x.as_u64())?;
            let cats = num_list(t, "categories", i, |x| x.as_u64().and_then(|n| u32::try_from(n).ok()))?;
            for ((node, seg), size) in nodes.iter().zip(&segments).zip(&sizes) {
                let (node, seg, size) = (*node as usize, *seg as usize, *size as usize);
                let set = cats
                    .get(seg..seg + size)
                    .ok_or_else(|| ModelError::new(format!("tree {i}: categories out of range")))?;
                let slot = tree
                    .categories
                    .get_mut(node)
                    .ok_or_else(|| ModelError::new(format!("tree {i}: a categorical node out of range")))?;
                *slot = set.to_vec();
            }
        }
        trees.push(tree);
    }
    if trees.is_empty() {
        return Err(ModelError::new("the model has no trees"));
    }
    Ok(Model { features, categorical, body: Body::Xgb { trees, base_margin, logistic } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_base_score_in_both_spellings() {
        assert_eq!(base_score(&Value::String("5E-1".into())), Ok(0.5));
        assert_eq!(base_score(&Value::String("[4.6E-1]".into())), Ok(0.46));
        assert!(parse("{}").expect_err("no learner").message.contains("learner"));
    }
}
