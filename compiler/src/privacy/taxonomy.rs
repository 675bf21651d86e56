//! The data-category taxonomy and the data uses a sink's `purpose` names, fideslang style:
//! dotted names where a rule on `user.financial` covers `user.financial.income`. A default
//! taxonomy ships with the compiler; a project extends it with `pipe-taxonomy.toml` beside its
//! pipeline, which may also map annotations found in existing Thrift IDL (such as
//! `personalDataType = "UserId"`) to categories.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::{FileId, Span};

/// The file a project's taxonomy extension is read from, beside the root pipeline.
pub const FILE_NAME: &str = "pipe-taxonomy.toml";

/// The default categories (fideslang's `user` tree, plus `user.financial.income`).
const CATEGORIES: &[&str] = &[
    "user",
    "user.account",
    "user.account.settings",
    "user.account.username",
    "user.authorization",
    "user.authorization.credentials",
    "user.authorization.password",
    "user.behavior",
    "user.behavior.browsing_history",
    "user.behavior.purchase_history",
    "user.behavior.search_history",
    "user.behavior.media_consumption",
    "user.biometric",
    "user.childrens",
    "user.contact",
    "user.contact.address",
    "user.contact.address.city",
    "user.contact.address.country",
    "user.contact.address.postal_code",
    "user.contact.address.state",
    "user.contact.address.street",
    "user.contact.email",
    "user.contact.phone_number",
    "user.contact.fax_number",
    "user.contact.url",
    "user.content",
    "user.content.private",
    "user.content.public",
    "user.criminal_history",
    "user.demographic",
    "user.demographic.age_range",
    "user.demographic.date_of_birth",
    "user.demographic.gender",
    "user.demographic.language",
    "user.demographic.marital_status",
    "user.demographic.political_opinion",
    "user.demographic.race_ethnicity",
    "user.demographic.religious_belief",
    "user.demographic.sexual_orientation",
    "user.device",
    "user.device.cookie",
    "user.device.cookie_id",
    "user.device.device_id",
    "user.device.ip_address",
    "user.device.telemetry",
    "user.financial",
    "user.financial.account_number",
    "user.financial.bank_account",
    "user.financial.credit_card",
    "user.financial.income",
    "user.financial.credit_score",
    "user.government_id",
    "user.government_id.birth_certificate",
    "user.government_id.drivers_license_number",
    "user.government_id.immigration",
    "user.government_id.national_identification_number",
    "user.government_id.passport_number",
    "user.government_id.vehicle_registration",
    "user.health_and_medical",
    "user.location",
    "user.location.imprecise",
    "user.location.precise",
    "user.name",
    "user.name.first",
    "user.name.last",
    "user.unique_id",
    "user.unique_id.pseudonymous",
    "user.workplace",
    "user.job_title",
    "system",
    "system.operations",
];

/// The default data uses (fideslang's tree).
const USES: &[&str] = &[
    "analytics",
    "analytics.reporting",
    "analytics.reporting.ad_performance",
    "analytics.reporting.content_performance",
    "collect",
    "essential",
    "essential.fraud_detection",
    "essential.service",
    "essential.service.payment_processing",
    "essential.service.security",
    "finance",
    "functional",
    "functional.service",
    "functional.storage",
    "marketing",
    "marketing.advertising",
    "marketing.communications",
    "personalize",
    "personalize.content",
    "personalize.system",
    "sales",
    "third_party_sharing",
    "train_ai_system",
    "improve",
    "employment",
    "audit",
    "risk",
    "risk.underwriting",
];

/// An annotation in Thrift IDL that stands for a category.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    pub annotation: String,
    pub value: String,
    pub category: String,
}

/// The weakest parameters with which a mask still generalizes data of a category (and its
/// subcategories, unless they have rules of their own): `truncate` may keep at most so many
/// characters, `bucket` needs at least that width, `generalize` at least that duration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    pub truncate: Option<i64>,
    pub bucket: Option<f64>,
    /// Milliseconds (from a duration such as `"1d"` in the file).
    #[serde(default, deserialize_with = "duration")]
    pub generalize: Option<i64>,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("`{text}` is not a duration such as \"1h\", \"7d\" or \"30m\""))
    })
}

/// `500ms`, `30s`, `15m`, `1h`, `7d` in milliseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = text[..digits].parse().ok()?;
    let unit = match &text[digits..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// A category and its minimums: `truncate` characters kept, `bucket` width, `generalize` step.
type Minimums = (&'static str, Option<i64>, Option<f64>, Option<i64>);

/// The default strengths: for every category, `truncate` keeps at most 3 characters, `bucket`
/// is at least 10 wide and `generalize` at least an hour; amounts of money need buckets of 100
/// (incomes 1,000), a date of birth a year.
const MASK_RULES: &[Minimums] = &[
    ("", Some(3), Some(10.0), Some(3_600_000)),
    ("user.financial", None, Some(100.0), None),
    ("user.financial.income", None, Some(1_000.0), None),
    ("user.demographic.date_of_birth", None, None, Some(365 * 86_400_000)),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extension {
    #[serde(default)]
    categories: BTreeMap<String, String>,
    #[serde(default)]
    uses: BTreeMap<String, String>,
    #[serde(default)]
    aliases: Vec<Alias>,
    #[serde(default)]
    masks: BTreeMap<String, MaskRule>,
}

#[derive(Debug, Clone)]
pub struct Taxonomy {
    categories: Vec<String>,
    uses: Vec<String>,
    pub aliases: Vec<Alias>,
    /// Mask strengths by category (`""` for every category).
    masks: BTreeMap<String, MaskRule>,
}

impl Default for Taxonomy {
    fn default() -> Taxonomy {
        Taxonomy {
            categories: CATEGORIES.iter().map(|s| s.to_string()).collect(),
            uses: USES.iter().map(|s| s.to_string()).collect(),
            aliases: Vec::new(),
            masks: MASK_RULES
                .iter()
                .map(|(c, t, b, g)| (c.to_string(), MaskRule { truncate: *t, bucket: *b, generalize: *g }))
                .collect(),
        }
    }
}

/// What a mask function's parameter must be for data of one category to count as generalized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Needed {
    /// `truncate` keeps at most this many characters.
    AtMost(i64),
    /// `bucket` width, at least.
    Width(f64),
    /// `generalize` duration in milliseconds, at least.
    Duration(i64),
}

/// A mask's parameter as the program writes it: a number, a duration, or something known only
/// when the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskParam {
    Number(f64),
    Duration(i64),
    Unknown,
}

impl Needed {
    /// Whether a parameter removes enough (one known only at run time cannot be shown to).
    #[allow(clippy::cast_precision_loss, reason = "character counts are small")]
    pub fn met_by(self, p: MaskParam) -> bool {
        match (self, p) {
            (Needed::AtMost(n), MaskParam::Number(x)) => x <= n as f64,
            (Needed::Width(w), MaskParam::Number(x)) => x >= w,
            (Needed::Duration(d), MaskParam::Duration(x)) => x >= d,
            _ => false,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Needed::AtMost(n) => format!("at most {n} characters kept"),
            Needed::Width(w) => format!("a width of at least {w}"),
            Needed::Duration(ms) => format!("a step of at least {}", show_duration(ms)),
        }
    }
}

fn show_duration(ms: i64) -> String {
    for (unit, n) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % n == 0 && ms >= n {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

impl Taxonomy {
    /// The rule for mask `function` on `category`: the most specific category (or parent) that
    /// sets it; `None` for a function without a parameter to judge.
    pub fn mask_needs(&self, function: &str, category: &str) -> Option<Needed> {
        let mut at = Some(category);
        while let Some(c) = at {
            if let Some(r) = self.masks.get(c) {
                let found = match function {
                    "truncate" => r.truncate.map(Needed::AtMost),
                    "bucket" => r.bucket.map(Needed::Width),
                    "generalize" => r.generalize.map(Needed::Duration),
                    _ => return None,
                };
                if found.is_some() {
                    return found;
                }
            }
            at = if c.is_empty() { None } else { Some(c.rsplit_once('.').map_or("", |(p, _)| p)) };
        }
        None
    }
}

/// Does a rule on `rule` cover `category`? `user.financial` covers `user.financial.income`.
pub fn covers(rule: &str, category: &str) -> bool {
    category == rule || category.strip_prefix(rule).is_some_and(|rest| rest.starts_with('.'))
}

impl Taxonomy {
    pub fn is_category(&self, name: &str) -> bool {
        self.categories.iter().any(|c| c == name)
    }

    pub fn is_use(&self, name: &str) -> bool {
        self.uses.iter().any(|c| c == name)
    }

    /// P001 for an unknown category at `span`.
    pub fn unknown_category(&self, name: &str, span: Span) -> Diagnostic {
        Diagnostic::new(Code::P001, span, format!("unknown data category `{name}`"))
            .label("not in the taxonomy")
            .help(did_you_mean(name, self.categories.iter().map(String::as_str)).unwrap_or_else(|| {
                format!("use a category such as `user.financial` or `user.contact.email`, or add it to {FILE_NAME} under [categories]")
            }))
    }

    /// P002 for an unknown data use at `span`.
    pub fn unknown_use(&self, name: &str, span: Span) -> Diagnostic {
        Diagnostic::new(Code::P002, span, format!("unknown data use `{name}`")).label("not a known purpose").help(
            did_you_mean(name, self.uses.iter().map(String::as_str)).unwrap_or_else(|| {
                format!(
                "use a data use such as `analytics.reporting` or `personalize`, or add it to {FILE_NAME} under [uses]"
            )
            }),
        )
    }

    /// Adds a project's `pipe-taxonomy.toml`; problems are diagnostics in that file.
    pub fn extend(&mut self, file: FileId, text: &str, diags: &mut Vec<Diagnostic>) {
        let ext: Extension = match toml::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                let range = e.span().unwrap_or(0..0);
                diags.push(
                    Diagnostic::new(Code::P001, Span::new(file, range.start, range.end.max(range.start)), format!("the taxonomy file is not valid: {}", e.message()))
                        .label("here")
                        .help("the file has tables [categories] and [uses] of `\"name\" = \"description\"`, [[aliases]] with annotation, value and category, and [masks.\"category\"] with truncate, bucket and generalize"),
                );
                return;
            }
        };
        for name in ext.categories.keys() {
            if !valid_name(name) {
                diags.push(self.bad_name(file, text, name));
                continue;
            }
            // A new category brings its parents with it.
            let mut prefix = String::new();
            for part in name.split('.') {
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(part);
                if !self.is_category(&prefix) {
                    self.categories.push(prefix.clone());
                }
            }
        }
        for name in ext.uses.keys() {
            if valid_name(name) {
                self.uses.push(name.clone());
            } else {
                diags.push(self.bad_name(file, text, name));
            }
        }
        for (name, rule) in ext.masks {
            if !self.is_category(&name) {
                diags.push(self.unknown_category(&name, find(file, text, &name)));
                continue;
            }
            let slot = self.masks.entry(name).or_default();
            slot.truncate = rule.truncate.or(slot.truncate);
            slot.bucket = rule.bucket.or(slot.bucket);
            slot.generalize = rule.generalize.or(slot.generalize);
        }
        for alias in ext.aliases {
            if !self.is_category(&alias.category) {
                diags.push(self.unknown_category(&alias.category, find(file, text, &alias.category)));
                continue;
            }
            self.aliases.push(alias);
        }
    }

    fn bad_name(&self, file: FileId, text: &str, name: &str) -> Diagnostic {
        Diagnostic::new(Code::P001, find(file, text, name), format!("`{name}` is not a dotted name"))
            .label("not a category name")
            .help("names are lower-case words joined by dots, such as `user.financial.credit_score`")
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// The span of the first quoted occurrence of `needle` in the file, for diagnostics.
fn find(file: FileId, text: &str, needle: &str) -> Span {
    let quoted = format!("\"{needle}\"");
    match text.find(&quoted) {
        Some(i) => Span::new(file, i, i + quoted.len()),
        None => Span::new(file, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_their_subcategories_only() {
        assert!(covers("user.financial", "user.financial.income"));
        assert!(covers("user", "user.contact.email"));
        assert!(!covers("user.financial", "user.financially"));
        assert!(!covers("user.financial.income", "user.financial"));
    }

    #[test]
    fn a_project_extends_the_taxonomy() {
        let mut t = Taxonomy::default();
        let mut d = Vec::new();
        t.extend(
            FileId(0),
            "[categories]\n\"acme.internal.score\" = \"x\"\n[uses]\n\"risk.pricing\" = \"y\"\n[[aliases]]\nannotation = \"personalDataType\"\nvalue = \"UserId\"\ncategory = \"user.unique_id\"\n",
            &mut d,
        );
        assert!(d.is_empty(), "{d:?}");
        assert!(t.is_category("acme.internal") && t.is_category("acme.internal.score"));
        assert!(t.is_use("risk.pricing"));
        assert_eq!(t.aliases.len(), 1);
        t.extend(FileId(0), "[categories\n", &mut d);
        t.extend(FileId(0), "[[aliases]]\nannotation = \"a\"\nvalue = \"b\"\ncategory = \"user.finacial\"\n", &mut d);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].help.as_deref(), Some("did you mean `user.financial`?"));
    }

    #[test]
    fn mask_minimums_come_from_the_most_specific_category_that_sets_them() {
        let mut t = Taxonomy::default();
        assert_eq!(t.mask_needs("truncate", "user.government_id"), Some(Needed::AtMost(3)));
        assert_eq!(t.mask_needs("bucket", "user.financial.income"), Some(Needed::Width(1_000.0)));
        assert_eq!(t.mask_needs("bucket", "user.financial.account_number"), Some(Needed::Width(100.0)));
        assert_eq!(t.mask_needs("generalize", "acme.visits"), Some(Needed::Duration(3_600_000)));
        assert_eq!(t.mask_needs("hmac", "user.unique_id"), None);
        assert!(Needed::AtMost(3).met_by(MaskParam::Number(3.0)) && !Needed::AtMost(3).met_by(MaskParam::Number(4.0)));
        assert!(!Needed::Width(10.0).met_by(MaskParam::Unknown), "a parameter known only at run time is not enough");
        let mut d = Vec::new();
        t.extend(
            FileId(0),
            "[masks.\"user.contact.address.postal_code\"]\ntruncate = 2\n[masks.\"user.financial\"]\ngeneralize = \"1d\"\n",
            &mut d,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(t.mask_needs("truncate", "user.contact.address.postal_code"), Some(Needed::AtMost(2)));
        assert_eq!(t.mask_needs("truncate", "user.contact.email"), Some(Needed::AtMost(3)));
        assert_eq!(t.mask_needs("generalize", "user.financial.income"), Some(Needed::Duration(86_400_000)));
        assert_eq!(t.mask_needs("bucket", "user.financial.income"), Some(Needed::Width(1_000.0)), "kept where not set");
        t.extend(FileId(0), "[masks.\"user.finance\"]\nbucket = 5\n[masks.\"user\"]\ngeneralize = \"soon\"\n", &mut d);
        assert_eq!(d.len(), 1, "the bad duration makes the file invalid: {d:?}");
        t.extend(FileId(0), "[masks.\"user.finance\"]\nbucket = 5\n", &mut d);
        assert_eq!(d.len(), 2, "an unknown category: {d:?}");
    }
}
