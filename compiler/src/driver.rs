//! `pipec build` and `pipec run`: check, generate the crate, and have cargo build it against
//! the runtime in one shared target directory. A content hash of the generated code and of the
//! runtime decides whether anything needs building, so an unchanged pipeline starts at once;
//! a changed one rebuilds only its own small crate (the runtime and its dependencies are
//! already compiled in the shared target directory).
//!
//! This module and `fs_loader.rs` are the only parts of the library that touch the file system
//! (and this one the only part that starts processes).
#![allow(clippy::disallowed_methods, reason = "the build driver writes the generated crate and runs cargo")]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::codegen::{self, Crate};
use crate::fs_loader::FsLoader;
use crate::source::LoadError;
use crate::{Checked, Options};

/// Where generated crates, the shared target directory and built binaries live.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
    /// The runtime's sources to build against; `None`: the ones embedded in `pipec`, written
    /// under `dir` on first use.
    pub runtime_dir: Option<PathBuf>,
    pub profile: Profile,
    /// Runtime features to compile into every pipeline besides the ones it uses
    /// (`PIPE_RUNTIME_FEATURES`): builds that ask for one set share one compiled runtime, where
    /// pipelines with different connectors would each compile their own.
    pub features: Vec<String>,
    /// Cargo's target directory for generated crates (`PIPE_TARGET_DIR`); `None`: `dir/target`.
    /// Pointed at a workspace's own, a pipeline reuses the dependencies that workspace compiled
    /// with the same versions, features and profile settings — the test suite's pipelines reuse
    /// the ones `cargo test` compiled (ARCHITECTURE.md, *The test suite compiles each
    /// dependency once*).
    pub target_dir: Option<PathBuf>,
}

/// How a generated crate is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Cargo's release profile, the pipeline's own crate compiled incrementally: what `pipec
    /// build` and `pipec run` use. It runs as fast as `Release`, and an edit of the pipeline
    /// rebuilds in 5-7 s.
    Default,
    /// Cargo's dev profile, the pipeline's own code unoptimized (opt-level 0), the runtime and
    /// its dependencies at opt-level 2 (as the workspace's own). A pipeline builds several times faster
    /// (BENCHMARKS.md, *From an edit to a running pipeline*) and runs slower: for trying a
    /// change on a sample (`--quick`, or `PIPE_QUICK=1`, which the test suite sets).
    Quick,
    /// Cargo's `--release` profile as it is (the pipeline's crate without an incremental cache).
    Release,
}

impl Profile {
    /// The directory under the target directory where cargo puts the binary.
    pub fn directory(self) -> &'static str {
        match self {
            Profile::Default => codegen::BUILD_PROFILE,
            Profile::Quick => "debug",
            Profile::Release => "release",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Profile::Default => "release-incremental",
            Profile::Quick => "quick",
            Profile::Release => "release",
        }
    }
}

impl Cache {
    /// `PIPE_CACHE_DIR`, else `$XDG_CACHE_HOME/pipe`, else `~/.cache/pipe`, else (no home)
    /// `.pipe` in the working directory — never a shared temporary directory, where another
    /// user could plant sources or binaries; the runtime of
    /// `PIPE_RUNTIME_DIR` (a checkout's `runtime/`, to try changes to it without rebuilding
    /// `pipec`), else the one embedded in `pipec`. `PIPE_QUICK=1` turns `Profile::Default`
    /// into `Profile::Quick`. `PIPE_RUNTIME_FEATURES` (names separated by commas or spaces, or
    /// `all`) adds runtime features to every build; a name that is not one is an error of the
    /// build. `PIPE_TARGET_DIR` is where cargo compiles (else `CACHE/target`).
    pub fn from_env(profile: Profile) -> Cache {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = set("PIPE_CACHE_DIR")
            .or_else(|| set("XDG_CACHE_HOME").filter(|d| d.is_absolute()).map(|d| d.join("pipe")))
            .or_else(|| set("HOME").map(|h| h.join(".cache").join("pipe")))
            .unwrap_or_else(|| PathBuf::from(".pipe"));
        let profile = match profile {
            Profile::Default if set("PIPE_QUICK").is_some_and(|v| v.as_os_str() != "0") => Profile::Quick,
            p => p,
        };
        let features = std::env::var("PIPE_RUNTIME_FEATURES")
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .flat_map(|f| {
                if f == "all" {
                    codegen::RUNTIME_FEATURES.iter().map(|f| f.to_string()).collect()
                } else {
                    vec![f.to_string()]
                }
            })
            .collect();
        Cache { dir, runtime_dir: set("PIPE_RUNTIME_DIR"), profile, features, target_dir: set("PIPE_TARGET_DIR") }
    }

    /// The runtime directory to build against, writing the embedded sources first if needed.
    pub fn runtime(&self) -> std::io::Result<PathBuf> {
        match &self.runtime_dir {
            Some(dir) => Ok(dir.clone()),
            None => runtime_sources(&self.dir),
        }
    }
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/runtime_files.rs"));
}

/// The file written last into a copy of the runtime's sources: the copy is complete.
const COMPLETE: &str = ".complete";

/// Writes the runtime sources `pipec` was built with to `CACHE/runtime/HASH/` (once: it is
/// filled under a temporary name, marked complete, then renamed) and returns its `runtime/`
/// directory.
#[allow(
    clippy::disallowed_methods,
    reason = "each file is written once into a fresh directory, renamed into place after"
)]
fn runtime_sources(cache: &Path) -> std::io::Result<PathBuf> {
    let parent = cache.join("runtime");
    let root = parent.join(embedded::HASH);
    if root.join(COMPLETE).is_file() {
        return Ok(root.join("runtime"));
    }
    let named = |what: &str, path: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{what} `{}`: {e}", path.display()))
    };
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(".{}.{}-{n}.tmp", embedded::HASH, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (name, bytes) in embedded::FILES {
        let path = tmp.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| named("cannot create", dir, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| named("cannot write", &path, e))?;
    }
    std::fs::write(tmp.join(COMPLETE), embedded::HASH).map_err(|e| named("cannot write", &tmp, e))?;
    if root.is_dir() && !root.join(COMPLETE).is_file() {
        // Left incomplete (a copy from before markers, or files deleted since): replaced whole.
        let _ = std::fs::remove_dir_all(&root);
    }
    if let Err(e) = std::fs::rename(&tmp, &root) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process wrote the same sources first.
        if !root.join(COMPLETE).is_file() {
            return Err(named("cannot move into place", &root, e));
        }
    }
    // Temporary copies of writers that died are removed once they are an hour old.
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for e in entries.flatten() {
            let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if e.file_name().to_string_lossy().ends_with(".tmp") && old.is_some_and(|age| age.as_secs() > 3600) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(root.join("runtime"))
}

#[derive(Debug)]
pub enum BuildError {
    /// The root file cannot be read.
    Load(PathBuf, LoadError),
    /// The program has errors (or constructs the generator cannot compile); they are in the
    /// checked program's diagnostics.
    Program(Box<Checked>),
    /// The build's settings are wrong, writing the crate failed, or cargo did.
    Cargo(String),
    /// `pipec fit` could not fit the transforms.
    Fit(String),
}

/// What a build produced.
#[derive(Debug)]
pub struct Built {
    pub checked: Box<Checked>,
    pub binary: PathBuf,
    /// False when the content hash matched a binary built before.
    pub compiled: bool,
    /// What cargo printed (compiler warnings, if any); empty when nothing was compiled.
    pub cargo_output: String,
    pub krate: Crate,
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h = (*h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
}

/// A hash of the generated crate and of the runtime's sources and manifest.
fn content_hash(krate: &Crate, runtime: &Path, profile: Profile) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    fnv(&mut h, profile.name().as_bytes());
    for (p, text) in &krate.files {
        fnv(&mut h, p.as_bytes());
        fnv(&mut h, text.as_bytes());
    }
    // Every file under `src/`, however deep (the engine, connectors, … are folders).
    let mut files = vec![runtime.join("Cargo.toml")];
    let mut dirs = vec![runtime.join("src")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for f in files {
        if let Ok(bytes) = std::fs::read(&f) {
            fnv(&mut h, f.to_string_lossy().as_bytes());
            fnv(&mut h, &bytes);
        }
    }
    format!("{h:016x}")
}

/// Writes `text` to `path` only if it differs, so cargo's fingerprints see no change otherwise.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text)
}

/// What cargo sets for a crate it builds or runs, besides `CARGO_PKG_*`.
const CRATE_VARIABLES: [&str; 7] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// Checks, generates and builds the pipeline rooted at `root`.
pub fn build(root: &Path, options: Options, cache: &Cache) -> Result<Built, BuildError> {
    let loader = FsLoader::new(".");
    let checked = crate::check_program_with(&loader, root, options).map_err(|e| BuildError::Load(root.into(), e))?;
    build_checked(checked, root, cache)
}

/// Generates and builds a checked program whose root file is `root` (its folder is where
/// relative paths start).
pub fn build_checked(mut checked: Checked, root: &Path, cache: &Cache) -> Result<Built, BuildError> {
    if let Some(unknown) = cache.features.iter().find(|f| !codegen::RUNTIME_FEATURES.contains(&f.as_str())) {
        return Err(BuildError::Cargo(format!(
            "PIPE_RUNTIME_FEATURES names `{unknown}`, which is not a feature of the runtime (its features: {}; or `all`)",
            codegen::RUNTIME_FEATURES.join(", ")
        )));
    }
    let base_dir =
        root.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).unwrap_or(Path::new("."));
    let base_dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let runtime_dir =
        cache.runtime().map_err(|e| BuildError::Cargo(format!("cannot write the runtime's sources: {e}")))?;
    let runtime_dir = std::fs::canonicalize(&runtime_dir).unwrap_or(runtime_dir);
    let root_path = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut id = 0xcbf2_9ce4_8422_2325u64;
    fnv(&mut id, root_path.to_string_lossy().as_bytes());
    let target = codegen::Target {
        runtime_dir: runtime_dir.display().to_string(),
        base_dir: base_dir.display().to_string(),
        id: format!("{:08x}", id & 0xffff_ffff),
        features: cache.features.clone(),
    };
    let Some(krate) = crate::generate(&mut checked, root, &target) else {
        return Err(BuildError::Program(Box::new(checked)));
    };
    let hash = content_hash(&krate, &runtime_dir, cache.profile);
    let bin_dir = cache.dir.join("bin");
    let binary = bin_dir.join(format!("{}-{hash}{}", krate.name, std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return Ok(Built { checked: Box::new(checked), binary, compiled: false, krate, cargo_output: String::new() });
    }
    let err = |what: &str, e: std::io::Error| BuildError::Cargo(format!("{what}: {e}"));
    let crate_dir = cache.dir.join("crates").join(&krate.name);
    std::fs::create_dir_all(&crate_dir).map_err(|e| err("cannot create the crate directory", e))?;
    for (path, text) in &krate.files {
        write_if_changed(&crate_dir.join(path), text).map_err(|e| err("cannot write the generated crate", e))?;
    }
    // The repository's lock file pins the runtime's dependencies to the versions it was tested
    // with (cargo drops what the pipeline does not use).
    // Written on every build (when it differs): the cache outlives versions of `pipec`.
    let lock = crate_dir.join("Cargo.lock");
    if let Some(pinned) = runtime_dir.parent().and_then(|p| std::fs::read_to_string(p.join("Cargo.lock")).ok()) {
        write_if_changed(&lock, &pinned).map_err(|e| err("cannot write Cargo.lock", e))?;
    }
    let target_dir = cache.target_dir.clone().unwrap_or_else(|| cache.dir.join("target"));
    let mut cmd = cargo_command(&krate, cache.profile, &crate_dir.join("Cargo.toml"), &target_dir);
    let out = cmd.output().map_err(|e| err("cannot run cargo", e))?;
    if !out.status.success() {
        return Err(BuildError::Cargo(format!(
            "cargo failed to build the generated crate in {}:\n{}",
            crate_dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let built =
        target_dir.join(cache.profile.directory()).join(format!("{}{}", krate.name, std::env::consts::EXE_SUFFIX));
    std::fs::create_dir_all(&bin_dir).map_err(|e| err("cannot create the binary directory", e))?;
    // Older binaries of this pipeline are superseded.
    if let Ok(entries) = std::fs::read_dir(&bin_dir) {
        let prefix = format!("{}-", krate.name);
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && Some(name.as_str()) != binary.file_name().and_then(|n| n.to_str()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = bin_dir.join(format!(".{}-{hash}.{}-{n}.tmp", krate.name, std::process::id()));
    // A hard link where the cache and the target directory share a file system: no copy of a
    // binary of tens of megabytes, and no file open for writing that a process forked meanwhile
    // by another thread (a test harness starting pipelines) would hold until its `exec` — which
    // made starting the new binary fail with "text file busy". Cargo and the linker replace
    // their outputs with new files, never rewrite them, so the linked binary stays as built.
    if std::fs::hard_link(&built, &tmp).is_err() {
        std::fs::copy(&built, &tmp).map_err(|e| err("cannot copy the built binary", e))?;
    }
    std::fs::rename(&tmp, &binary).map_err(|e| err("cannot move the built binary into place", e))?;
    // Where two builds of one pipeline linked the same file, the second rename found it in
    // place already and did nothing: its temporary name is left, and goes here.
    let _ = std::fs::remove_file(&tmp);
    let cargo_output = String::from_utf8_lossy(&out.stderr).into_owned();
    Ok(Built { checked: Box::new(checked), binary, compiled: true, krate, cargo_output })
}

/// The cargo command that compiles the generated crate `krate` (its manifest at `manifest`)
/// into `target_dir` with `profile`.
fn cargo_command(krate: &Crate, profile: Profile, manifest: &Path, target_dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("build").arg("--quiet").arg("--manifest-path").arg(manifest).arg("--target-dir").arg(target_dir);
    match profile {
        // The manifest's profile `pipe`: cargo's release profile, every crate at opt-level 3
        // with rustc's "thin local" LTO over each crate's codegen units, except that the
        // pipeline's crate keeps rustc's incremental cache between builds. Measured against
        // `--release` with the daily pipeline, seven alternating runs each (BENCHMARKS.md, *The
        // default build is the release profile*): the dev profile at opt-level 2 ran 1.10-1.20x
        // slower, and no single setting closed the gap — `--release` with the pipeline's crate
        // without LTO ran as slowly as the dev profile; with the pipeline's crate incremental
        // (and LTO) as fast as `--release`.
        Profile::Default => {
            cmd.arg("--profile").arg(codegen::BUILD_PROFILE);
        }
        // Cargo's dev profile (the generated manifest: dependencies at opt-level 2, as the
        // workspace's own, so that the test suite's pipelines reuse what `cargo test` compiled),
        // the pipeline's crate unoptimized and without its line tables: they took a third of
        // its compile time (12.1 s against 7.9 s for a test pipeline's crate).
        Profile::Quick => {
            cmd.arg("--config").arg(format!("profile.dev.package.{}.opt-level=0", krate.name));
            cmd.arg("--config").arg(format!("profile.dev.package.{}.debug=false", krate.name));
        }
        Profile::Release => {
            cmd.arg("--release");
        }
    }
    // Flags meant for the compiler's own build must not leak into the pipeline's.
    cmd.env_remove("RUSTFLAGS").env_remove("CARGO_TARGET_DIR").env_remove("CARGO_BUILD_TARGET_DIR");
    // So must what cargo sets for the crate it runs (`pipec` under `cargo run`, a test): build
    // scripts that watch one of these (ring's watches CARGO_MANIFEST_DIR) would run again, and
    // everything above them compile again, whenever `pipec` is started another way.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || CRATE_VARIABLES.contains(&name.as_ref()) {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// What `pipec fit` wrote.
#[derive(Debug)]
pub struct FitReport {
    pub artifact: PathBuf,
    /// Each site's key, function and the training rows it was fitted on.
    pub fitted: Vec<(String, &'static str, i64)>,
    /// Analysis passes run: a transform of a fitted value waits for a later pass.
    pub passes: usize,
}

/// `pipec fit`: runs the analysis of every transform of the program rooted at `root` over its
/// sources' training data, a pass at a time (a transform whose argument depends on another waits
/// for the pass after it), and writes the parameters to the program's `.fit.json`, whole or
/// not at all (a failed fit leaves the previous file).
pub fn fit(root: &Path, options: Options, cache: &Cache) -> Result<FitReport, BuildError> {
    use crate::fit::{self, Artifact, Fitted};
    let loader = FsLoader::new(".");
    // The baseline profile is not needed to fit (the analysis compiles no `drift`).
    let options = Options { fitting: true, profiling: true, ..options };
    let check = || crate::check_program_with(&loader, root, options).map_err(|e| BuildError::Load(root.into(), e));
    let checked = check()?;
    if checked.has_errors() {
        return Err(BuildError::Program(Box::new(checked)));
    }
    if checked.fit_sites.is_empty() {
        return Err(BuildError::Fit(format!(
            "`{}` has no transform to fit (`zscore`, `scale_to_01`, `vocabulary`, `quantile_bucket`)",
            root.display()
        )));
    }
    let path = fit::artifact_path(root);
    let command = format!("pipec fit {}", root.display());
    let mut artifact =
        Artifact { pipe_fit: fit::FORMAT, program: root.display().to_string(), transforms: Default::default() };
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = cache.dir.join("fit").join(format!("{}-{run}", std::process::id()));
    let _removed = Scratch(work.clone());
    let mut passes = 0;
    let mut fitted = Vec::new();
    loop {
        // The program with the sites fitted so far bound to their parameters.
        let mut checked = check()?;
        let text = serde_json::to_string(&artifact).map_err(|e| BuildError::Fit(e.to_string()))?;
        let mut diags = Vec::new();
        let mut unbound = checked.program.clone();
        let sites = fit::bind(&mut unbound, &path, Some(&text), true, &command, &mut diags);
        let ready: Vec<&fit::Site> = sites
            .iter()
            .filter(|s| !s.bound && s.upstream.iter().all(|u| artifact.transforms.contains_key(u)))
            .collect();
        if ready.is_empty() {
            break;
        }
        passes += 1;
        let dir = work.join(passes.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        checked.program = fit::analysis(&unbound, &ready, &dir).map_err(BuildError::Fit)?;
        run_analysis(&build_checked(checked, root, cache)?.binary, "the analysis of the training data")?;
        let rejected = json_rows(&dir.join("rejected"));
        if let Some(first) = rejected.first() {
            return Err(BuildError::Fit(format!(
                "{} training record{} could not be read; the first: {} ({})",
                rejected.len(),
                if rejected.len() == 1 { "" } else { "s" },
                first["reason"].as_str().unwrap_or("?"),
                first["position"].as_str().unwrap_or("?"),
            )));
        }
        for (i, site) in ready.iter().enumerate() {
            let rows = json_rows(&dir.join(i.to_string()));
            let Some(row) = rows.first().cloned() else {
                let at_least = fit::min_rows(&unbound, &site.stream)
                    .map(|k| format!(" (its training binding asks for `k >= {k}`)"))
                    .unwrap_or_default();
                return Err(BuildError::Fit(format!(
                    "too few training rows reach `{}` ({}) to fit it{at_least}",
                    site.key, site.function
                )));
            };
            let (n, params) = fit::params_from(site, &row).map_err(BuildError::Fit)?;
            let count = site.count.map(|c| format!(", {c}")).unwrap_or_default();
            artifact.transforms.insert(
                site.key.clone(),
                Fitted {
                    function: site.function.to_string(),
                    call: format!("{}({}{count})", site.function, crate::ir::print::expr(&site.arg)),
                    fingerprint: site.fingerprint.clone(),
                    rows: n,
                    params,
                },
            );
            fitted.push((site.key.clone(), site.function, n));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&work);
    if fitted.len() < checked.fit_sites.len() {
        return Err(BuildError::Fit("some transforms depend on each other in a cycle".into()));
    }
    let mut text = serde_json::to_string_pretty(&artifact).map_err(|e| BuildError::Fit(e.to_string()))?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| BuildError::Fit(format!("cannot write {}: {e}", path.display())))?;
    Ok(FitReport { artifact: path, fitted, passes })
}

/// The JSON rows of the files under `dir`.
/// Runs the binary of an analysis (`what` it does, for the error).
fn run_analysis(binary: &Path, what: &str) -> Result<(), BuildError> {
    let out = Command::new(binary)
        .arg("--quiet")
        .output()
        .map_err(|e| BuildError::Fit(format!("{what} could not start: {e}")))?;
    if !out.status.success() {
        return Err(BuildError::Fit(format!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr).trim_end())));
    }
    Ok(())
}

/// A folder of training records an analysis wrote, removed however the analysis ends (they are
/// raw data, and the cache is not a sink cleared for them).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What `pipec profile` wrote.
#[derive(Debug)]
pub struct ProfileReport {
    pub artifact: PathBuf,
    /// Each source profiled: its name, the binding read, its rows and rejected records.
    pub sources: Vec<(String, String, u64, u64)>,
}

/// `pipec profile`: reads every source's training data (its `fit` binding, else its `batch`
/// binding) through the program's own decoders — a compiled program that writes each source's
/// records as they are — and writes the baseline profile beside the program, atomically.
/// Statistics of labeled fields the training binding's clearance does not allow are left out.
pub fn profile(root: &Path, options: Options, cache: &Cache) -> Result<ProfileReport, BuildError> {
    use crate::hir::{Connector, ConnectorArg, Edge, Sink, Stream};
    use crate::profile::{self, Profile, SourceProfile};
    let loader = FsLoader::new(".");
    // Nor are the fitted parameters needed to profile (the profile reads the sources only).
    let options = Options { profiling: true, fitting: true, ..options };
    let mut checked =
        crate::check_program_with(&loader, root, options).map_err(|e| BuildError::Load(root.into(), e))?;
    if checked.has_errors() {
        return Err(BuildError::Program(Box::new(checked)));
    }
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = cache.dir.join("profile").join(format!("{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _removed = Scratch(dir.clone());
    let original = checked.program.clone();
    let mut p = original.clone();
    p.namespace = Some(format!("{}.profile", p.namespace.as_deref().unwrap_or("pipe")));
    p.streams.clear();
    p.sinks.clear();
    p.edges.clear();
    let files = |path: PathBuf, span| Connector {
        name: "files".into(),
        args: vec![
            ("dir".into(), ConnectorArg::Text(path.display().to_string())),
            ("format".into(), ConnectorArg::Word("json".into())),
        ],
        span,
    };
    let mut read = Vec::new();
    for (i, s) in p.sources.iter_mut().enumerate() {
        let (binding, connector) = match (&s.fit, &s.batch) {
            (Some(c), _) => ("fit", c.clone()),
            (None, Some(c)) => ("batch", c.clone()),
            (None, None) => continue,
        };
        s.batch = Some(connector);
        s.stream = None;
        let name = format!("__profile_{i}");
        read.push((s.name.clone(), binding.to_string(), name.clone()));
        p.streams.push(Stream {
            name: name.clone(),
            input: s.name.clone(),
            steps: Vec::new(),
            row: s.row.clone(),
            bounded: true,
            event_time: false,
            span: s.span,
        });
        p.sinks.push(Sink {
            name: name.clone(),
            connector: files(dir.join(&name), s.span),
            purpose: None,
            allows: Vec::new(),
            span: s.span,
        });
        p.edges.push(Edge { from: name, to: p.sinks.len() - 1, sink_exprs: Vec::new(), span: s.span });
    }
    if read.is_empty() {
        return Err(BuildError::Fit(format!(
            "`{}` has no source with a `fit` or `batch` binding to profile",
            root.display()
        )));
    }
    let span = p.sources.first().map(|s| s.span).unwrap_or_default();
    p.sinks.push(Sink {
        name: "rejected->files".into(),
        connector: files(dir.join("rejected"), span),
        purpose: None,
        allows: Vec::new(),
        span,
    });
    p.edges.push(Edge { from: "rejected".into(), to: p.sinks.len() - 1, sink_exprs: Vec::new(), span });
    // The labels of each field, as the privacy analysis sees them on the way to the profile.
    let (outcome, _) = crate::privacy::analyze(&checked.resolved, &p, &checked.taxonomy);
    checked.program = p;
    run_analysis(&build_checked(checked, root, cache)?.binary, "reading the data to profile")?;
    let rejected = json_rows(&dir.join("rejected"));
    let mut result =
        Profile { pipe_profile: profile::FORMAT, program: root.display().to_string(), ..Profile::default() };
    let mut report = Vec::new();
    for (source, binding, stream) in &read {
        let Some(src) = original.sources.iter().find(|s| &s.name == source) else { continue };
        let rows = json_rows(&dir.join(stream));
        let n = rows.len() as u64;
        let bad = rejected.iter().filter(|r| r["source"].as_str() == Some(source.as_str())).count() as u64;
        let mut fields = std::collections::BTreeMap::new();
        for (name, ty) in src.row.fields.iter().filter(|(_, t)| profile::profiled(t)) {
            let values: Vec<&serde_json::Value> = rows.iter().map(|r| &r[name.as_str()]).collect();
            let mut f = profile::field(ty, &values);
            let labels: Vec<(String, crate::privacy::label::Form)> = outcome
                .columns
                .iter()
                .filter(|c| &c.stream == stream && &c.field == name)
                .flat_map(|c| c.labels.iter().map(|l| (l.category.clone(), l.form)))
                .collect();
            let allows = if binding == "fit" { src.fit_allows.as_slice() } else { &[] };
            let min_rows = if binding == "fit" { src.fit_min_rows } else { None };
            profile::withhold(&mut f, &labels, allows, min_rows, n);
            fields.insert(name.clone(), f);
        }
        result
            .sources
            .insert(source.clone(), SourceProfile { binding: binding.clone(), rows: n, rejected: bad, fields });
        report.push((source.clone(), binding.clone(), n, bad));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let path = profile::artifact_path(root);
    let mut text = serde_json::to_string_pretty(&result).map_err(|e| BuildError::Fit(e.to_string()))?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| BuildError::Fit(format!("cannot write {}: {e}", path.display())))?;
    Ok(ProfileReport { artifact: path, sources: report })
}

fn json_rows(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_anywhere_in_the_runtime_rebuilds() {
        let dir = std::env::temp_dir().join(format!("pipe-driver-hash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src/engine")).expect("dirs");
        std::fs::write(dir.join("Cargo.toml"), "[package]").expect("manifest");
        std::fs::write(dir.join("src/lib.rs"), "pub mod engine;").expect("lib");
        std::fs::write(dir.join("src/engine/mod.rs"), "pub fn a() {}").expect("engine");
        let krate = Crate { name: "x".into(), files: vec![("src/main.rs".into(), "fn main() {}".into())] };
        let before = content_hash(&krate, &dir, Profile::Default);
        assert_eq!(before, content_hash(&krate, &dir, Profile::Default), "the same sources hash the same");
        std::fs::write(dir.join("src/engine/mod.rs"), "pub fn b() {}").expect("engine");
        let after = content_hash(&krate, &dir, Profile::Default);
        assert_ne!(before, after, "a file in a folder of the runtime's sources is part of the hash");
        assert_ne!(after, content_hash(&krate, &dir, Profile::Release), "release and dev builds are kept apart");
        assert_ne!(after, content_hash(&krate, &dir, Profile::Quick), "quick and default builds are kept apart");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn default_builds_use_the_manifests_profile_and_quick_builds_the_dev_profile() {
        let args = |profile: Profile| -> Vec<String> {
            let krate = Crate { name: "p".into(), files: Vec::new() };
            let cmd = cargo_command(&krate, profile, Path::new("/c/Cargo.toml"), Path::new("/t"));
            cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
        };
        let default = args(Profile::Default);
        assert_eq!(default[0], "build", "{default:?}");
        assert_eq!(default[default.len() - 2..], ["--profile", "pipe"], "{default:?}");
        let release = args(Profile::Release);
        assert!(release.contains(&"--release".to_string()), "{release:?}");
        let quick = args(Profile::Quick);
        assert!(!quick.contains(&"--release".to_string()), "{quick:?}");
        assert!(quick.contains(&"profile.dev.package.p.opt-level=0".to_string()), "{quick:?}");
        for a in [default, release, quick] {
            assert!(!a.iter().any(|x| x.contains("lto")), "rustc's own LTO choice: {a:?}");
        }
    }

    /// The `pipe-runtime` dependency line of the crate generated for `pipe` with `extra`
    /// features asked for.
    fn runtime_dependency(pipe: &str, extra: &[&str]) -> String {
        let manifest = manifest(pipe, extra);
        manifest.lines().find(|l| l.starts_with("pipe-runtime")).expect("the runtime dependency").to_string()
    }

    /// The manifest of the crate generated for `pipe` with `extra` features asked for.
    fn manifest(pipe: &str, extra: &[&str]) -> String {
        let loader = crate::source::MemoryLoader::new()
            .with("r.thrift", "struct R {\n  1: required string id\n  2: required i64 at (timestamp = \"millis\")\n}\n")
            .with("p.pipe", pipe);
        let mut checked = crate::check_program(&loader, Path::new("p.pipe")).expect("loads");
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let target = codegen::Target {
            runtime_dir: "/rt".into(),
            base_dir: ".".into(),
            id: String::new(),
            features: extra.iter().map(|f| f.to_string()).collect(),
        };
        let krate = crate::generate(&mut checked, Path::new("p.pipe"), &target).expect("generates");
        krate.files.iter().find(|(p, _)| p == "Cargo.toml").expect("a manifest").1.clone()
    }

    #[test]
    fn the_manifest_builds_the_pipelines_crate_incrementally_in_a_release_profile_of_its_own() {
        let files = "include \"r.thrift\"\nsource rows: R { event_time = at  batch = files(\"in.jsonl\") }\nrows -> files(\"out\")\n";
        let manifest: toml::Table = toml::from_str(&manifest(files, &[])).expect("the manifest is TOML");
        let profiles = manifest["profile"].as_table().expect("profiles");
        let own = profiles[codegen::BUILD_PROFILE].as_table().expect("the build profile");
        assert_eq!(own["inherits"].as_str(), Some("release"));
        let package = manifest["package"]["name"].as_str().expect("a package name");
        assert_eq!(own["package"][package]["incremental"].as_bool(), Some(true));
        for profile in ["dev", codegen::BUILD_PROFILE, "release"] {
            for krate in ["clap_builder", "indicatif", "console", "num-bigint"] {
                let level = profiles[profile]["package"][krate]["opt-level"].as_integer();
                assert_eq!(level, Some(0), "{krate} in {profile}");
            }
        }
    }

    #[test]
    fn a_crate_compiles_the_runtime_features_its_pipeline_uses_and_those_asked_for() {
        let files = "include \"r.thrift\"\nsource rows: R { event_time = at  batch = files(\"in.jsonl\") }\nrows -> files(\"out\")\n";
        assert_eq!(runtime_dependency(files, &[]), r#"pipe-runtime = { path = "/rt" }"#);
        assert_eq!(runtime_dependency(files, &["s3"]), r#"pipe-runtime = { path = "/rt", features = ["s3"] }"#);
        let connectors = "include \"r.thrift\"\nsource rows: R {\n  event_time = at\n  watermark = 5s\n  stream = kafka(topic = \"t\", brokers = \"127.0.0.1:9092\", format = json)\n}\nrows -> redis(url = \"redis://127.0.0.1:6379\", key = id)\n";
        assert_eq!(
            runtime_dependency(connectors, &[]),
            r#"pipe-runtime = { path = "/rt", features = ["kafka", "redis"] }"#
        );
        assert_eq!(
            runtime_dependency(connectors, &["arrow", "redis", "kafka"]),
            r#"pipe-runtime = { path = "/rt", features = ["kafka", "redis", "arrow"] }"#,
            "in the runtime's order, each once"
        );
    }
}
