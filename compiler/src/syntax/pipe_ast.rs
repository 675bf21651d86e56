//! The syntax tree of a `.pipe` file: items (sources, functions, streams, models, sinks, edges)
//! and expressions, every node with its span. An `Error` node stands where the parser had to
//! skip text, so later stages can skip it without reporting again.

use super::ast::{Ident, StrLit};
use crate::source::{FileId, Span};

#[derive(Debug, Clone)]
pub struct PipeFile {
    pub file: FileId,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub kind: ItemKind,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ItemKind {
    Namespace(Ident),
    /// `include "x.thrift"`: brings Thrift types into scope.
    Include(StrLit),
    /// `import "x.pipe"`: brings another Pipe file's functions into scope.
    Import(StrLit),
    Source(SourceDecl),
    Fn(FnDecl),
    Stream(StreamDecl),
    Model(ModelDecl),
    Sink(SinkDecl),
    Edge(EdgeDecl),
}

#[derive(Debug, Clone)]
pub struct SourceDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub props: Vec<SourceProp>,
}

#[derive(Debug, Clone)]
pub struct SourceProp {
    pub key: Ident,
    pub value: PropValue,
}

#[derive(Debug, Clone)]
pub enum PropValue {
    Expr(Expr),
    Late(LatePolicy),
    /// `fit = files(…) [{ allow … }]`: the training data, and what the fitted parameters may
    /// hold of it.
    Fit(Expr, Option<Clearance>),
}

#[derive(Debug, Clone)]
pub enum LatePolicy {
    Drop(Span),
    To(Ident),
    Allow(Expr),
}

#[derive(Debug, Clone)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: TypeExpr,
    pub body: Expr,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// A type as written in a `.pipe` file: `double`, `Tradeline`, `list<string>`, `double?`.
#[derive(Debug, Clone)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TypeExprKind {
    Named(Ident),
    Generic(Ident, Vec<TypeExpr>),
    Nullable(Box<TypeExpr>),
    Error,
}

#[derive(Debug, Clone)]
pub struct StreamDecl {
    pub name: Ident,
    pub input: Ident,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum OpKind {
    Select(Vec<FieldDef>),
    Where(Expr),
    /// `require COND`: every row must satisfy `COND`, or the run fails and publishes nothing.
    Require(Expr),
    Derive(Vec<FieldDef>),
    Explode {
        list: Expr,
        alias: Ident,
    },
    Window(Expr),
    GroupBy(Vec<FieldDef>),
    Aggregate {
        min_group: Option<Expr>,
        fields: Vec<FieldDef>,
    },
    /// `metrics [(k >= N)] { score = …, label = …, threshold = …, bins = … }`: an aggregate
    /// whose fields are the model-evaluation metrics of `score` against `label`.
    Metrics {
        min_group: Option<Expr>,
        args: Vec<FieldDef>,
    },
    /// `expect [(k >= N)] { [warn] [NAME =] COND, … }`: data validation. An aggregate of one
    /// bool per check (per group and window); a check that does not hold fails the run (`warn`:
    /// is reported). A `COND` without aggregates must hold for every row.
    Expect {
        min_group: Option<Expr>,
        checks: Vec<ExpectCheck>,
        /// `{ allow … }` after the checks: what the run's outcome may reveal beyond aggregates.
        clearance: Option<Clearance>,
    },
    Score {
        model: Ident,
        inputs: Vec<FieldDef>,
        alias: Ident,
    },
    ProtectFor(Ident),
    Union(Vec<Ident>),
    /// `join [left] [asof] OTHER [as PREFIX] on LEFT = RIGHT, … [within DUR [to DUR]]
    /// [order by EXPR]`: each `LEFT` is read from the row, each `RIGHT` (and `EXPR`) from the
    /// other side's records. `within LOWER to UPPER` makes an interval join.
    Join(Box<JoinOp>),
    Error,
}

/// One check of an `expect` step.
#[derive(Debug, Clone)]
pub struct ExpectCheck {
    /// `warn`: reported, but the run goes on.
    pub warn: bool,
    pub name: Option<Ident>,
    pub cond: Expr,
    pub span: Span,
}

/// The parts of a `join` step, as written.
#[derive(Debug, Clone)]
pub struct JoinOp {
    pub left: bool,
    pub asof: bool,
    pub table: Ident,
    pub prefix: Option<Ident>,
    pub on: Vec<(Expr, Expr)>,
    pub within: Option<(Expr, Option<Expr>)>,
    pub order: Option<Expr>,
}

impl OpKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            OpKind::Select(_) => "select",
            OpKind::Where(_) => "where",
            OpKind::Require(_) => "require",
            OpKind::Derive(_) => "derive",
            OpKind::Explode { .. } => "explode",
            OpKind::Window(_) => "window",
            OpKind::GroupBy(_) => "group by",
            OpKind::Aggregate { .. } => "aggregate",
            OpKind::Metrics { .. } => "metrics",
            OpKind::Expect { .. } => "expect",
            OpKind::Score { .. } => "score",
            OpKind::ProtectFor(_) => "protect for",
            OpKind::Union(_) => "union",
            OpKind::Join(_) => "join",
            OpKind::Error => "?",
        }
    }
}

/// `name = expr`, or just `path` (named after its last segment).
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ModelDecl {
    pub name: Ident,
    pub loader: Expr,
}

#[derive(Debug, Clone)]
pub struct SinkDecl {
    pub name: Ident,
    pub connector: Expr,
    pub clearance: Option<Clearance>,
}

/// The block after a sink: what it may receive.
#[derive(Debug, Clone)]
pub struct Clearance {
    pub rules: Vec<ClearanceRule>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ClearanceRule {
    Purpose(StrLit),
    Allow {
        category: StrLit,
        form: Ident,
    },
    /// `k >= N`: the least number of records the data is aggregated over (a source's training
    /// data only: the fitted parameters are aggregates of the whole set).
    MinRows {
        k: Expr,
        span: Span,
    },
}

#[derive(Debug, Clone)]
pub struct EdgeDecl {
    pub from: Ident,
    pub to: EdgeTarget,
}

#[derive(Debug, Clone)]
pub enum EdgeTarget {
    Named(Ident),
    Inline { connector: Expr, clearance: Option<Clearance> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Coalesce => "??",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    /// Milliseconds.
    Duration(i64),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
    Name(Ident),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Arg>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Error,
}

impl Expr {
    /// The dotted path this expression spells (`t.account_id`), if it is one.
    pub fn as_path(&self) -> Option<Vec<&Ident>> {
        match &self.kind {
            ExprKind::Name(n) => Some(vec![n]),
            ExprKind::Field(base, f) => {
                let mut p = base.as_path()?;
                p.push(f);
                Some(p)
            }
            _ => None,
        }
    }
}
