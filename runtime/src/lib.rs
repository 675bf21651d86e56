//! The Pipe runtime: what generated pipelines link against to run in batch or streaming mode.
//!
//! Generated code defines *what* happens to a record; the runtime decides *how* it runs (see
//! `ARCHITECTURE.md`). This crate grows with the batch and streaming runners; today it holds the
//! event-time window arithmetic that both modes share (so batch and streaming assign every record
//! to exactly the same windows) and the masking functions privacy labels rely on.

pub mod mask;
pub mod window;
