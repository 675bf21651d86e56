//! Linear models: `{"features": [...], "weights": [...], "intercept": x, "link": "identity" |
//! "logistic"}` — a weighted sum, optionally through the logistic function.

use super::{Body, Model, ModelError};

pub fn parse(text: &str) -> Result<Model, ModelError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ModelError::at(e.line(), format!("not JSON: {e}")))?;
    let features: Vec<String> = v["features"]
        .as_array()
        .ok_or_else(|| ModelError::new("`features` must be a list of names"))?
        .iter()
        .map(|f| f.as_str().map(str::to_string).ok_or_else(|| ModelError::new("`features` must be a list of names")))
        .collect::<Result<_, _>>()?;
    let weights: Vec<f64> = v["weights"]
        .as_array()
        .ok_or_else(|| ModelError::new("`weights` must be a list of numbers"))?
        .iter()
        .map(|w| w.as_f64().ok_or_else(|| ModelError::new("`weights` must be a list of numbers")))
        .collect::<Result<_, _>>()?;
    if weights.len() != features.len() {
        return Err(ModelError::new(format!("{} features but {} weights", features.len(), weights.len())));
    }
    let intercept = match &v["intercept"] {
        serde_json::Value::Null => 0.0,
        i => i.as_f64().ok_or_else(|| ModelError::new("`intercept` must be a number"))?,
    };
    let logistic = match v["link"].as_str().unwrap_or("identity") {
        "identity" => false,
        "logistic" => true,
        other => return Err(ModelError::new(format!("unsupported link `{other}` (identity or logistic)"))),
    };
    Ok(Model {
        categorical: vec![false; features.len()],
        features,
        body: Body::Linear { weights, intercept, logistic },
    })
}
