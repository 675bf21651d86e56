//! Where records come from in a stream. Batch inputs are planned into splits by
//! [`crate::input`]; the stream bindings have readers here.

pub mod files;
