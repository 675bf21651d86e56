//! The IR, stage 4: the typed program lowered to a DAG of operators with explicit row schemas.
//! Sources and the dead-letter stream are leaves; per-record work (`select`, `derive`, `where`,
//! `explode`, `score`, `protect for`) is a `Map` of stages; `Aggregate` is the key-exchange
//! point (records are partitioned by key hash there); sinks are roots. `pipec explain` prints it.

mod lower;
pub mod print;

use crate::hir::{Mask, Row, TExpr, WindowKind};
use crate::source::Span;
use crate::types::Type;

pub use lower::lower;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// One per-record step inside a `Map`.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Select(Vec<(String, TExpr)>),
    Derive(Vec<(String, TExpr)>),
    Filter(TExpr),
    /// `require`: a row for which `cond` is false is counted under `what` (the step and its
    /// stream) and fails the run; the row goes on. A check of an `expect` step (`blocking`:
    /// whether it fails the run) counts every evaluation, held or not.
    Require {
        cond: TExpr,
        what: String,
        blocking: Option<bool>,
    },
    Explode {
        list: TExpr,
        alias: String,
    },
    Score {
        model: String,
        inputs: Vec<(String, TExpr)>,
        output: String,
    },
    Protect {
        sink: String,
        masks: Vec<(String, Mask)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// Records parsed from a source; only the fields in `read` are deserialized, and `filter`
    /// (pushed down from the first `where`) is applied as soon as they are.
    Source {
        source: String,
        record: Type,
        read: Vec<String>,
        filter: Option<TExpr>,
        event_time: Option<String>,
        bounded: bool,
        /// Read whole as a join's table before the other sources, not as a stream.
        table: bool,
    },
    /// Records that arrive too late, from a source's `late = to NAME`.
    Late {
        source: String,
    },
    /// Every record any source or step rejected, with its reason.
    Rejected,
    /// Per-record work, in order; consecutive steps are fused into one stage function.
    Map(Vec<Stage>),
    /// The key exchange: records are partitioned by the hash of `keys`, assigned to windows and
    /// folded into accumulators.
    Aggregate {
        keys: Vec<(String, TExpr)>,
        window: Option<WindowKind>,
        min_group: Option<i64>,
        fields: Vec<(String, TExpr)>,
    },
    Union,
    /// A lookup join. Input 0 is the stream; input 1 the table's source, read whole before
    /// any row of the stream: each row meets the table's records whose keys equal its own.
    Lookup {
        table: String,
        left: bool,
        asof: Option<crate::hir::AsOf>,
        /// An interval join: input 1 is another stream, and rows meet when `lower <= its time
        /// - the row's time <= upper`, in the key exchange.
        interval: Option<(i64, i64)>,
        /// (read from the row, read from the table's record) per key.
        keys: Vec<(TExpr, TExpr)>,
        /// The table's fields the row gains: (name in the row, field of the record).
        fields: Vec<(String, String)>,
    },
    /// Writes its input to sink `sink` (an index into the program's sinks).
    Sink {
        sink: usize,
        name: String,
        exprs: Vec<(String, Vec<TExpr>)>,
    },
}

impl NodeKind {
    /// A join whose other side is a stream met in the key exchange (an interval join, or an
    /// as-of join with a stream of versions).
    pub fn keyed_join(&self) -> bool {
        matches!(self, NodeKind::Lookup { interval, asof, .. } if interval.is_some() || asof.as_ref().is_some_and(|a| a.versions))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub inputs: Vec<NodeId>,
    /// The row this node produces.
    pub row: Row,
    /// The source, stream or sink this node implements.
    pub name: String,
    pub span: Span,
}

/// The operator DAG, and what the optimizer did to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub namespace: Option<String>,
    pub nodes: Vec<Node>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The nodes that read `id`'s output.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        (0..self.nodes.len()).map(NodeId).filter(|n| self.nodes[n.0].inputs.contains(&id)).collect()
    }

    /// Removes the nodes `keep` rejects and renumbers the rest, keeping their order.
    pub fn retain(&mut self, keep: impl Fn(NodeId, &Node) -> bool) {
        let mut map = vec![None; self.nodes.len()];
        let mut nodes = Vec::new();
        for (i, n) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if keep(NodeId(i), &n) {
                map[i] = Some(NodeId(nodes.len()));
                nodes.push(n);
            }
        }
        for n in &mut nodes {
            n.inputs = n.inputs.iter().filter_map(|i| map[i.0]).collect();
        }
        self.nodes = nodes;
    }
}
