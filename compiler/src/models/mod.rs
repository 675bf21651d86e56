//! Models, read at compile time: LightGBM text models, XGBoost JSON models and linear models.
//! The compiler checks every `score` step's inputs against the model's own feature names and
//! generates scoring code from the trees; a malformed or unsupported model is a diagnostic at
//! the `model` line that says what is wrong and where in the file.

mod lightgbm;
mod linear;
mod xgboost;

use std::collections::HashMap;

use crate::diagnostics::{did_you_mean, name_list, Code, Diagnostic};
use crate::hir::{Program, Step};
use crate::resolve::Resolved;
use crate::source::{self, Loader, Span};

/// A model the compiler read.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub features: Vec<String>,
    /// Which input each feature slot treats as categorical.
    pub categorical: Vec<bool>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Lgb { trees: Vec<LgbTree>, sigmoid: Option<f64> },
    Xgb { trees: Vec<XgbTree>, base_margin: f32, logistic: bool },
    Linear { weights: Vec<f64>, intercept: f64, logistic: bool },
}

/// One LightGBM tree, as its text model stores it. A negative child `c` is leaf `!c`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LgbTree {
    pub split_feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub decision_type: Vec<u8>,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub leaf_value: Vec<f64>,
    pub cat_boundaries: Vec<u32>,
    pub cat_threshold: Vec<u32>,
}

/// One XGBoost tree. A child of -1 marks a leaf, whose value is its `split_condition`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XgbTree {
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub split_index: Vec<u32>,
    pub split_condition: Vec<f32>,
    pub default_left: Vec<bool>,
    /// Whether each split is categorical.
    pub is_categorical: Vec<bool>,
    /// For a categorical split, the categories that go right.
    pub categories: Vec<Vec<u32>>,
}

impl Model {
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Lgb { .. } => "lightgbm",
            Body::Xgb { .. } => "xgboost",
            Body::Linear { .. } => "linear",
        }
    }
}

/// A problem in a model file: the message and, when known, the line it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelError {
    pub message: String,
    pub line: Option<usize>,
}

impl ModelError {
    pub fn new(message: impl Into<String>) -> ModelError {
        ModelError { message: message.into(), line: None }
    }

    pub fn at(line: usize, message: impl Into<String>) -> ModelError {
        ModelError { message: message.into(), line: Some(line) }
    }
}

/// The number of splits on the longest path of a tree given as child lists (a child below 0,
/// or one out of range, is a leaf).
pub fn tree_depth(left: &[i32], right: &[i32]) -> usize {
    if left.is_empty() {
        return 0;
    }
    let mut deepest = 0;
    let mut stack = vec![(0usize, 1usize)];
    while let Some((k, d)) = stack.pop() {
        deepest = deepest.max(d);
        for c in [left[k], right[k]] {
            if c >= 0 && (c as usize) < left.len() && d <= left.len() {
                stack.push((c as usize, d + 1));
            }
        }
    }
    deepest
}

/// Trees deeper than this are refused: the kernels walk trees in lockstep for at most 255 steps.
pub const MAX_DEPTH: usize = 255;

/// Reads a model file's text in the given format.
pub fn parse(kind: &str, text: &str) -> Result<Model, ModelError> {
    match kind {
        "lightgbm" => lightgbm::parse(text),
        "xgboost" => xgboost::parse(text),
        "linear" => linear::parse(text),
        other => Err(ModelError::new(format!("unknown model format `{other}`"))),
    }
}

/// Loads every model of the program (paths relative to the file that declares it) and checks
/// every `score` step against its model. Returns the models that loaded, by name.
pub fn load_and_check(
    loader: &dyn Loader,
    res: &Resolved,
    program: &Program,
    diags: &mut Vec<Diagnostic>,
) -> HashMap<String, Model> {
    let mut models = HashMap::new();
    for m in &program.models {
        let declared_in = &res.sources.get(m.span.file).path;
        let path = source::relative_to(declared_in, &m.path);
        let text = match loader.load(&path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(
                    Diagnostic::new(
                        Code::E2022,
                        m.span,
                        format!("cannot read model `{}` from `{}`: {e}", m.name, path.display()),
                    )
                    .label("model file not readable")
                    .help("the path is relative to the file that declares the model"),
                );
                continue;
            }
        };
        match parse(&m.kind, &text) {
            Ok(model) => {
                models.insert(m.name.clone(), model);
            }
            Err(e) => {
                let at = e.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                diags.push(
                    Diagnostic::new(Code::E2022, m.span, format!("model `{}`: {}{at} in `{}`", m.name, e.message, m.path))
                        .label(format!("not a usable {} model", m.kind))
                        .help(format!(
                            "Pipe reads {} models as {}; retrain or re-export the model",
                            m.kind,
                            match m.kind.as_str() {
                                "lightgbm" => "text files written by `Booster.save_model` (binary and regression objectives)",
                                "xgboost" => "JSON files written by `Booster.save_model(\"….json\")` (binary:logistic, reg:squarederror, reg:logistic)",
                                _ => "JSON: {\"features\": […], \"weights\": […], \"intercept\": x, \"link\": \"identity\" | \"logistic\"}",
                            }
                        )),
                );
            }
        }
    }
    for s in &program.streams {
        for step in &s.steps {
            let Step::Score { model, inputs, .. } = &step.step else { continue };
            let Some(m) = models.get(model) else { continue };
            check_inputs(model, m, inputs, step.span, diags);
        }
    }
    models
}

fn check_inputs(
    name: &str,
    m: &Model,
    inputs: &[(String, crate::hir::TExpr)],
    span: Span,
    diags: &mut Vec<Diagnostic>,
) {
    for (given, e) in inputs {
        if !m.features.iter().any(|f| f == given) {
            let help = did_you_mean(given, m.features.iter().map(String::as_str)).unwrap_or_else(|| {
                format!("the features of `{name}` are {}", name_list(m.features.iter().map(String::as_str), 12))
            });
            diags.push(
                Diagnostic::new(Code::E1020, e.span, format!("model `{name}` has no feature `{given}`"))
                    .label("not a feature of the model")
                    .help(help),
            );
        }
    }
    let missing: Vec<&str> =
        m.features.iter().filter(|f| !inputs.iter().any(|(g, _)| g == *f)).map(String::as_str).collect();
    if !missing.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::E2021,
                span,
                format!(
                    "`score {name}` gives {} of the model's {} features; missing: {}",
                    m.features.len() - missing.len(),
                    m.features.len(),
                    name_list(missing.iter().copied(), 12)
                ),
            )
            .label("inputs missing")
            .help(format!("give every feature a value (`{} = …`); a nullable value is passed as missing", missing[0])),
        );
    }
}
