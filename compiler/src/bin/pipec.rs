//! `pipec`, the Pipe command-line compiler.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pipec::diagnostics::{render, Severity};
use pipec::fs_loader::FsLoader;
use pipec::source::LoadError;

#[derive(Parser, Debug)]
#[command(name = "pipec", version, about = "The Pipe pipeline compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Type-check pipelines and report every problem. Exit code: 0 clean (warnings allowed),
    /// 1 when there are errors, 2 when a file cannot be read.
    Check {
        /// The `.pipe` files to check; each is the root of its own program.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `human` for people, `json` for machines.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Colors in human output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        /// Privacy warnings (unlabeled personal fields, implicit flows) become errors.
        #[arg(long)]
        strict: bool,
        /// Report everything but exit 0 on errors (SARIF levels become warnings): for rolling out
        /// a policy without failing builds. Unreadable files still exit 2.
        #[arg(long)]
        warn_only: bool,
    },
    /// Print the optimized plan: the operator DAG with each operator's row, and what each
    /// optimizer pass did.
    Explain {
        /// The `.pipe` file to explain.
        file: PathBuf,
        /// Print the plan as lowered, before the optimizer runs.
        #[arg(long)]
        unoptimized: bool,
    },
    /// Compile a pipeline to a native binary: check it, generate Rust, build it with cargo
    /// against the precompiled runtime. Unchanged pipelines are not rebuilt.
    Build {
        /// The `.pipe` file to build.
        file: PathBuf,
        /// Where to put the binary (it is also kept in the build cache).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Build with cargo's release profile as it is. The default build is that profile too,
        /// except that it keeps the pipeline's own crate's incremental cache between builds
        /// (an edit rebuilds faster); both run as fast. Compiled in a directory of its own:
        /// the first `--release` build compiles the runtime once more.
        #[arg(long, conflicts_with = "quick")]
        release: bool,
        /// Leave the pipeline's own code unoptimized (the runtime stays optimized, in cargo's
        /// dev profile: compiled once more the first time): an edit rebuilds in about a
        /// second, the binary runs slower; for trying a change on a sample.
        #[arg(long)]
        quick: bool,
        /// Privacy warnings become errors.
        #[arg(long)]
        strict: bool,
    },
    /// Fit the transforms (`zscore`, `scale_to_01`, `vocabulary`, `quantile_bucket`): run their
    /// analysis over each source's training data (`fit = files(…)`) and write the parameters
    /// to the program's `.fit.json`, which `check`, `build` and `run` then compile in.
    Fit {
        /// The `.pipe` file whose transforms to fit.
        file: PathBuf,
        /// Privacy warnings become errors.
        #[arg(long)]
        strict: bool,
    },
    /// Profile every source's training data (its `fit` binding, else its `batch` binding):
    /// counts, null rates, quantiles, most frequent values per field, written to the program's
    /// `.profile.json`, the baseline `drift(…)` checks compare with.
    Profile {
        /// The `.pipe` file whose sources to profile.
        file: PathBuf,
        /// Privacy warnings become errors.
        #[arg(long)]
        strict: bool,
    },
    /// Build the pipeline if it changed, then run it. Arguments after `--` go to the pipeline
    /// (see its `--help`: `--source NAME=URI`, `--sink NAME=URI`, `--hmac-key-file`, …).
    Run {
        /// The `.pipe` file to run.
        file: PathBuf,
        /// Build with cargo's release profile as it is (see `pipec build --help`).
        #[arg(long, conflicts_with = "quick")]
        release: bool,
        /// Leave the pipeline's own code unoptimized (see `pipec build --help`).
        #[arg(long)]
        quick: bool,
        /// Privacy warnings become errors.
        #[arg(long)]
        strict: bool,
        /// Arguments for the pipeline binary.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Draw the pipeline: sources, steps, key exchanges, models and sinks, each edge labelled
    /// with the privacy labels and forms it carries; leaks in red. Programs with privacy errors
    /// are drawn (that is what the red is for); other errors are reported instead.
    Graph {
        /// The `.pipe` file to draw.
        file: PathBuf,
        /// `dot` (Graphviz), `mermaid` (renders in GitHub Markdown) or `svg` (needs Graphviz's
        /// `dot` on the PATH).
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Format `.pipe` files in place in the one canonical layout (tokens are never added,
    /// dropped or reordered, so the program does not change); folders are searched for `.pipe`
    /// files. With `--check`, change nothing: list the files that are not formatted and exit 1
    /// if there are any. Files with syntax errors are reported and left alone.
    Fmt {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Report instead of rewriting.
        #[arg(long)]
        check: bool,
    },
    /// Serve the Language Server Protocol on standard input and output, for editors:
    /// diagnostics as you type, hover (types, privacy labels), go to definition, completion,
    /// document symbols. See editors/vscode/.
    Lsp,
    /// List every column each sink receives, with its privacy labels, their forms, and where
    /// each label came from; then every declassification.
    PrivacyReport {
        /// The `.pipe` file to report on.
        file: PathBuf,
        /// `human` or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Format {
    Human,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning; locations are relative to the repository root.
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, format, color, strict, warn_only } => {
            check(&files, format, color, pipec::Options { strict, ..Default::default() }, warn_only)
        }
        Command::PrivacyReport { file, format } => privacy_report(&file, format),
        Command::Graph { file, format, output } => graph(&file, format, output.as_deref()),
        Command::Fmt { paths, check } => fmt(&paths, check),
        Command::Lsp => match pipec::lsp::serve_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "error: the language server stopped: {e}");
                ExitCode::from(1)
            }
        },
        Command::Explain { file, unoptimized } => explain(&file, unoptimized),
        Command::Fit { file, strict } => fit(&file, strict),
        Command::Profile { file, strict } => profile(&file, strict),
        Command::Build { file, output, release, quick, strict } => {
            // Where the binary goes is checked before a build that can take minutes.
            if let Some(out) = &output {
                if let Err(why) = writable_output(out) {
                    let _ = writeln!(std::io::stderr(), "error: cannot write `{}`: {why}", out.display());
                    return ExitCode::from(1);
                }
            }
            build_to(&file, output, build_profile(release, quick), strict)
        }
        Command::Run { file, release, quick, strict, args } => {
            match build(&file, build_profile(release, quick), strict) {
                Ok(binary) => match std::process::Command::new(&binary).args(&args).status() {
                    Ok(status) => ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
                    Err(e) => {
                        let _ = writeln!(std::io::stderr(), "error: cannot start `{}`: {e}", binary.display());
                        ExitCode::from(1)
                    }
                },
                Err(code) => code,
            }
        }
    }
}

/// Whether `out` can receive the binary: its folder exists and is a folder, and `out` is not
/// a folder itself.
fn writable_output(out: &Path) -> Result<(), String> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("`{}` is not a folder", dir.display())),
        Err(e) => return Err(format!("its folder `{}`: {e}", dir.display())),
    }
    if out.is_dir() {
        return Err("it is a folder; give the path of the binary to write".to_string());
    }
    Ok(())
}

/// The build profile the flags ask for.
fn build_profile(release: bool, quick: bool) -> pipec::driver::Profile {
    use pipec::driver::Profile;
    match (release, quick) {
        (true, _) => Profile::Release,
        (false, true) => Profile::Quick,
        (false, false) => Profile::Default,
    }
}

/// `pipec build`: builds, then copies the binary to `output` when one is given.
fn build_to(file: &Path, output: Option<PathBuf>, profile: pipec::driver::Profile, strict: bool) -> ExitCode {
    match build(file, profile, strict) {
        Ok(binary) => {
            if let Some(out) = output {
                if let Err(e) = std::fs::copy(&binary, &out) {
                    let _ = writeln!(std::io::stderr(), "error: cannot write `{}`: {e}", out.display());
                    return ExitCode::from(1);
                }
                let _ = writeln!(std::io::stderr(), "wrote {}", out.display());
            } else {
                let _ = writeln!(std::io::stderr(), "built {}", binary.display());
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Builds a pipeline, reporting problems; the binary's path, or the exit code to stop with.
fn build(file: &Path, profile: pipec::driver::Profile, strict: bool) -> Result<PathBuf, ExitCode> {
    use pipec::driver::{self, BuildError};
    let start = std::time::Instant::now();
    let cache = driver::Cache::from_env(profile);
    match driver::build(file, pipec::Options { strict, ..Default::default() }, &cache) {
        Ok(built) => {
            let warnings: Vec<_> = built.checked.diagnostics.clone();
            if !warnings.is_empty() {
                let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                let _ =
                    write!(std::io::stderr(), "{}", render::human(&built.checked.resolved.sources, &warnings, color));
            }
            if built.compiled {
                let _ = writeln!(
                    std::io::stderr(),
                    "compiled {} in {:.1}s{}",
                    built.krate.name,
                    start.elapsed().as_secs_f64(),
                    // `PIPE_QUICK` may have asked for it: say why the binary runs slower.
                    if cache.profile == driver::Profile::Quick {
                        " (quick: the pipeline's own code unoptimized)"
                    } else {
                        ""
                    }
                );
            }
            Ok(built.binary)
        }
        Err(BuildError::Load(path, e)) => {
            let why = match e {
                LoadError::NotFound => "file not found".to_string(),
                LoadError::Unreadable(w) => w,
            };
            let _ = writeln!(std::io::stderr(), "error: cannot read `{}`: {why}", path.display());
            Err(ExitCode::from(2))
        }
        Err(BuildError::Program(checked)) => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let _ =
                write!(std::io::stderr(), "{}", render::human(&checked.resolved.sources, &checked.diagnostics, color));
            let errors = checked.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            let _ = writeln!(std::io::stderr(), "not built: {errors} error{}", s(errors));
            Err(ExitCode::from(1))
        }
        Err(BuildError::Cargo(why) | BuildError::Fit(why)) => {
            let _ = writeln!(std::io::stderr(), "error: {why}");
            Err(ExitCode::from(1))
        }
    }
}

/// `pipec profile`: profiles the sources and says what it wrote.
fn profile(file: &Path, strict: bool) -> ExitCode {
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    match pipec::driver::profile(file, pipec::Options { strict, ..Default::default() }, &cache) {
        Ok(report) => {
            let mut out = String::new();
            for (source, binding, rows, rejected) in &report.sources {
                out.push_str(&format!("profiled {source} ({binding} binding): {rows} rows, {rejected} rejected\n"));
            }
            out.push_str(&format!("wrote {}\n", report.artifact.display()));
            let _ = write!(std::io::stderr(), "{out}");
            ExitCode::SUCCESS
        }
        Err(e) => analysis_failed(e, "not profiled"),
    }
}

/// `pipec fit`: fits the transforms and says what it wrote.
fn fit(file: &Path, strict: bool) -> ExitCode {
    use pipec::driver;
    let cache = driver::Cache::from_env(driver::Profile::Default);
    match driver::fit(file, pipec::Options { strict, ..Default::default() }, &cache) {
        Ok(report) => {
            let mut out = String::new();
            for (key, function, rows) in &report.fitted {
                out.push_str(&format!("fitted {key} ({function}) on {rows} training values\n"));
            }
            out.push_str(&format!(
                "wrote {} ({} transform{}, {} pass{})\n",
                report.artifact.display(),
                report.fitted.len(),
                s(report.fitted.len()),
                report.passes,
                if report.passes == 1 { "" } else { "es" }
            ));
            let _ = write!(std::io::stderr(), "{out}");
            ExitCode::SUCCESS
        }
        Err(e) => analysis_failed(e, "not fitted"),
    }
}

/// The report of a `pipec fit` or `pipec profile` that failed (`what`: the last line).
fn analysis_failed(e: pipec::driver::BuildError, what: &str) -> ExitCode {
    use pipec::driver::BuildError;
    match e {
        BuildError::Load(path, e) => {
            let why = match e {
                LoadError::NotFound => "file not found".to_string(),
                LoadError::Unreadable(w) => w,
            };
            let _ = writeln!(std::io::stderr(), "error: cannot read `{}`: {why}", path.display());
            ExitCode::from(2)
        }
        BuildError::Program(checked) => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let _ =
                write!(std::io::stderr(), "{}", render::human(&checked.resolved.sources, &checked.diagnostics, color));
            let errors = checked.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
            let _ = writeln!(std::io::stderr(), "{what}: {errors} error{}", s(errors));
            ExitCode::from(1)
        }
        BuildError::Cargo(why) | BuildError::Fit(why) => {
            let _ = writeln!(std::io::stderr(), "error: {why}");
            ExitCode::from(1)
        }
    }
}

fn check(files: &[PathBuf], format: Format, color: Color, options: pipec::Options, warn_only: bool) -> ExitCode {
    let loader = FsLoader::new(".");
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut unusable = false;
    let mut any_error = false;
    let mut json_files = Vec::new();
    let mut json_diags: Vec<serde_json::Value> = Vec::new();
    let mut sarif_runs: Vec<serde_json::Value> = Vec::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut stderr = std::io::stderr().lock();
    for file in files {
        match pipec::check_program_with(&loader, file, options) {
            Ok(checked) => {
                any_error |= checked.has_errors();
                errors += checked.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
                warnings += checked.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count();
                match format {
                    Format::Human => {
                        let text = render::human(&checked.resolved.sources, &checked.diagnostics, color);
                        let _ = write!(stderr, "{text}");
                    }
                    Format::Json => {
                        json_files.push(serde_json::json!({ "path": file.display().to_string(), "status": "checked" }));
                        json_diags.extend(
                            checked
                                .diagnostics
                                .iter()
                                .map(|d| serde_json::json!(render::to_json(&checked.resolved.sources, d))),
                        );
                    }
                    Format::Sarif => {
                        let mut diags = checked.diagnostics.clone();
                        if warn_only {
                            for d in diags.iter_mut().filter(|d| d.severity == Severity::Error) {
                                d.severity = Severity::Warning;
                            }
                        }
                        sarif_runs.push(render::sarif(
                            &checked.resolved.sources,
                            &diags,
                            &repo_prefix(),
                            env!("CARGO_PKG_VERSION"),
                        ));
                    }
                }
            }
            Err(e) => {
                unusable = true;
                let why = match e {
                    LoadError::NotFound => "file not found".to_string(),
                    LoadError::Unreadable(w) => w,
                };
                match format {
                    Format::Human => {
                        let _ = writeln!(stderr, "error: cannot read `{}`: {why}", file.display());
                    }
                    Format::Json | Format::Sarif => json_files.push(serde_json::json!({ "path": file.display().to_string(), "status": "unreadable", "reason": why })),
                }
            }
        }
    }
    match format {
        Format::Human => {
            let _ = writeln!(
                stderr,
                "{} checked: {errors} error{}, {warnings} warning{}",
                plural(files.len(), "file"),
                s(errors),
                s(warnings)
            );
        }
        Format::Json => {
            let out = serde_json::json!({ "files": json_files, "diagnostics": json_diags, "errors": errors, "warnings": warnings });
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Sarif => {
            // One run per tool invocation: merge the results of every file into the first run.
            let mut log = sarif_runs.first().cloned().unwrap_or_else(|| {
                render::sarif(&pipec::source::SourceMap::default(), &[], &repo_prefix(), env!("CARGO_PKG_VERSION"))
            });
            let results: Vec<serde_json::Value> = sarif_runs
                .iter()
                .flat_map(|r| r["runs"][0]["results"].as_array().cloned().unwrap_or_default())
                .collect();
            log["runs"][0]["results"] = serde_json::Value::Array(results);
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&log).unwrap_or_default());
            for f in json_files {
                let _ = writeln!(
                    stderr,
                    "error: cannot read `{}`: {}",
                    f["path"].as_str().unwrap_or(""),
                    f["reason"].as_str().unwrap_or("")
                );
            }
        }
    }
    if unusable {
        ExitCode::from(2)
    } else if any_error && !warn_only {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", s(n))
}

/// The working directory relative to the repository root (the nearest folder above it that holds
/// `.git`), so that SARIF locations are relative to the root. Empty outside a repository.
fn repo_prefix() -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else { return PathBuf::new() };
    let mut dir = cwd.as_path();
    loop {
        if dir.join(".git").exists() {
            return cwd.strip_prefix(dir).map(PathBuf::from).unwrap_or_default();
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return PathBuf::new(),
        }
    }
}

fn privacy_report(file: &Path, format: Format) -> ExitCode {
    let checked = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let map = &checked.resolved.sources;
    let at = |span: pipec::source::Span| {
        let f = map.get(span.file);
        let (line, col) = f.line_col(span.start);
        format!("{}:{line}:{col}", f.path.display())
    };
    let report = &checked.privacy;
    let mut out = std::io::stdout().lock();
    if format == Format::Human {
        let mut sink = String::new();
        for c in &report.columns {
            if c.sink != sink {
                let _ = writeln!(out, "sink {}", c.sink);
                sink = c.sink.clone();
            }
            if c.labels.is_empty() {
                let _ = writeln!(out, "  {}.{}: no labels", c.stream, c.field);
                continue;
            }
            let _ = writeln!(out, "  {}.{}:", c.stream, c.field);
            for l in c.labels.iter() {
                let how = if l.implicit { " (implicit: decides which records arrive)" } else { "" };
                let denied = report
                    .violations
                    .iter()
                    .any(|v| v.sink == c.sink && v.field == c.field && v.label.category == l.category);
                let _ = writeln!(
                    out,
                    "    {} as {}{how}{}",
                    l.category,
                    l.form.name(),
                    if denied { "  DENIED" } else { "" }
                );
                for hop in &l.path {
                    let _ = writeln!(out, "      {} at {}", hop.what, at(hop.span));
                }
            }
        }
        let _ = writeln!(out, "declassifications: {}", report.declassified.len());
        for (span, reason) in &report.declassified {
            let _ = writeln!(out, "  {}: {reason}", at(*span));
        }
    } else {
        let columns: Vec<serde_json::Value> = report
            .columns
            .iter()
            .map(|c| {
                let labels: Vec<serde_json::Value> = c
                    .labels
                    .iter()
                    .map(|l| {
                        let denied = report.violations.iter().any(|v| v.sink == c.sink && v.field == c.field && v.label.category == l.category);
                        serde_json::json!({
                            "category": l.category, "form": l.form, "implicit": l.implicit, "allowed": !denied,
                            "path": l.path.iter().map(|h| serde_json::json!({ "step": h.what, "at": at(h.span) })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                serde_json::json!({ "sink": c.sink, "stream": c.stream, "field": c.field, "labels": labels })
            })
            .collect();
        let declassified: Vec<serde_json::Value> =
            report.declassified.iter().map(|(s, r)| serde_json::json!({ "at": at(*s), "reason": r })).collect();
        let doc = serde_json::json!({ "columns": columns, "declassifications": declassified });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    if checked.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn explain(file: &Path, unoptimized: bool) -> ExitCode {
    let checked = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if checked.has_errors() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        let _ = write!(std::io::stderr(), "{}", render::human(&checked.resolved.sources, &errors, color));
        let _ = writeln!(std::io::stderr(), "no plan: the program has errors");
        return ExitCode::from(1);
    }
    let mut plan = pipec::ir::lower(&checked.program);
    if !unoptimized {
        plan = pipec::optimize::optimize(plan);
    }
    let _ = write!(std::io::stdout(), "{}", pipec::ir::print::plan(&plan));
    ExitCode::SUCCESS
}

#[allow(clippy::disallowed_methods, reason = "`pipec graph -o FILE` writes the file its user named")]
fn graph(file: &Path, format: GraphFormat, output: Option<&Path>) -> ExitCode {
    let checked = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let errors: Vec<_> =
        checked.diagnostics.iter().filter(|d| d.is_error() && !d.code.as_str().starts_with('P')).cloned().collect();
    if !errors.is_empty() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let _ = write!(std::io::stderr(), "{}", render::human(&checked.resolved.sources, &errors, color));
        let _ = writeln!(std::io::stderr(), "no graph: the program has errors other than privacy findings");
        return ExitCode::from(1);
    }
    let g = pipec::graph::build(&checked);
    let title = checked.program.namespace.clone().unwrap_or_else(|| file.display().to_string());
    let text = match format {
        GraphFormat::Dot => pipec::graph::dot(&g, &title).into_bytes(),
        GraphFormat::Mermaid => pipec::graph::mermaid(&g, &title).into_bytes(),
        GraphFormat::Svg => match pipec::graph::svg(&pipec::graph::dot(&g, &title)) {
            Ok(svg) => svg,
            Err(why) => {
                let _ = writeln!(std::io::stderr(), "error: {why}");
                return ExitCode::from(2);
            }
        },
    };
    let written = match output {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("cannot write `{}`: {e}", path.display())),
        None => std::io::stdout().write_all(&text).map_err(|e| format!("cannot write to standard output: {e}")),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "error: {why}");
            ExitCode::from(2)
        }
    }
}

/// Every `.pipe` file under `path` (itself, if it is a file), sorted.
fn pipe_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n == "target" || n == "node_modules");
        if p.is_dir() && !hidden {
            pipe_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "pipe") {
            out.push(p);
        }
    }
    Ok(())
}

#[allow(clippy::disallowed_methods, reason = "`pipec fmt` reads and rewrites the files its user named")]
fn fmt(paths: &[PathBuf], check: bool) -> ExitCode {
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = pipe_files(p, &mut files) {
            let _ = writeln!(std::io::stderr(), "error: cannot read `{}`: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let (mut unformatted, mut skipped, mut unreadable) = (0, 0, 0);
    let mut err = std::io::stderr().lock();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: cannot read `{}`: {e}", f.display());
                unreadable += 1;
                continue;
            }
        };
        let formatted = match pipec::format::format(&text) {
            Ok(t) => t,
            Err(why) => {
                let _ = writeln!(err, "skipped {}: {}", f.display(), why.0);
                skipped += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted += 1;
        if check {
            let _ = writeln!(err, "not formatted: {}", f.display());
        } else if let Err(e) = std::fs::write(f, formatted) {
            let _ = writeln!(err, "error: cannot write `{}`: {e}", f.display());
            unreadable += 1;
        }
    }
    let verb = if check { "would change" } else { "formatted" };
    let _ =
        writeln!(err, "{}: {verb} {}, {} skipped for syntax errors", plural(files.len(), "file"), unformatted, skipped);
    if unreadable > 0 {
        ExitCode::from(2)
    } else if check && unformatted > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks `file` for the commands that need a whole program; an unreadable file is exit 2.
fn load(file: &Path) -> Result<pipec::Checked, ExitCode> {
    pipec::check_program(&FsLoader::new("."), file).map_err(|e| {
        let _ = writeln!(std::io::stderr(), "error: cannot read `{}`: {e}", file.display());
        ExitCode::from(2)
    })
}
