//! The one place where diagnostics become text: miette reports for people, JSON for machines.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use super::{Diagnostic, Severity};
use crate::source::{SourceMap, Span};

/// Renders diagnostics as miette reports; `color` picks the themed or the plain style.
pub fn human(map: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diags {
        let report = Report::new(map, d);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}[{}]: {}\n", severity_word(d.severity), d.code.as_str(), d.message));
        }
    }
    out
}

/// A one-line summary such as "2 errors, 1 warning".
pub fn summary(diags: &[Diagnostic]) -> String {
    let count = |s| diags.iter().filter(|d| d.severity == s).count();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(count(Severity::Error), "error"), plural(count(Severity::Warning), "warning"))
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// A diagnostic paired with the source it points into, as miette wants it.
struct Report {
    code: &'static str,
    severity: Severity,
    message: String,
    help: Option<String>,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    /// Secondary labels that point into other files become related reports.
    related: Vec<Report>,
}

impl Report {
    fn new(map: &SourceMap, d: &Diagnostic) -> Report {
        let file = d.primary.span.file;
        let mut help = d.help.clone();
        for n in &d.notes {
            let h = help.get_or_insert_with(String::new);
            if !h.is_empty() {
                h.push('\n');
            }
            h.push_str("note: ");
            h.push_str(n);
        }
        let mut labels =
            vec![LabeledSpan::new_primary_with_span(label_text(&d.primary.message), source_span(d.primary.span))];
        let mut related = Vec::new();
        for l in &d.secondary {
            if l.span.file == file {
                labels.push(LabeledSpan::new_with_span(label_text(&l.message), source_span(l.span)));
            } else {
                related.push(Report {
                    code: d.code.as_str(),
                    severity: Severity::Note,
                    message: l.message.clone(),
                    help: None,
                    source: named(map, l.span),
                    labels: vec![LabeledSpan::new_primary_with_span(None, source_span(l.span))],
                    related: Vec::new(),
                });
            }
        }
        Report {
            code: d.code.as_str(),
            severity: d.severity,
            message: d.message.clone(),
            help,
            source: named(map, d.primary.span),
            labels,
            related,
        }
    }
}

fn label_text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn source_span(s: Span) -> SourceSpan {
    SourceSpan::from(s.start as usize..s.end as usize)
}

fn named(map: &SourceMap, span: Span) -> NamedSource<String> {
    let f = map.get(span.file);
    NamedSource::new(f.path.display().to_string(), f.text.clone())
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
    }
}

/// A position in a file, 1-based, as machines want it.
#[derive(Debug, Serialize)]
pub struct JsonLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub start_byte: u32,
    pub end_byte: u32,
}

#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub message: String,
    pub location: JsonLocation,
}

#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub location: JsonLocation,
    pub label: String,
    pub labels: Vec<JsonLabel>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

pub fn location(map: &SourceMap, span: Span) -> JsonLocation {
    let f = map.get(span.file);
    let (line, column) = f.line_col(span.start);
    let (end_line, end_column) = f.line_col(span.end);
    JsonLocation {
        file: f.path.display().to_string(),
        line,
        column,
        end_line,
        end_column,
        start_byte: span.start,
        end_byte: span.end,
    }
}

/// The machine-readable form of a diagnostic.
pub fn to_json(map: &SourceMap, d: &Diagnostic) -> JsonDiagnostic {
    JsonDiagnostic {
        code: d.code.as_str(),
        severity: d.severity,
        message: d.message.clone(),
        location: location(map, d.primary.span),
        label: d.primary.message.clone(),
        labels: d
            .secondary
            .iter()
            .map(|l| JsonLabel { message: l.message.clone(), location: location(map, l.span) })
            .collect(),
        help: d.help.clone(),
        notes: d.notes.clone(),
    }
}
