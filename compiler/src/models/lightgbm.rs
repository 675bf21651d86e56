//! LightGBM text models (`Booster.save_model`): the header's feature names and objective, then
//! one block per tree. Binary (sigmoid) and regression objectives; one tree per iteration.

use super::{Body, LgbTree, Model, ModelError};

/// `key=value` lines of one section, with their line numbers.
fn fields(lines: &[(usize, &str)]) -> Vec<(usize, String, String)> {
    lines
        .iter()
        .filter_map(|(n, l)| l.split_once('=').map(|(k, v)| (*n, k.trim().to_string(), v.trim().to_string())))
        .collect()
}

fn list<T: std::str::FromStr>(line: usize, key: &str, v: &str) -> Result<Vec<T>, ModelError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(' ')
        .map(|x| {
            x.parse::<T>().map_err(|_| ModelError::at(line, format!("`{key}` has a value that is not a number: `{x}`")))
        })
        .collect()
}

pub fn parse(text: &str) -> Result<Model, ModelError> {
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    if lines.first().is_none_or(|(_, l)| l.trim() != "tree") {
        return Err(ModelError::at(1, "not a LightGBM text model (it does not start with `tree`)"));
    }
    let first_tree = lines.iter().position(|(_, l)| l.starts_with("Tree=")).unwrap_or(lines.len());
    let header = fields(&lines[..first_tree]);
    let get = |k: &str| header.iter().find(|(_, key, _)| key == k);
    let features: Vec<String> = match get("feature_names") {
        Some((_, _, v)) => v.split(' ').map(str::to_string).collect(),
        None => return Err(ModelError::new("the header has no `feature_names`")),
    };
    let categorical: Vec<bool> = match get("feature_infos") {
        Some((_, _, v)) => v.split(' ').map(|i| i != "none" && !i.starts_with('[')).collect(),
        None => vec![false; features.len()],
    };
    if let Some((n, _, v)) = get("num_tree_per_iteration") {
        if v != "1" {
            return Err(ModelError::at(
                *n,
                format!("{v} trees per iteration (a multiclass model) are not supported yet"),
            ));
        }
    }
    if let Some((n, _, _)) = get("average_output") {
        return Err(ModelError::at(*n, "random-forest models (`average_output`) are not supported yet"));
    }
    let sigmoid = match get("objective") {
        Some((n, _, v)) => {
            let mut parts = v.split(' ');
            match parts.next().unwrap_or("") {
                "binary" => {
                    let s = parts.find_map(|p| p.strip_prefix("sigmoid:")).unwrap_or("1");
                    Some(s.parse::<f64>().map_err(|_| ModelError::at(*n, format!("bad sigmoid parameter `{s}`")))?)
                }
                "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "regression_l1" | "l1"
                | "huber" | "fair" | "quantile" | "mape" => None,
                other => {
                    return Err(ModelError::at(
                        *n,
                        format!("objective `{other}` is not supported yet (binary and regression objectives are)"),
                    ))
                }
            }
        }
        None => return Err(ModelError::new("the header has no `objective`")),
    };

    let mut trees = Vec::new();
    let mut i = first_tree;
    while i < lines.len() {
        let (start, l) = lines[i];
        if l.starts_with("end of trees") {
            break;
        }
        if !l.starts_with("Tree=") {
            i += 1;
            continue;
        }
        let end = lines[i + 1..]
            .iter()
            .position(|(_, l)| l.starts_with("Tree=") || l.starts_with("end of trees"))
            .map_or(lines.len(), |e| i + 1 + e);
        trees.push(tree(start, &fields(&lines[i + 1..end]), features.len())?);
        i = end;
    }
    if trees.is_empty() {
        return Err(ModelError::new("the model has no trees"));
    }
    Ok(Model { features, categorical, body: Body::Lgb { trees, sigmoid } })
}

fn tree(start: usize, f: &[(usize, String, String)], n_features: usize) -> Result<LgbTree, ModelError> {
    let get = |k: &str| f.iter().find(|(_, key, _)| key == k);
    let num_leaves: usize = match get("num_leaves") {
        Some((n, _, v)) => v.parse().map_err(|_| ModelError::at(*n, "`num_leaves` is not a number"))?,
        None => return Err(ModelError::at(start, "a tree without `num_leaves`")),
    };
    if let Some((n, _, v)) = get("is_linear") {
        if v != "0" {
            return Err(ModelError::at(*n, "linear trees are not supported yet"));
        }
    }
    let arr = |k: &str| -> Result<(usize, String), ModelError> {
        match get(k) {
            Some((n, _, v)) => Ok((*n, v.clone())),
            None => Err(ModelError::at(start, format!("a tree without `{k}`"))),
        }
    };
    let mut t = LgbTree::default();
    let (n, v) = arr("leaf_value")?;
    t.leaf_value = list(n, "leaf_value", &v)?;
    if t.leaf_value.len() != num_leaves {
        return Err(ModelError::at(
            n,
            format!("`leaf_value` has {} values for {num_leaves} leaves", t.leaf_value.len()),
        ));
    }
    if num_leaves > 1 {
        let (n, v) = arr("split_feature")?;
        t.split_feature = list(n, "split_feature", &v)?;
        let (n, v) = arr("threshold")?;
        t.threshold = list(n, "threshold", &v)?;
        let (n, v) = arr("decision_type")?;
        t.decision_type = list(n, "decision_type", &v)?;
        let (n, v) = arr("left_child")?;
        t.left = list(n, "left_child", &v)?;
        let (n, v) = arr("right_child")?;
        t.right = list(n, "right_child", &v)?;
        for (k, len) in [
            ("split_feature", t.split_feature.len()),
            ("threshold", t.threshold.len()),
            ("decision_type", t.decision_type.len()),
            ("left_child", t.left.len()),
            ("right_child", t.right.len()),
        ] {
            if len != num_leaves - 1 {
                let line = get(k).map_or(start, |x| x.0);
                return Err(ModelError::at(line, format!("`{k}` has {len} values for {} splits", num_leaves - 1)));
            }
        }
        let nodes = (num_leaves - 1) as i32;
        for c in t.left.iter().chain(&t.right) {
            if *c >= nodes || (*c < 0 && !*c >= num_leaves as i32) {
                let line = get("left_child").map_or(start, |x| x.0);
                return Err(ModelError::at(line, format!("a child index {c} is out of range")));
            }
        }
        if super::tree_depth(&t.left, &t.right) > super::MAX_DEPTH {
            return Err(ModelError::at(
                start,
                format!("a tree deeper than {} splits is not supported", super::MAX_DEPTH),
            ));
        }
        if let Some(bad) = t.split_feature.iter().find(|f| **f as usize >= n_features) {
            let line = get("split_feature").map_or(start, |x| x.0);
            return Err(ModelError::at(
                line,
                format!("split on feature {bad}, but the model has {n_features} features"),
            ));
        }
        if t.decision_type.iter().any(|d| d & 1 == 1) {
            let (n, v) = arr("cat_boundaries")?;
            t.cat_boundaries = list(n, "cat_boundaries", &v)?;
            let (n, v) = arr("cat_threshold")?;
            t.cat_threshold = list(n, "cat_threshold", &v)?;
            for (k, d) in t.decision_type.iter().enumerate() {
                if d & 1 == 1 {
                    let idx = t.threshold[k] as usize;
                    if idx + 1 >= t.cat_boundaries.len() || t.cat_boundaries[idx + 1] as usize > t.cat_threshold.len() {
                        return Err(ModelError::at(n, "a categorical split points outside `cat_boundaries`"));
                    }
                }
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\nobjective=binary sigmoid:1\nfeature_names=a b\nfeature_infos=[0:10] 0:1:2\ntree_sizes=1\n\nTree=0\nnum_leaves=3\nnum_cat=1\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=1.5 0\ndecision_type=10 1\nleft_child=1 -1\nright_child=-2 -3\nleaf_value=0.5 -0.25 0.125\ncat_boundaries=0 1\ncat_threshold=4\nshrinkage=1\n\n\nend of trees\n";

    #[test]
    fn reads_trees_and_checks_them() {
        let m = parse(MODEL).expect("valid");
        assert_eq!(m.features, vec!["a", "b"]);
        assert_eq!(m.categorical, vec![false, true]);
        let Body::Lgb { trees, sigmoid } = &m.body else { panic!("lightgbm") };
        assert_eq!(*sigmoid, Some(1.0));
        assert_eq!(trees[0].left, vec![1, -1]);
        assert_eq!(trees[0].cat_threshold, vec![4]);
        let bad = parse(&MODEL.replace("leaf_value=0.5 -0.25 0.125", "leaf_value=0.5 -0.25")).expect_err("short");
        assert_eq!(bad.line, Some(21));
        assert!(bad.message.contains("2 values for 3 leaves"), "{}", bad.message);
        let multi =
            parse(&MODEL.replace("num_tree_per_iteration=1", "num_tree_per_iteration=3")).expect_err("multiclass");
        assert!(multi.message.contains("multiclass"));
        assert!(parse("{}").is_err());
    }
}
