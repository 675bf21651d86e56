//! One file per builtin function: signature, type rule and examples.

pub mod abs;
pub mod bucket;
pub mod ceil;
pub mod concat;
pub mod contains;
pub mod date;
pub mod day;
pub mod declassify;
pub mod ends_with;
pub mod env;
pub mod exp;
pub mod floor;
pub mod from_millis;
pub mod generalize;
pub mod hmac;
pub mod hour;
pub mod len;
pub mod ln;
pub mod lower;
pub mod month;
pub mod parse_double;
pub mod parse_int;
pub mod parse_timestamp;
pub mod pow;
pub mod quantile_bucket;
pub mod redact;
pub mod replace;
pub mod round;
pub mod scale_to_01;
pub mod sha256;
pub mod split;
pub mod sqrt;
pub mod starts_with;
pub mod substr;
pub mod to_millis;
pub mod to_string;
pub mod tokenize;
pub mod trim;
pub mod truncate;
pub mod upper;
pub mod vocabulary;
pub mod year;
pub mod zscore;

/// Every builtin function, in the order the reference lists them.
pub const ALL: &[&crate::builtins::Function] = &[
    &abs::FUNCTION,
    &round::FUNCTION,
    &floor::FUNCTION,
    &ceil::FUNCTION,
    &sqrt::FUNCTION,
    &ln::FUNCTION,
    &exp::FUNCTION,
    &pow::FUNCTION,
    &lower::FUNCTION,
    &upper::FUNCTION,
    &trim::FUNCTION,
    &len::FUNCTION,
    &concat::FUNCTION,
    &contains::FUNCTION,
    &starts_with::FUNCTION,
    &ends_with::FUNCTION,
    &substr::FUNCTION,
    &replace::FUNCTION,
    &split::FUNCTION,
    &to_string::FUNCTION,
    &parse_int::FUNCTION,
    &parse_double::FUNCTION,
    &parse_timestamp::FUNCTION,
    &date::FUNCTION,
    &year::FUNCTION,
    &month::FUNCTION,
    &day::FUNCTION,
    &hour::FUNCTION,
    &from_millis::FUNCTION,
    &to_millis::FUNCTION,
    &hmac::FUNCTION,
    &tokenize::FUNCTION,
    &redact::FUNCTION,
    &bucket::FUNCTION,
    &truncate::FUNCTION,
    &generalize::FUNCTION,
    &sha256::FUNCTION,
    &declassify::FUNCTION,
    &env::FUNCTION,
    &zscore::FUNCTION,
    &scale_to_01::FUNCTION,
    &vocabulary::FUNCTION,
    &quantile_bucket::FUNCTION,
];
