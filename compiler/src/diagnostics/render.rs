//! The one place where diagnostics become text: miette reports for people, JSON for machines.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan,
    SpanContents,
};
use serde::Serialize;

use super::{Diagnostic, Severity};
use crate::source::{SourceMap, Span};

/// Renders diagnostics as miette reports; `color` picks the themed or the plain style.
pub fn human(map: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i == MAX_RENDERED {
            out.push_str(&format!("… and {} more (use --format json to see them all)\n", diags.len() - MAX_RENDERED));
            break;
        }
        // miette cannot show snippets of very long lines (minified or generated files): those
        // get the plain form, which says the same things without the snippet.
        let long = [d.primary.span]
            .iter()
            .chain(d.secondary.iter().map(|l| &l.span))
            .any(|s| line_len(map, *s) > MAX_SNIPPET_LINE);
        let report = Report::new(map, d);
        if long || handler.render_report(&mut out, &report).is_err() {
            out.push_str(&plain(map, d));
        }
    }
    out
}

/// Human output shows at most this many diagnostics in full.
const MAX_RENDERED: usize = 200;
/// Lines longer than this (in bytes) are not shown as snippets.
const MAX_SNIPPET_LINE: usize = 2_000;

fn line_len(map: &SourceMap, span: Span) -> usize {
    let text = &map.get(span.file).text;
    let start = text[..span.start as usize].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.start as usize..].find('\n').map_or(text.len(), |i| span.start as usize + i);
    end - start
}

/// A diagnostic without a snippet: `error[E0001]: message`, its location, labels, help and notes.
fn plain(map: &SourceMap, d: &Diagnostic) -> String {
    let at = |s: Span| {
        let l = location(map, s);
        format!("{}:{}:{}", l.file, l.line, l.column)
    };
    let mut out =
        format!("{}[{}]: {}\n  --> {}", severity_word(d.severity), d.code.as_str(), d.message, at(d.primary.span));
    if !d.primary.message.is_empty() {
        out.push_str(&format!(": {}", d.primary.message));
    }
    out.push('\n');
    for l in &d.secondary {
        out.push_str(&format!("  --> {}: {}\n", at(l.span), l.message));
    }
    if let Some(h) = &d.help {
        out.push_str(&format!("  help: {h}\n"));
    }
    for n in &d.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out.push('\n');
    out
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
    source: CharColumns,
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

fn named(map: &SourceMap, span: Span) -> CharColumns {
    let f = map.get(span.file);
    CharColumns { name: f.path.display().to_string(), text: f.text.clone() }
}

/// A named source whose columns count characters, as the JSON output and the notes do (miette
/// counts bytes, which is wrong after any non-ASCII character).
struct CharColumns {
    name: String,
    text: String,
}

impl SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let start = inner.span().offset();
        let head = self.text.get(..start).unwrap_or("");
        let line_start = head.rfind('\n').map_or(0, |i| i + 1);
        let column = head[line_start..].chars().count();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
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

    fn source_code(&self) -> Option<&dyn SourceCode> {
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
    /// The path that led to a privacy finding, step by step.
    pub flow: Vec<JsonLabel>,
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
        flow: d
            .flow
            .iter()
            .map(|l| JsonLabel { message: l.message.clone(), location: location(map, l.span) })
            .collect(),
    }
}

/// A fingerprint that survives lines moving: it hashes what the finding is about (code, file,
/// message, label), never where in the file it is. FNV-1a, so it is stable across Rust versions.
pub fn fingerprint(map: &SourceMap, d: &Diagnostic) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let file = map.get(d.primary.span.file).path.display().to_string();
    for part in [d.code.as_str(), file.as_str(), d.message.as_str(), d.primary.message.as_str()] {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// SARIF 2.1.0 for code scanning. `prefix` is the working directory relative to the repository
/// root, so that every location is relative to the root (`%SRCROOT%`).
pub fn sarif(map: &SourceMap, diags: &[Diagnostic], prefix: &std::path::Path, version: &str) -> serde_json::Value {
    use serde_json::json;
    let rules: Vec<serde_json::Value> = super::Code::ALL
        .iter()
        .map(|c| {
            let level = match c.severity() {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            json!({
                "id": c.as_str(),
                "name": c.title(),
                "shortDescription": { "text": c.title() },
                "fullDescription": { "text": format!("{}: {}", c.as_str(), c.title()) },
                "help": {
                    "text": format!("{} — see lang-spec/diagnostics.md#{}", c.title(), c.as_str().to_lowercase()),
                    "markdown": format!("**{}** {}. See `lang-spec/diagnostics.md`, section {}.", c.as_str(), c.title(), c.as_str())
                },
                "defaultConfiguration": { "level": level }
            })
        })
        .collect();
    let location = |span: Span, message: Option<&str>| {
        let l = location(map, span);
        let uri = crate::source::normalize(&prefix.join(&l.file)).display().to_string().replace('\\', "/");
        let mut v = json!({
            "physicalLocation": {
                "artifactLocation": { "uri": uri, "uriBaseId": "%SRCROOT%" },
                "region": { "startLine": l.line, "startColumn": l.column, "endLine": l.end_line, "endColumn": l.end_column }
            }
        });
        if let Some(m) = message {
            v["message"] = json!({ "text": m });
        }
        v
    };
    let results: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let mut r = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": super::Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0),
                "level": level,
                "message": { "text": text },
                "locations": [location(d.primary.span, None)],
                "partialFingerprints": { "pipeFindingHash/v1": fingerprint(map, d) }
            });
            if !d.secondary.is_empty() {
                r["relatedLocations"] = d
                    .secondary
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let mut v = location(l.span, Some(&l.message));
                        v["id"] = json!(i);
                        v
                    })
                    .collect();
            }
            if !d.flow.is_empty() {
                let steps: Vec<serde_json::Value> =
                    d.flow.iter().map(|l| json!({ "location": location(l.span, Some(&l.message)) })).collect();
                r["codeFlows"] = json!([{ "threadFlows": [{ "locations": steps }] }]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "pipec",
                "version": version,
                "rules": rules
            }},
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    })
}
