//! Name resolution, stage 2: loads the root file and everything it includes or imports
//! (relative paths, cycle detection), builds the schema from the Thrift files, and the scopes
//! in which `.pipe` names are looked up. The result, [`Resolved`], is the input of the checker.

pub mod consts;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic};
use crate::source::{normalize, relative_to, FileId, LoadError, Loader, SourceMap, Span};
use crate::syntax::pipe_ast::{ItemKind, PipeFile};
use crate::syntax::thrift_ast::ThriftFile;
use crate::syntax::{parse_pipe, parse_thrift};

pub use schema::{EnumDef, FieldInfo, Schema, StructDef, TimestampUnit, TypeSym};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

#[derive(Debug)]
pub enum Syntax {
    Pipe(PipeFile),
    Thrift(ThriftFile),
}

/// One loaded file and its edges to the files it names.
#[derive(Debug)]
pub struct Module {
    pub file: FileId,
    pub syntax: Syntax,
    /// Included Thrift modules, each with the name that qualifies its types (`partner.X`).
    pub includes: Vec<(String, ModuleId)>,
    /// Imported `.pipe` modules, whose functions become visible.
    pub imports: Vec<ModuleId>,
}

/// The resolved program: all files, their module graph and the Thrift schema.
#[derive(Debug)]
pub struct Resolved {
    pub sources: SourceMap,
    pub modules: Vec<Module>,
    pub root: ModuleId,
    pub schema: Schema,
}

impl Resolved {
    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id.0 as usize]
    }

    pub fn pipe(&self, id: ModuleId) -> Option<&PipeFile> {
        match &self.module(id).syntax {
            Syntax::Pipe(p) => Some(p),
            Syntax::Thrift(_) => None,
        }
    }
}

/// Loads and resolves the program rooted at `root`. Fails only when the root itself cannot be
/// read; every other problem is a diagnostic.
pub fn resolve(loader: &dyn Loader, root: &Path, diags: &mut Vec<Diagnostic>) -> Result<Resolved, LoadError> {
    let root_path = normalize(root);
    let text = loader.load(&root_path)?;
    let mut g = Graph {
        loader,
        sources: SourceMap::default(),
        modules: Vec::new(),
        by_path: HashMap::new(),
        stack: Vec::new(),
        diags,
    };
    let root = g.add(root_path, text);
    let mut resolved = Resolved { sources: g.sources, modules: g.modules, root, schema: Schema::default() };
    resolved.schema = schema::build(&resolved, diags);
    Ok(resolved)
}

struct Graph<'a> {
    loader: &'a dyn Loader,
    sources: SourceMap,
    modules: Vec<Module>,
    by_path: HashMap<PathBuf, ModuleId>,
    /// Files being loaded, innermost last, with the span of the include that led to each.
    stack: Vec<(ModuleId, Option<Span>)>,
    diags: &'a mut Vec<Diagnostic>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Include,
    Import,
}

impl Graph<'_> {
    fn add(&mut self, path: PathBuf, text: String) -> ModuleId {
        let file = self.sources.add(path.clone(), text);
        let text = &self.sources.get(file).text;
        let is_thrift = path.extension().is_some_and(|e| e == "thrift");
        let (syntax, mut d) = if is_thrift {
            let (t, d) = parse_thrift(file, text);
            (Syntax::Thrift(t), d)
        } else {
            let (p, d) = parse_pipe(file, text);
            (Syntax::Pipe(p), d)
        };
        self.diags.append(&mut d);
        let id = ModuleId(self.modules.len() as u32);
        let edges: Vec<(Kind, String, Span)> = match &syntax {
            Syntax::Thrift(t) => t.includes.iter().map(|s| (Kind::Include, s.value.clone(), s.span)).collect(),
            Syntax::Pipe(p) => p
                .items
                .iter()
                .filter_map(|i| match &i.kind {
                    ItemKind::Include(s) => Some((Kind::Include, s.value.clone(), s.span)),
                    ItemKind::Import(s) => Some((Kind::Import, s.value.clone(), s.span)),
                    _ => None,
                })
                .collect(),
        };
        self.modules.push(Module { file, syntax, includes: Vec::new(), imports: Vec::new() });
        self.by_path.insert(path.clone(), id);
        for (kind, target, span) in edges {
            self.stack.push((id, Some(span)));
            let child = self.follow(&path, kind, &target, span, is_thrift);
            self.stack.pop();
            if let Some(child) = child {
                let m = &mut self.modules[id.0 as usize];
                match kind {
                    Kind::Include => {
                        let alias = Path::new(&target)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        m.includes.push((alias, child));
                    }
                    Kind::Import => m.imports.push(child),
                }
            }
        }
        id
    }

    fn follow(&mut self, from: &Path, kind: Kind, target: &str, span: Span, from_thrift: bool) -> Option<ModuleId> {
        let path = relative_to(from, target);
        let is_thrift = path.extension().is_some_and(|e| e == "thrift");
        let is_pipe = path.extension().is_some_and(|e| e == "pipe");
        if from_thrift && !is_thrift {
            self.diags.push(
                Diagnostic::new(
                    Code::E1003,
                    span,
                    format!("a Thrift file can only include Thrift files, not `{target}`"),
                )
                .label("not a .thrift file")
                .help("include a file ending in `.thrift`"),
            );
            return None;
        }
        if !from_thrift && kind == Kind::Include && !is_thrift {
            let help = if is_pipe {
                format!("use `import \"{target}\"` to use another pipeline file's functions")
            } else {
                "include a file ending in `.thrift`".to_string()
            };
            self.diags.push(
                Diagnostic::new(Code::E1003, span, format!("`include` takes a Thrift schema, not `{target}`"))
                    .label("not a .thrift file")
                    .help(help),
            );
            return None;
        }
        if kind == Kind::Import && !is_pipe {
            let help = if is_thrift {
                format!("use `include \"{target}\"` for a Thrift schema")
            } else {
                "import a file ending in `.pipe`".to_string()
            };
            self.diags.push(
                Diagnostic::new(Code::E1003, span, format!("`import` takes a pipeline file, not `{target}`"))
                    .label("not a .pipe file")
                    .help(help),
            );
            return None;
        }
        if let Some(&id) = self.by_path.get(&path) {
            if let Some(pos) = self.stack.iter().position(|(m, _)| *m == id) {
                let chain: Vec<String> = self.stack[pos..]
                    .iter()
                    .map(|(m, _)| self.sources.get(self.modules[m.0 as usize].file).path.display().to_string())
                    .chain(std::iter::once(path.display().to_string()))
                    .collect();
                let mut d = Diagnostic::new(Code::E1002, span, format!("include cycle: {}", chain.join(" → ")))
                    .label("this closes the cycle")
                    .help("move the shared definitions into a file that neither includes the other");
                for (_, s) in &self.stack[pos + 1..] {
                    if let Some(s) = s {
                        if *s != span {
                            d = d.secondary(*s, "part of the cycle");
                        }
                    }
                }
                self.diags.push(d);
                // The file is loaded already: keep the edge so its names still resolve, and the
                // cycle is the only error.
                return Some(id);
            }
            return Some(id);
        }
        match self.loader.load(&path) {
            Ok(text) => Some(self.add(path, text)),
            Err(e) => {
                let msg = match e {
                    LoadError::NotFound => format!("cannot find `{}`", path.display()),
                    LoadError::Unreadable(why) => {
                        format!("cannot read `{}`: {why}", path.display())
                    }
                };
                self.diags.push(Diagnostic::new(Code::E1001, span, msg).label("named here").help(format!(
                    "paths are relative to the file that names them; this one resolves to `{}`",
                    path.display()
                )));
                None
            }
        }
    }
}
