//! `pipec`, the Pipe command-line compiler.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Human,
    Json,
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
        Command::Check { files, format, color } => check(&files, format, color),
    }
}

fn check(files: &[PathBuf], format: Format, color: Color) -> ExitCode {
    let loader = FsLoader::new(".");
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut unusable = false;
    let mut any_error = false;
    let mut json_files = Vec::new();
    let mut json_diags = Vec::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut stderr = std::io::stderr().lock();
    for file in files {
        match pipec::check_program(&loader, file) {
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
                        json_diags
                            .extend(checked.diagnostics.iter().map(|d| render::to_json(&checked.resolved.sources, d)));
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
                    Format::Json => json_files.push(serde_json::json!({ "path": file.display().to_string(), "status": "unreadable", "reason": why })),
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
    }
    if unusable {
        ExitCode::from(2)
    } else if any_error {
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
