//! The Pipe runtime: what generated pipelines link against to run.
//!
//! Generated code defines *what* happens to a record (typed row structs, fused stage functions,
//! key extractors, accumulators); the runtime decides *how* it runs (see `ARCHITECTURE.md`):
//!
//! | module | role |
//! |---|---|
//! | [`run`] | what a pipeline is to the runtime: the `Pipeline` trait, options, summary, the in-memory run |
//! | [`engine`] | the execution core on timely-dataflow: key exchange, watermarks, batch and stream drivers, the binary's `main` |
//! | [`checkpoint`] | cluster-wide checkpoints: per-worker state files and the manifest |
//! | [`connectors`] | stream readers (`follow`, `stdin`) |
//! | [`metrics`] | per-process Prometheus metrics |
//! | [`input`] | file globs to splits; JSON Lines and CSV cut at line starts |
//! | [`sink`] | JSON Lines, CSV and Parquet sinks, Hive partitions, atomic commit |
//! | [`json`] | the fast path that reads plain JSON records into generated rows, before serde |
//! | [`record`] | where a record came from, rejections, enums |
//! | [`value`] | timestamps, dates and nested values in text formats |
//! | [`f`] | builtin functions and operators |
//! | [`agg`] | accumulators with add/merge/finish |
//! | `arrow` | rows to and from Arrow record batches, Arrow IPC files (feature `arrow`) |
//! | [`pq`] | fields of Parquet rows for Parquet sources |
//! | [`model`] | scoring kernels for compiled LightGBM, XGBoost and linear models |
//! | [`mask`] | HMAC keys, tokenization and the other masks |
//! | [`window`] | event-time window assignment shared by batch and streaming |

pub mod agg;
#[cfg(feature = "arrow")]
pub mod arrow;
pub mod checkpoint;
pub mod connectors;
pub mod engine;
pub mod evaluate;
pub mod f;
pub mod input;
pub mod join;
pub mod json;
pub mod mask;
pub mod metrics;
pub mod model;
pub mod pq;
pub mod record;
pub mod run;
pub mod sink;
pub mod stats;
pub mod value;
pub mod window;

/// The allocator generated binaries install: records allocate many small strings, and
/// mimalloc's thread-local free lists serve them faster than the system allocator.
pub use mimalloc::MiMalloc as Allocator;

/// Includes the module `pipe-build` generated for a pipeline in a build script:
/// `pipe_runtime::include_pipeline!("loans");` defines `mod loans` (the module name is the
/// program's namespace, or the file's name).
#[macro_export]
macro_rules! include_pipeline {
    ($module:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $module, ".rs"));
    };
}

/// Expands to its items when this crate was built with its `arrow` feature, to nothing
/// otherwise: a module `pipeline!` generates offers `run_batch_arrow` when the crate that
/// embeds it turns the feature on.
#[cfg(feature = "arrow")]
#[macro_export]
macro_rules! if_arrow {
    ($($item:item)*) => { $($item)* };
}
#[cfg(not(feature = "arrow"))]
#[macro_export]
macro_rules! if_arrow {
    ($($item:item)*) => {};
}

/// A program that reads or writes Arrow files needs the `arrow` feature: without it, this is
/// the compile error that says so (instead of one about a missing trait method).
#[cfg(feature = "arrow")]
#[macro_export]
macro_rules! require_arrow {
    () => {};
}
#[cfg(not(feature = "arrow"))]
#[macro_export]
macro_rules! require_arrow {
    () => {
        compile_error!(
            "this pipeline reads or writes Arrow (`format = arrow`): enable the `arrow` feature of pipe-runtime"
        );
    };
}

/// What generated code uses, re-exported so a generated crate depends on this crate alone.
pub mod prelude {
    pub use crate::agg::Acc;
    pub use crate::record::{narrowed, Origin, Reject, Rejected, Res};
    pub use crate::run::{Base, NodeDecl, NodeKind, Pipeline, SourceDecl, Stat};
    pub use crate::sink::{PgMode, Record, SinkBuf, SinkDecl, SinkFormat, SinkKind};
    pub use crate::value::{Cell, HashF64};
    pub use crate::{agg, f, sink, value};
    pub use csv;
    pub use parquet;
    pub use postcard;
    pub use serde;
    pub use serde_json;
    pub use serde_path_to_error;
}
