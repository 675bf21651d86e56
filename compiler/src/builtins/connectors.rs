//! Connectors: the calls that bind a source to data (`files(…)`, `kafka(…)`, `s3(…)`) or say where a
//! sink writes (`parquet(…)`, `redis(…)`). Each has a fixed parameter list, checked here; row
//! expressions in a sink's arguments are typed per edge, against the row that reaches it.

/// Where a connector may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Sink,
    Both,
}

/// What a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A string literal or `env("NAME")`.
    Text,
    /// One of these bare words, such as `json`.
    Word(&'static [&'static str]),
    /// An integer literal.
    Int,
    /// Where a Kafka source starts: `earliest`, `latest`, `group`, or a timestamp `@…`.
    Start,
    /// One expression over the incoming row, or a list `[…]` of them.
    RowExprs,
    /// A duration literal such as `7d`, in milliseconds.
    Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    /// May be given without its name, in this position.
    pub positional: bool,
    pub required: bool,
    pub kind: ArgKind,
}

#[derive(Debug)]
pub struct Connector {
    pub name: &'static str,
    pub role: Role,
    /// For sinks: the parameters a source-only or sink-only use forbids, by role.
    pub source_params: &'static [Param],
    pub sink_params: &'static [Param],
    pub doc: &'static str,
}

const fn p(name: &'static str, positional: bool, required: bool, kind: ArgKind) -> Param {
    Param { name, positional, required, kind }
}

const FILE_FORMATS: &[&str] = &["json", "csv", "parquet", "arrow"];
const TEXT_FORMATS: &[&str] = &["json", "csv"];

pub const CONNECTORS: &[Connector] = &[
    Connector {
        name: "files",
        role: Role::Both,
        source_params: &[p("glob", true, true, ArgKind::Text), p("format", false, false, ArgKind::Word(FILE_FORMATS))],
        sink_params: &[
            p("dir", true, true, ArgKind::Text),
            p("format", false, false, ArgKind::Word(FILE_FORMATS)),
            p("partition_by", false, false, ArgKind::RowExprs),
        ],
        doc: "Files matching a glob (JSON Lines, CSV with a header, Parquet, or Arrow IPC files); as a sink, a directory of files.",
    },
    Connector {
        name: "s3",
        role: Role::Both,
        source_params: &[p("path", true, true, ArgKind::Text), p("format", false, false, ArgKind::Word(FILE_FORMATS))],
        sink_params: &[
            p("path", true, true, ArgKind::Text),
            p("format", false, false, ArgKind::Word(FILE_FORMATS)),
            p("partition_by", false, false, ArgKind::RowExprs),
        ],
        doc: "An object store (S3 or any S3-protocol server; credentials and endpoint from the standard AWS variables): as a (batch) source, the objects a glob `bucket/prefix/*.jsonl` names, read in byte ranges, only the parts a folder's `_SUCCESS` manifest names; as a sink, a prefix its parts are uploaded under (multipart when large), committed by a `_SUCCESS` manifest written last.",
    },
    Connector {
        name: "follow",
        role: Role::Source,
        source_params: &[p("glob", true, true, ArgKind::Text), p("format", false, false, ArgKind::Word(TEXT_FORMATS))],
        sink_params: &[],
        doc: "Files matching a glob, read as they grow and as new ones appear (a stream without a broker).",
    },
    Connector {
        name: "stdin",
        role: Role::Source,
        source_params: &[p("format", false, false, ArgKind::Word(TEXT_FORMATS))],
        sink_params: &[],
        doc: "Standard input, one record per line.",
    },
    Connector {
        name: "stdout",
        role: Role::Sink,
        source_params: &[],
        sink_params: &[p("format", false, false, ArgKind::Word(TEXT_FORMATS))],
        doc: "Standard output, one record per line.",
    },
    Connector {
        name: "parquet",
        role: Role::Sink,
        source_params: &[],
        sink_params: &[p("dir", true, true, ArgKind::Text), p("partition_by", false, false, ArgKind::RowExprs)],
        doc: "A directory of Parquet files, with Hive-style partition folders when `partition_by` is given.",
    },
    Connector {
        name: "kafka",
        role: Role::Both,
        source_params: &[
            p("topic", false, true, ArgKind::Text),
            p("brokers", false, true, ArgKind::Text),
            p("format", false, false, ArgKind::Word(TEXT_FORMATS)),
            p("group", false, false, ArgKind::Text),
            p("start", false, false, ArgKind::Start),
            p("key_field", false, false, ArgKind::Text),
            p("partition_field", false, false, ArgKind::Text),
            p("offset_field", false, false, ArgKind::Text),
            p("timestamp_field", false, false, ArgKind::Text),
        ],
        sink_params: &[
            p("topic", false, true, ArgKind::Text),
            p("brokers", false, true, ArgKind::Text),
            p("format", false, false, ArgKind::Word(&["json"])),
            p("key", false, false, ArgKind::RowExprs),
        ],
        doc: "A Kafka topic (any Kafka-protocol broker): as a source, its partitions shared out over the workers (`start = earliest | latest | group | @timestamp`; `key_field`, `partition_field`, `offset_field`, `timestamp_field` name optional fields the message's metadata fills); as a sink, one JSON message per row keyed by `key`.",
    },
    Connector {
        name: "redis",
        role: Role::Sink,
        source_params: &[],
        sink_params: &[
            p("url", false, true, ArgKind::Text),
            p("key", false, true, ArgKind::RowExprs),
            p("prefix", false, false, ArgKind::Text),
            p("ttl", false, false, ArgKind::Duration),
            p("version", false, false, ArgKind::RowExprs),
        ],
        doc: "An online feature store: one Redis hash per key (`prefix` + the `key` fields' values joined by `:`) holding the row's fields, written by one Lua script unless the hash holds a newer `version` (a field; `window_end` by default when the row has one), its TTL refreshed on every write (`ttl = 7d`).",
    },
    Connector {
        name: "postgres",
        role: Role::Both,
        source_params: &[
            p("url", false, true, ArgKind::Text),
            p("table", false, false, ArgKind::Text),
            p("query", false, false, ArgKind::Text),
        ],
        sink_params: &[
            p("url", false, true, ArgKind::Text),
            p("table", false, true, ArgKind::Text),
            p("key", false, false, ArgKind::RowExprs),
            p("mode", false, false, ArgKind::Word(&["append", "replace", "upsert"])),
        ],
        doc: "A PostgreSQL table: as a (batch) source, a `table` read in parallel page ranges or a `query`, with binary `COPY`, its columns checked against the schema at start; as a sink, rows staged with `COPY` and published in one transaction per run (batch) or per checkpoint (stream), `mode = append | replace | upsert` (`upsert` by `key`, the default when a key is given).",
    },
];

pub fn connector(name: &str) -> Option<&'static Connector> {
    CONNECTORS.iter().find(|c| c.name == name)
}

impl Connector {
    pub fn params(&self, as_source: bool) -> &'static [Param] {
        if as_source {
            self.source_params
        } else {
            self.sink_params
        }
    }

    pub fn allows(&self, as_source: bool) -> bool {
        match self.role {
            Role::Both => true,
            Role::Source => as_source,
            Role::Sink => !as_source,
        }
    }
}
