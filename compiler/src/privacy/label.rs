//! Labels: what a value reveals. Each value carries a set of (category, form) pairs, each with
//! the path it took from the schema field that introduced it. Forms are ordered from most to
//! least revealing; masking only ever moves a label down the order.

use crate::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Raw,
    Tokenized,
    Pseudonymized,
    Generalized,
    Aggregated,
    Redacted,
}

impl Form {
    pub const ALL: [Form; 6] =
        [Form::Raw, Form::Tokenized, Form::Pseudonymized, Form::Generalized, Form::Aggregated, Form::Redacted];

    pub fn name(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::Tokenized => "tokenized",
            Form::Pseudonymized => "pseudonymized",
            Form::Generalized => "generalized",
            Form::Aggregated => "aggregated",
            Form::Redacted => "redacted",
        }
    }

    pub fn parse(s: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// A builtin that lowers the form of what it is applied to.
pub fn mask_form(function: &str) -> Option<Form> {
    Some(match function {
        "tokenize" => Form::Tokenized,
        "hmac" => Form::Pseudonymized,
        "bucket" | "truncate" | "generalize" => Form::Generalized,
        "redact" => Form::Redacted,
        _ => return None,
    })
}

/// One step of the path a label took, for diagnostics and reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    pub span: Span,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub category: String,
    pub form: Form,
    /// Carried by a condition (a `where` or an `if`) rather than by the value itself.
    pub implicit: bool,
    pub path: Vec<Hop>,
    /// The `mask` annotated on the field this label came from, for `protect for`.
    pub mask: Option<crate::hir::Mask>,
}

/// The labels of one value: at most one per category, the most revealing one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels(pub Vec<Label>);

impl Labels {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Adds `other`'s labels; per category the more revealing form wins, and a label the value
    /// carries itself wins over an implicit one.
    /// Adds `other`'s labels; per category and kind (carried by the value, or implicit) the more
    /// revealing form wins. A value may carry a masked label and an implicit raw one of the same
    /// category: `if ssn == x then redact(ssn) else "no"` reveals the comparison.
    pub fn union(&mut self, other: &Labels) {
        for l in &other.0 {
            match self.0.iter_mut().find(|m| m.category == l.category && m.implicit == l.implicit) {
                Some(m) => {
                    if l.form < m.form {
                        *m = l.clone();
                    }
                }
                None => self.0.push(l.clone()),
            }
        }
    }

    pub fn joined<'a>(all: impl IntoIterator<Item = &'a Labels>) -> Labels {
        let mut out = Labels::default();
        for l in all {
            out.union(l);
        }
        out
    }

    /// Records that every label passed through `span`.
    pub fn hop(mut self, span: Span, what: impl Into<String>) -> Labels {
        let what = what.into();
        for l in &mut self.0 {
            if l.path.last().is_none_or(|h| h.span != span || h.what != what) {
                l.path.push(Hop { span, what: what.clone() });
            }
        }
        self
    }

    /// Lowers every label to at most `form` (masking never makes data more revealing).
    pub fn lower(mut self, form: Form, span: Span, what: &str) -> Labels {
        for l in &mut self.0 {
            if form > l.form && !l.implicit {
                l.form = form;
                l.path.push(Hop { span, what: format!("{what}: now {}", form.name()) });
            }
        }
        self
    }

    /// Lowers every label, implicit ones included: for aggregation over groups of a minimum
    /// size, which hides which records took part, not only their values.
    pub fn lower_all(mut self, form: Form, span: Span, what: &str) -> Labels {
        for l in &mut self.0 {
            if form > l.form {
                l.form = form;
                l.path.push(Hop { span, what: format!("{what}: now {}", form.name()) });
            }
        }
        self
    }

    /// The same labels, carried by a condition.
    pub fn implicit(mut self) -> Labels {
        for l in &mut self.0 {
            l.implicit = true;
        }
        self
    }
}
