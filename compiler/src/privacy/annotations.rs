//! Labels from Thrift annotations: `pii = "<category>"` on fields, typedefs, field types and
//! structs (several allowed, repeated or comma-separated; `"none"` says a field holds no personal
//! data), the project's aliases (`personalDataType = "UserId"`), `mask = "<function>"` on fields,
//! and `has_personal_data` on structs, whose unlabeled fields are reported.

use std::collections::HashMap;

use super::label::{Form, Hop, Label, Labels};
use super::taxonomy::{MaskParam, Taxonomy};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::Mask;
use crate::resolve::{ModuleId, Resolved, Schema, Syntax, TypeSym};
use crate::syntax::thrift_ast::{Annotation, DefKind, TypeKind, TypeRef};
use crate::types::{StructId, Type};

/// The masks a field's `mask` annotation may name (`bucket` may take a width, `truncate` takes
/// the number of characters to keep).
pub const MASKS: &[&str] = &["hmac", "tokenize", "bucket", "truncate", "redact", "drop"];

#[derive(Debug, Default)]
pub struct SchemaLabels {
    fields: HashMap<(StructId, String), Labels>,
    structs: HashMap<StructId, Labels>,
    pub masks: HashMap<(StructId, String), Mask>,
}

impl SchemaLabels {
    /// The labels of field `f` of struct `s`: its own, its type's, and the struct's.
    pub fn field(&self, s: StructId, f: &str) -> Labels {
        let mut out = self.fields.get(&(s, f.to_string())).cloned().unwrap_or_default();
        if let Some(l) = self.structs.get(&s) {
            out.union(l);
        }
        if let Some(m) = self.masks.get(&(s, f.to_string())) {
            for l in &mut out.0 {
                l.mask = Some(m.clone());
            }
        }
        out
    }

    /// Every label a value of type `ty` can hold inside it (fields of structs, recursively).
    pub fn deep(&self, schema: &Schema, ty: &Type) -> Labels {
        let mut out = Labels::default();
        self.deep_into(schema, ty, &mut Vec::new(), &mut out);
        out
    }

    fn deep_into(&self, schema: &Schema, ty: &Type, seen: &mut Vec<StructId>, out: &mut Labels) {
        match ty {
            Type::Nullable(t) | Type::List(t) | Type::Set(t) => self.deep_into(schema, t, seen, out),
            Type::Map(k, v) => {
                self.deep_into(schema, k, seen, out);
                self.deep_into(schema, v, seen, out);
            }
            Type::Struct(id, _) if !seen.contains(id) => {
                seen.push(*id);
                for f in &schema.get_struct(*id).fields {
                    out.union(&self.field(*id, &f.name));
                    self.deep_into(schema, &f.ty, seen, out);
                }
                seen.pop();
            }
            _ => {}
        }
    }
}

/// Categories named by `pii` annotations and aliases in `annotations`, with where they stand;
/// `Some(empty)` for an explicit `pii = "none"`.
fn categories(
    annotations: &[Annotation],
    taxonomy: &Taxonomy,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, Hop)>> {
    let mut found: Option<Vec<(String, Hop)>> = None;
    for a in annotations {
        let Some(value) = &a.value else { continue };
        if a.key.name == "pii" {
            let list = found.get_or_insert_with(Vec::new);
            for part in value.value.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
                if taxonomy.is_category(part) {
                    list.push((part.to_string(), Hop { span: value.span, what: format!("labeled `{part}` here") }));
                } else {
                    diags.push(taxonomy.unknown_category(part, value.span));
                }
            }
        }
        for alias in taxonomy.aliases.iter().filter(|al| al.annotation == a.key.name && al.value == value.value) {
            found.get_or_insert_with(Vec::new).push((
                alias.category.clone(),
                Hop {
                    span: value.span,
                    what: format!("`{} = \"{}\"` means `{}`", alias.annotation, alias.value, alias.category),
                },
            ));
        }
    }
    found
}

fn to_labels(cats: &[(String, Hop)], field: &str) -> Labels {
    Labels(
        cats.iter()
            .map(|(c, hop)| Label {
                category: c.clone(),
                form: Form::Raw,
                implicit: false,
                path: vec![Hop { span: hop.span, what: format!("`{field}` {}", hop.what) }],
                mask: None,
            })
            .collect(),
    )
}

/// Annotations that a field's type brings: inline ones, those of its typedef chain, and those
/// of its element, key and value types (a `list<Email>` holds emails), to any depth.
fn type_annotations(schema: &Schema, res: &Resolved, m: ModuleId, t: &TypeRef) -> Vec<Annotation> {
    let mut out = Vec::new();
    collect_type_annotations(schema, res, m, t, 0, &mut out);
    out
}

fn collect_type_annotations(
    schema: &Schema,
    res: &Resolved,
    m: ModuleId,
    t: &TypeRef,
    depth: usize,
    out: &mut Vec<Annotation>,
) {
    if depth > 32 {
        return;
    }
    out.extend(t.annotations.iter().cloned());
    match &t.kind {
        TypeKind::List(e) | TypeKind::Set(e) => collect_type_annotations(schema, res, m, e, depth + 1, out),
        TypeKind::Map(k, v) => {
            collect_type_annotations(schema, res, m, k, depth + 1, out);
            collect_type_annotations(schema, res, m, v, depth + 1, out);
        }
        TypeKind::Named(n) => {
            if let Ok(TypeSym::Typedef(i)) = schema.lookup(res, m, &n.name) {
                let td = &schema.typedefs[i];
                out.extend(td.annotations.iter().cloned());
                collect_type_annotations(schema, res, td.module, &td.target, depth + 1, out);
            }
        }
        TypeKind::Base(_) => {}
    }
}

fn holds_struct(ty: &Type) -> bool {
    match ty {
        Type::Nullable(t) | Type::List(t) | Type::Set(t) => holds_struct(t),
        Type::Map(k, v) => holds_struct(k) || holds_struct(v),
        Type::Struct(..) => true,
        _ => false,
    }
}

/// Where an annotation stands, for [`lookalike`].
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Struct,
    Field,
    Typedef,
    /// An enum, an enum value, a typedef or a constant: `pii` and `mask` are read only on
    /// fields, field types, typedefs and structs.
    Elsewhere(&'static str),
}

/// An annotation that looks like one of ours but that the analysis does not read: a key
/// spelled otherwise (`PII`, `Mask`, `hasPersonalData`), `pii` without a category, or a key
/// where it means nothing. Such a schema would silently lose a label, so it is a `P010`.
fn lookalike(a: &Annotation, place: Place, taxonomy: &Taxonomy) -> Option<Diagnostic> {
    const OURS: [&str; 3] = ["pii", "mask", "has_personal_data"];
    let key = a.key.name.as_str();
    // A project alias (`[[aliases]] annotation = "PII"`) is read: not a lookalike.
    if taxonomy.aliases.iter().any(|al| al.annotation == key) {
        return None;
    }
    let folded: String = key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    let ours = OURS.iter().find(|k| k.replace('_', "") == folded);
    let warn = |msg: String, help: String| {
        Some(Diagnostic::new(Code::P010, a.span, msg).label("not read by the privacy analysis").help(help))
    };
    match ours {
        Some(k) if *k != key => warn(
            format!("`{key}` is not a privacy annotation; the analysis reads `{k}`"),
            format!("write `{k}`, spelled exactly so"),
        ),
        Some(&"pii") if a.value.is_none() => warn(
            "`pii` without a category labels nothing".to_string(),
            "write `pii = \"user.…\"` with the field's category, or `pii = \"none\"`".to_string(),
        ),
        Some(k) => match place {
            Place::Elsewhere(what) => warn(
                format!("`{k}` on {what} is not read"),
                "label the struct fields (or their typedefs) that hold such values".to_string(),
            ),
            Place::Struct if *k == "mask" => {
                warn("`mask` on a struct is not read".to_string(), "put `mask = \"…\"` on each field".to_string())
            }
            Place::Field if *k == "has_personal_data" => warn(
                "`has_personal_data` on a field is not read".to_string(),
                "put it on the struct: `struct S { … } (has_personal_data)`".to_string(),
            ),
            Place::Typedef if *k != "pii" => warn(
                format!("`{k}` on a typedef is not read"),
                if *k == "mask" {
                    "put `mask = \"…\"` on each field of this type".to_string()
                } else {
                    "put it on the struct: `struct S { … } (has_personal_data)`".to_string()
                },
            ),
            _ => None,
        },
        None => None,
    }
}

/// The structs a type holds (itself, list elements, map keys and values).
fn held_structs(ty: &Type, out: &mut Vec<StructId>) {
    match ty {
        Type::Nullable(t) | Type::List(t) | Type::Set(t) => held_structs(t, out),
        Type::Map(k, v) => {
            held_structs(k, out);
            held_structs(v, out);
        }
        Type::Struct(id, _) => out.push(*id),
        _ => {}
    }
}

/// Reads the labels of every struct field in the program's Thrift files.
pub fn collect(res: &Resolved, taxonomy: &Taxonomy, diags: &mut Vec<Diagnostic>) -> SchemaLabels {
    let schema = &res.schema;
    let mut out = SchemaLabels::default();
    // Structs marked `has_personal_data`, and their unlabeled fields that hold other structs:
    // decided once every struct's labels are known.
    let mut personal_structs: Vec<StructId> = Vec::new();
    let mut struct_fields: Vec<(String, Type, crate::source::Span, crate::source::Span)> = Vec::new();
    for module in &res.modules {
        let Syntax::Thrift(file) = &module.syntax else { continue };
        for def in &file.defs {
            let place = match &def.kind {
                DefKind::Struct { fields, .. } => {
                    for f in fields {
                        diags.extend(f.annotations.iter().filter_map(|a| lookalike(a, Place::Field, taxonomy)));
                    }
                    Place::Struct
                }
                DefKind::Enum { values } => {
                    for v in values {
                        diags.extend(
                            v.annotations
                                .iter()
                                .filter_map(|a| lookalike(a, Place::Elsewhere("an enum value"), taxonomy)),
                        );
                    }
                    Place::Elsewhere("an enum")
                }
                DefKind::Typedef { .. } => Place::Typedef,
                DefKind::Const { .. } => Place::Elsewhere("a constant"),
            };
            diags.extend(def.annotations.iter().filter_map(|a| lookalike(a, place, taxonomy)));
        }
    }
    for (i, module) in res.modules.iter().enumerate() {
        let m = ModuleId(i as u32);
        let Syntax::Thrift(file) = &module.syntax else { continue };
        for def in &file.defs {
            let DefKind::Struct { fields, .. } = &def.kind else { continue };
            let Ok(TypeSym::Struct(id)) = schema.lookup(res, m, &def.name.name) else { continue };
            let info = schema.get_struct(id);
            if info.span != def.name.span {
                continue;
            }
            if let Some(cats) = categories(&def.annotations, taxonomy, diags) {
                out.structs.insert(id, to_labels(&cats, &def.name.name));
            }
            let personal = def.annotations.iter().any(|a| a.key.name == "has_personal_data");
            if personal {
                personal_structs.push(id);
            }
            for f in fields {
                let mut anns = f.annotations.clone();
                anns.extend(type_annotations(schema, res, m, &f.ty));
                let cats = categories(&anns, taxonomy, diags);
                let qualified = format!("{}.{}", def.name.name, f.name.name);
                if let Some(cats) = &cats {
                    out.fields.insert((id, f.name.name.clone()), to_labels(cats, &qualified));
                }
                for a in f.annotations.iter().filter(|a| a.key.name == "mask") {
                    let value = a.value.as_ref().map_or("", |v| v.value.as_str());
                    match Mask::parse(value) {
                        Ok(m) => {
                            // `protect for` may use the mask only if it is strong enough for
                            // every category of the field.
                            let (function, param) = match &m {
                                Mask::Truncate(n) => ("truncate", MaskParam::Number(*n as f64)),
                                Mask::Bucket(Some(w)) => ("bucket", MaskParam::Number(*w)),
                                _ => ("", MaskParam::Unknown),
                            };
                            let weak: Vec<String> = cats
                                .iter()
                                .flatten()
                                .filter_map(|(c, _)| {
                                    taxonomy
                                        .mask_needs(function, c)
                                        .filter(|need| !need.met_by(param))
                                        .map(|need| format!("`{c}` needs {}", need.describe()))
                                })
                                .collect();
                            if weak.is_empty() {
                                out.masks.insert((id, f.name.name.clone()), m);
                            } else {
                                diags.push(
                                    Diagnostic::new(
                                        Code::P011,
                                        a.span,
                                        format!("`mask = \"{value}\"` keeps too much to generalize: {}", weak.join("; ")),
                                    )
                                    .label("too weak: `protect for` will not use it")
                                    .help("give a stronger parameter, or another mask; the minimums are in the taxonomy (`[masks.\"category\"]` in pipe-taxonomy.toml)"),
                                );
                            }
                        }
                        Err(why) => {
                            let name = value.split('(').next().unwrap_or("").trim();
                            let help = did_you_mean(name, MASKS.iter().copied())
                                .filter(|_| !MASKS.contains(&name))
                                .unwrap_or_else(|| {
                                    "masks are hmac, tokenize, bucket or bucket(width), truncate(n), redact and drop"
                                        .to_string()
                                });
                            diags.push(Diagnostic::new(Code::P008, a.span, why).label("not a usable mask").help(help));
                        }
                    }
                }
                let field_ty = info.field(&f.name.name).map(|fi| fi.ty.clone()).unwrap_or(Type::Error);
                if personal && cats.is_none() && !out.structs.contains_key(&id) && holds_struct(&field_ty) {
                    struct_fields.push((qualified.clone(), field_ty.clone(), f.name.span, def.name.span));
                }
                if personal && cats.is_none() && !out.structs.contains_key(&id) && !holds_struct(&field_ty) {
                    diags.push(
                        Diagnostic::new(Code::P006, f.name.span, format!("field `{qualified}` has no privacy label"))
                            .label("unlabeled")
                            .secondary(def.name.span, "this struct is marked `has_personal_data`")
                            .help(format!("label it, e.g. `{} (pii = \"user.…\")`, or write `(pii = \"none\")` if it holds no personal data", f.name.name)),
                    );
                }
            }
        }
    }
    // A field holding a struct is labeled by what that struct holds: unless the struct is
    // personal itself (its own fields are reported) or carries a label somewhere inside, the
    // field is as unlabeled as a string would be.
    for (qualified, ty, span, owner) in struct_fields {
        let mut held = Vec::new();
        held_structs(&ty, &mut held);
        if held.iter().any(|h| personal_structs.contains(h)) || !out.deep(schema, &ty).is_empty() {
            continue;
        }
        let names: Vec<String> = held.iter().map(|h| format!("`{}`", schema.get_struct(*h).name)).collect();
        diags.push(
            Diagnostic::new(
                Code::P006,
                span,
                format!("field `{qualified}` holds {}, which carries no privacy label", names.join(", ")),
            )
            .label("unlabeled")
            .secondary(owner, "this struct is marked `has_personal_data`")
            .help(format!(
                "label the field (`pii = \"user.…\"`), label the fields of {} or mark it `has_personal_data`, or write `(pii = \"none\")`",
                names.join(", ")
            )),
        );
    }
    out
}
