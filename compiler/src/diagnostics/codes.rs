//! The registry of diagnostic codes. Codes are stable: once published, a code keeps its meaning
//! and a retired code is never reused. `E0xxx` syntax, `E1xxx` names, `E2xxx` types,
//! `P0xx` privacy, `W0xxx` warnings, `N0xxx` notes. `lang-spec/diagnostics.md` documents every code here, and a
//! test keeps the two in step.

use super::Severity;

macro_rules! codes {
    ($($code:ident => $title:literal,)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($code,)* }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// A one-line summary of what the code means.
            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title,)* }
            }
        }
    };
}

codes! {
    // Syntax.
    E0001 => "unexpected token",
    E0002 => "unterminated string or comment",
    E0003 => "invalid character",
    E0004 => "invalid number literal",
    E0005 => "invalid duration or timestamp literal",
    E0006 => "invalid escape in a string",
    // Names.
    E1001 => "included or imported file not found",
    E1002 => "include cycle",
    E1003 => "wrong kind of file for include or import",
    E1004 => "unknown type",
    E1005 => "duplicate definition",
    E1006 => "unknown field",
    E1007 => "duplicate field",
    E1008 => "unknown function",
    E1009 => "unknown stream or source",
    E1010 => "unknown sink",
    E1011 => "unknown model",
    E1012 => "unknown enum value",
    E1013 => "ambiguous type name",
    E1014 => "duplicate field id",
    E1015 => "duplicate enum value",
    E1016 => "unknown name",
    E1017 => "unknown connector or property",
    E1018 => "stream defined in terms of itself",
    E1019 => "computed field without a name",
    E1020 => "unknown model feature",
    // Types.
    E2001 => "type mismatch",
    E2002 => "nullable value used where a value is required",
    E2003 => "wrong number of arguments",
    E2004 => "operator not defined for these types",
    E2005 => "unbounded stream grouped without a window",
    E2006 => "window on a stream without event time",
    E2007 => "event time is not a timestamp",
    E2008 => "aggregate used in the wrong place",
    E2009 => "union of streams with different rows",
    E2010 => "explode of a value that is not a list",
    E2011 => "missing required property",
    E2012 => "constant does not fit its type",
    E2013 => "window or group by without aggregate",
    E2014 => "duplicate model input",
    E2015 => "invalid sink clearance",
    E2016 => "wrong kind of endpoint in an edge",
    E2017 => "recursive function",
    E2018 => "value must be a constant",
    E2019 => "invalid window",
    E2020 => "invalid timestamp annotation",
    E2021 => "missing model input",
    E2022 => "unreadable or unsupported model",
    E2023 => "join with a side that is not a bounded table",
    E2024 => "join keys that cannot be compared",
    E2025 => "field on both sides of a join",
    E2026 => "as-of join without event times",
    E2027 => "invalid `metrics` step",
    E2028 => "transform not fitted",
    E2029 => "no baseline profile",
    // Code generation.
    E3001 => "not supported by the code generator yet",
    // Privacy.
    P001 => "unknown data category",
    P002 => "unknown data use",
    P003 => "labeled data reaches a sink that does not allow it",
    P004 => "unkeyed hash of labeled data",
    P005 => "`protect for` cannot make the row conform",
    P006 => "unlabeled field in a struct with personal data",
    P007 => "implicit flow of labeled data",
    P008 => "unknown masking function",
    P009 => "invalid declassification",
    P010 => "annotation that looks like a privacy annotation but is not read",
    P011 => "mask too weak for the data it masks",
    // Warnings.
    W0001 => "stream never reaches a sink",
    W0002 => "sink receives no stream",
    W0003 => "`??` on a value that is never null",
    W0004 => "integer constant out of range for its type",
    // Notes.
    N0001 => "Thrift service skipped",
    N0002 => "declassified value",
}

impl Code {
    /// The severity a diagnostic with this code has unless a mode raises it.
    pub fn severity(self) -> Severity {
        match self {
            // Privacy findings that `--strict` raises to errors.
            Code::P006 | Code::P007 | Code::P010 | Code::P011 => Severity::Warning,
            _ => match self.as_str().as_bytes()[0] {
                b'W' => Severity::Warning,
                b'N' => Severity::Note,
                _ => Severity::Error,
            },
        }
    }

    /// Whether `--strict` turns this warning into an error.
    pub fn strict_error(self) -> bool {
        matches!(self, Code::P006 | Code::P007 | Code::P010 | Code::P011)
    }

    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}
