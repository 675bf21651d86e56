//! The typed program (typed HIR), output of the checker: every expression carries its type,
//! every pipeline step the row it produces. Lowering to the operator DAG starts from here.

use crate::resolve::ModuleId;
use crate::source::Span;
use crate::syntax::pipe_ast::{BinOp, UnOp};
use crate::types::{EnumId, Type};

#[derive(Debug, Clone, PartialEq)]
pub struct TExpr {
    pub kind: TExprKind,
    pub ty: Type,
    pub span: Span,
}

impl TExpr {
    /// A literal: a number, string, boolean, null, duration, timestamp or enum value.
    pub fn is_literal(&self) -> bool {
        matches!(
            self.kind,
            TExprKind::Int(_)
                | TExprKind::Float(_)
                | TExprKind::Str(_)
                | TExprKind::Bool(_)
                | TExprKind::Null
                | TExprKind::Duration(_)
                | TExprKind::Timestamp(_)
                | TExprKind::EnumValue(..)
        )
    }

    /// The direct subexpressions, in evaluation order.
    pub fn children(&self) -> Vec<&TExpr> {
        match &self.kind {
            TExprKind::Field(b, _) | TExprKind::Unary(_, b) => vec![b],
            TExprKind::Index(a, b) | TExprKind::Binary(_, a, b) => vec![a, b],
            TExprKind::If(a, b, c) => vec![a, b, c],
            TExprKind::Call(_, args) | TExprKind::Aggregate(_, args) | TExprKind::List(args) => args.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The direct subexpressions, mutably.
    pub fn children_mut(&mut self) -> Vec<&mut TExpr> {
        match &mut self.kind {
            TExprKind::Field(b, _) | TExprKind::Unary(_, b) => vec![b],
            TExprKind::Index(a, b) | TExprKind::Binary(_, a, b) => vec![a, b],
            TExprKind::If(a, b, c) => vec![a, b, c],
            TExprKind::Call(_, args) | TExprKind::Aggregate(_, args) | TExprKind::List(args) => {
                args.iter_mut().collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Step {
    /// The expressions written in the step.
    pub fn exprs(&self) -> Vec<&TExpr> {
        match self {
            Step::Select(fields) | Step::Derive(fields) | Step::GroupBy(fields) => {
                fields.iter().map(|(_, e)| e).collect()
            }
            Step::Aggregate { fields, .. } => fields.iter().map(|(_, e)| e).collect(),
            Step::Score { inputs, .. } => inputs.iter().map(|(_, e)| e).collect(),
            Step::Where(e) | Step::Require(e, _) => vec![e],
            Step::Explode { list, .. } => vec![list],
            Step::Join { keys, asof, .. } => {
                keys.iter().flat_map(|(l, r)| [l, r]).chain(asof.as_ref().and_then(|a| a.order.as_ref())).collect()
            }
            Step::Window(_) | Step::ProtectFor { .. } | Step::Union(_) => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Callee {
    Builtin(&'static str),
    /// A user function, by name and the module that defines it.
    User(String, ModuleId),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Duration(i64),
    Timestamp(i64),
    /// A field of the current row, or a parameter inside a function body.
    Var(String),
    EnumValue(EnumId, String, i64),
    Field(Box<TExpr>, String),
    Index(Box<TExpr>, Box<TExpr>),
    Call(Callee, Vec<TExpr>),
    /// An aggregate call inside `aggregate { … }`; its arguments are evaluated per input row.
    Aggregate(&'static str, Vec<TExpr>),
    Unary(UnOp, Box<TExpr>),
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    If(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    List(Vec<TExpr>),
    Error,
}

/// The fields of a record at one point of a pipeline, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub fields: Vec<(String, Type)>,
}

impl Row {
    pub fn get(&self, name: &str) -> Option<&Type> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// Adds a field or replaces the one of the same name in place.
    pub fn set(&mut self, name: &str, ty: Type) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = ty,
            None => self.fields.push((name.to_string(), ty)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WindowKind {
    Tumbling {
        size: i64,
        offset: i64,
    },
    Sliding {
        size: i64,
        every: i64,
        offset: i64,
    },
    Session {
        gap: i64,
    },
    /// Per record: its key's records in `[t - size, t)`, emitted with the record.
    Rolling {
        size: i64,
    },
}

/// What a broken `require` condition is.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// A `require` step: every row must hold.
    Require,
    /// A check of an `expect` step (`what`: its text and stream, as reported), evaluated once
    /// per group; `blocking` unless written `warn`.
    Expect { what: String, blocking: bool, allows: Vec<Allow> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Select(Vec<(String, TExpr)>),
    Where(TExpr),
    /// `require COND`: a row for which `COND` is false fails the run; or a check of an
    /// `expect` step, `COND` a field of the step's row.
    Require(TExpr, Gate),
    Derive(Vec<(String, TExpr)>),
    Explode {
        list: TExpr,
        alias: String,
    },
    Window(WindowKind),
    GroupBy(Vec<(String, TExpr)>),
    Aggregate {
        min_group: Option<i64>,
        fields: Vec<(String, TExpr)>,
    },
    Score {
        model: String,
        inputs: Vec<(String, TExpr)>,
        output: String,
    },
    /// `protect for SINK`, with the mask the privacy analysis chose for each field that needed one.
    ProtectFor {
        sink: String,
        masks: Vec<(String, Mask)>,
    },
    Union(Vec<String>),
    /// A lookup join: each row meets the records of source `table` whose keys equal its own
    /// (with `asof`, only the latest of them at the row's event time).
    Join {
        table: String,
        left: bool,
        asof: Option<AsOf>,
        /// An interval join with a stream: rows meet when `lower <= other's time - row's time
        /// <= upper` (milliseconds).
        interval: Option<(i64, i64)>,
        /// Each key: (read from the row, read from the table's record).
        keys: Vec<(TExpr, TExpr)>,
        /// The table's fields the row gains: (name in the row, field of the record).
        fields: Vec<(String, String)>,
    },
}

impl Step {
    /// The source a join reads whole as its table (a lookup join, or an as-of join whose other
    /// side is not a stream).
    pub fn join_table(&self) -> Option<&str> {
        match self {
            Step::Join { table, interval: None, asof, .. } if !asof.as_ref().is_some_and(|a| a.versions) => Some(table),
            _ => None,
        }
    }

    /// A join whose other side is a stream met in the key exchange (an interval join, or an
    /// as-of join with a stream of versions).
    pub fn keyed_join(&self) -> bool {
        matches!(self, Step::Join { interval, asof, .. } if interval.is_some() || asof.as_ref().is_some_and(|a| a.versions))
    }
}

/// What makes a join an as-of join: of the records of a key, a row meets the one with the
/// latest event time at or before its own, no older than `within`; `order` breaks ties.
#[derive(Debug, Clone, PartialEq)]
pub struct AsOf {
    pub within: Option<i64>,
    pub order: Option<TExpr>,
    /// The other side is a stream of versions met in the key exchange, not a table read whole.
    pub versions: bool,
}

/// A field's default mask, from its `mask = "…"` annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum Mask {
    Hmac,
    Tokenize,
    /// `bucket(width)`, or `bucket` alone: keep one significant digit.
    Bucket(Option<f64>),
    Truncate(i64),
    Redact,
    Drop,
}

impl Mask {
    /// Reads `hmac`, `tokenize`, `bucket`, `bucket(10000)`, `truncate(3)`, `redact`, `drop`.
    pub fn parse(text: &str) -> Result<Mask, String> {
        let text = text.trim();
        let (name, arg) = match text.split_once('(') {
            Some((n, rest)) => match rest.strip_suffix(')') {
                Some(a) => (n.trim(), Some(a.trim())),
                None => return Err(format!("`{text}` is missing its closing `)`")),
            },
            None => (text, None),
        };
        let number = |a: &str| a.parse::<f64>().ok().filter(|w| *w > 0.0 && w.is_finite());
        match (name, arg) {
            ("hmac", None) => Ok(Mask::Hmac),
            ("tokenize", None) => Ok(Mask::Tokenize),
            ("redact", None) => Ok(Mask::Redact),
            ("drop", None) => Ok(Mask::Drop),
            ("bucket", None) => Ok(Mask::Bucket(None)),
            ("bucket", Some(a)) => number(a)
                .map(|w| Mask::Bucket(Some(w)))
                .ok_or_else(|| format!("`bucket` takes a positive width, not `{a}`")),
            ("truncate", Some(a)) => a
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Mask::Truncate)
                .ok_or_else(|| format!("`truncate` takes a number of characters, not `{a}`")),
            ("truncate", None) => Err("`truncate` needs the number of characters to keep: `truncate(3)`".to_string()),
            (n, Some(_)) if ["hmac", "tokenize", "redact", "drop"].contains(&n) => {
                Err(format!("`{n}` takes no argument"))
            }
            (n, _) => Err(format!("unknown masking function `{n}`")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mask::Hmac => "hmac",
            Mask::Tokenize => "tokenize",
            Mask::Bucket(_) => "bucket",
            Mask::Truncate(_) => "truncate",
            Mask::Redact => "redact",
            Mask::Drop => "drop",
        }
    }

    /// The type of a masked value of type `ty`, if the mask applies to it (`None` for `drop`,
    /// which removes the field, and for a mask that does not fit the type).
    pub fn apply_type(&self, ty: &Type) -> Option<Type> {
        let nullable = ty.is_nullable();
        let keep = |t: Type| if nullable { t.nullable() } else { t };
        match (self, ty.non_null()) {
            (Mask::Hmac | Mask::Tokenize, Type::String | Type::Int) => Some(keep(Type::String)),
            (Mask::Bucket(_), Type::Int | Type::Double) => Some(keep(Type::Double)),
            (Mask::Truncate(_), Type::String) => Some(keep(Type::String)),
            (Mask::Redact, _) => Some(keep(Type::String)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypedStep {
    pub step: Step,
    pub span: Span,
    /// The row after this step.
    pub row: Row,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub name: String,
    pub input: String,
    pub steps: Vec<TypedStep>,
    pub row: Row,
    /// False when any source it reads from has a streaming binding.
    pub bounded: bool,
    pub event_time: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LatePolicy {
    Drop,
    To(String),
    Allow(i64),
}

/// A connector call with its arguments checked: constants by name, row expressions per edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    pub name: String,
    pub args: Vec<(String, ConnectorArg)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorArg {
    Text(String),
    Env(String),
    Word(String),
    Int(i64),
    /// Expressions over the rows a sink receives, kept untyped until an edge gives the row.
    Exprs(Vec<crate::syntax::pipe_ast::Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub record: Type,
    pub row: Row,
    pub event_time: Option<TExpr>,
    pub watermark: Option<i64>,
    pub late: LatePolicy,
    pub idle_timeout: Option<i64>,
    /// `validate = all` (the default): every field of the record is checked against the schema,
    /// read or not; `validate = read`: only the fields the pipeline reads.
    pub validate_unread: bool,
    /// `refresh = 1h`: a join's table is read again this often while a stream runs.
    pub refresh: Option<(i64, Span)>,
    pub batch: Option<Connector>,
    pub stream: Option<Connector>,
    /// `fit = …`: the training data `pipec fit` reads for the transforms, and what their
    /// fitted parameters may hold of it.
    pub fit: Option<Connector>,
    pub fit_allows: Vec<Allow>,
    /// `k >= N` in the training binding's clearance: the least number of training rows a
    /// transform is fitted on, so that its parameters are aggregates of at least N records.
    pub fit_min_rows: Option<i64>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub module: ModuleId,
    pub params: Vec<(String, Type)>,
    pub ret: Type,
    pub body: TExpr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub kind: String,
    pub path: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub category: String,
    pub form: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    pub name: String,
    pub connector: Connector,
    pub purpose: Option<String>,
    pub allows: Vec<Allow>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    /// Index into [`Program::sinks`]; inline sinks are added there with a generated name.
    pub to: usize,
    /// Sink arguments that are row expressions, typed against `from`'s row.
    pub sink_exprs: Vec<(String, Vec<TExpr>)>,
    pub span: Span,
}

/// The typed program.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    pub namespace: Option<String>,
    pub sources: Vec<Source>,
    pub functions: Vec<Function>,
    pub streams: Vec<Stream>,
    pub models: Vec<Model>,
    pub sinks: Vec<Sink>,
    pub edges: Vec<Edge>,
    /// Operators (streams and sinks) whose record counts labeled data decides, so the run's
    /// report coarsens them; filled in by the privacy analysis.
    pub private_counts: std::collections::BTreeSet<String>,
}
