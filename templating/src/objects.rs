//! The Go structs Sprig functions return and templates then hold as values (`time.Time`,
//! `*semver.Version`): their data only. What they do (parsing, formatting, fields and methods a
//! template calls) is implemented beside the functions that make them, in `funcs::date` and
//! `funcs::semver`; `value` holds them without depending on those.

/// A Go `time.Time`: an instant and the zone it is shown in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoTime {
    pub(crate) secs: i64,
    pub(crate) nanos: u32,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
    /// The zone abbreviation; empty for a fixed offset without a name (Go prints the offset).
    pub(crate) zone: String,
}

/// A Masterminds `*semver.Version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
    pub(crate) pre: String,
    pub(crate) metadata: String,
    pub(crate) original: String,
}
