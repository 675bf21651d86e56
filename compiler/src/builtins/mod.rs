//! The standard library: builtin functions and aggregates (one file each, listed in the
//! registries `functions::ALL` and `aggregates::ALL`) and the connectors sources and sinks use.

pub mod aggregates;
pub mod connectors;
pub mod functions;
pub mod sig;

use std::fmt;

use crate::types::Type;
pub use sig::SigError;

/// A builtin scalar function.
pub struct Function {
    pub name: &'static str,
    /// The signature as the language reference shows it.
    pub signature: &'static str,
    pub doc: &'static str,
    /// The type rule: the result type for these argument types, or why they do not fit.
    pub check: fn(&[Type]) -> Result<Type, SigError>,
    /// Expressions and the type each has; a test checks every one with the real checker.
    pub examples: &'static [(&'static str, &'static str)],
}

/// A builtin aggregate: create/add/merge/finish state over the rows of a group.
pub struct Aggregate {
    pub name: &'static str,
    pub signature: &'static str,
    pub doc: &'static str,
    /// `first`/`last` order rows by event time, so the stream must have one.
    pub needs_event_time: bool,
    pub check: fn(&[Type]) -> Result<Type, SigError>,
    pub examples: &'static [(&'static str, &'static str)],
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.signature)
    }
}

impl fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.signature)
    }
}

pub fn function(name: &str) -> Option<&'static Function> {
    functions::ALL.iter().copied().find(|f| f.name == name)
}

pub fn aggregate(name: &str) -> Option<&'static Aggregate> {
    aggregates::ALL.iter().copied().find(|f| f.name == name)
}

/// Window functions, only valid after `| window`.
pub const WINDOWS: &[&str] = &["tumbling", "sliding", "session"];

/// Model formats, only valid in `model name = …`.
pub const MODEL_LOADERS: &[&str] = &["lightgbm", "xgboost", "linear"];

/// The language reference's page on builtins (`lang-spec/functions.md`), generated from the
/// registries so it cannot drift.
pub fn reference() -> String {
    let mut out = String::from(
        "# Builtin functions\n\n<!-- Generated from the compiler's registry (compiler/src/builtins/); a test keeps it current. -->\n\n\
         A function that fails on a record's data (a parse, a division by zero, a square root of a\n\
         negative number) sends that record to `rejected` with the reason; nothing panics and nothing\n\
         is lost. Functions do not accept nullable arguments unless their signature says so: handle the\n\
         null first (see types.md). Masking functions (`hmac`, `tokenize`, `redact`, `bucket`,\n\
         `truncate`, `generalize`) keep a null a null.\n\n## Scalar functions\n\n| signature | meaning | examples |\n|---|---|---|\n",
    );
    let examples =
        |ex: &[(&str, &str)]| ex.iter().map(|(e, t)| format!("`{e}` : `{t}`")).collect::<Vec<_>>().join("<br>");
    for f in functions::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.signature.replace('|', "\\|"),
            f.doc.replace('|', "\\|"),
            examples(f.examples)
        ));
    }
    out.push_str(
        "\n## Aggregate functions\n\nOnly inside `aggregate { … }`. Their arguments are evaluated on each record of the group; nulls\n\
         are skipped. Each keeps bounded state that merges across partitions, except `auc`,\n\
         `quantile_means` and `quantile_edges`, which keep the group's values, and `top_values`, which\n\
         keeps a count per distinct value.\n\n| signature | meaning | examples |\n|---|---|---|\n",
    );
    for a in aggregates::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            a.signature.replace('|', "\\|"),
            a.doc.replace('|', "\\|"),
            examples(a.examples)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::hir::Step;
    use crate::source::MemoryLoader;

    const SCHEMA: &str = "struct R {\n 1: required string member\n 2: optional double amount\n 3: required i64 ts (timestamp = \"millis\")\n}\n";

    /// The type the checker gives `expr` as a field of a select (or of an aggregate).
    fn type_of(expr: &str, aggregate: bool) -> String {
        let step = if aggregate {
            format!("group by member | aggregate {{ v = {expr} }}")
        } else {
            format!("select {{ v = {expr} }}")
        };
        let program = format!(
            "include \"r.thrift\"\nsource s: R {{ event_time = ts, batch = files(\"x\") }}\nstream out = s | {step}\nout -> stdout()\n"
        );
        let loader = MemoryLoader::new().with("r.thrift", SCHEMA).with("main.pipe", program);
        // Fitted transforms and `drift` are typed without their parameters (as `pipec fit` and
        // `pipec profile` check a program before writing them).
        let options = crate::Options { fitting: true, profiling: true, ..Default::default() };
        let checked = crate::check_program_with(&loader, Path::new("main.pipe"), options).expect("loads");
        let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
        assert!(errors.is_empty(), "`{expr}`: {errors:?}");
        let stream = &checked.program.streams[0];
        let last = stream.steps.last().expect("a step");
        match &last.step {
            Step::Select(f) | Step::Aggregate { fields: f, .. } => f[0].1.ty.to_string(),
            other => panic!("unexpected step {other:?}"),
        }
    }

    #[test]
    fn every_builtin_example_has_the_documented_type() {
        for f in super::functions::ALL {
            for (expr, ty) in f.examples {
                assert_eq!(type_of(expr, false), *ty, "example `{expr}` of `{}`", f.name);
            }
        }
        for a in super::aggregates::ALL {
            for (expr, ty) in a.examples {
                assert_eq!(type_of(expr, true), *ty, "example `{expr}` of `{}`", a.name);
            }
        }
    }

    #[test]
    fn names_are_unique_across_functions_and_aggregates() {
        let mut names: Vec<&str> =
            super::functions::ALL.iter().map(|f| f.name).chain(super::aggregates::ALL.iter().map(|a| a.name)).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
