//! Typed, validated identifiers.
//!
//! Every name that reaches storage goes through one of these newtypes, so a bad name is rejected
//! once, at the edge, with [`Error::InvalidArgument`] — never deep inside a backend as a strange
//! path. Limits follow MLflow (`mlflow/utils/validation.py`) where MLflow has one.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest metric, param or tag key (MLflow's `MAX_ENTITY_KEY_LENGTH`).
pub const MAX_KEY_LEN: usize = 250;
/// Longest param value (MLflow 2.x `MAX_PARAM_VAL_LENGTH`).
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
/// Longest tag value (MLflow's `MAX_TAG_VAL_LENGTH`).
pub const MAX_TAG_VALUE_LEN: usize = 8000;
/// Longest name that becomes a storage path segment (datasets, models, experiments), in bytes
/// of its stored form (see [`stored_len`]): 255 is the file-name limit of ext4, XFS, APFS and
/// NTFS, and what a local store writes is that stored form.
pub const MAX_NAME_LEN: usize = 255;
/// Longest alias (MLflow's registry limit).
pub const MAX_ALIAS_LEN: usize = 255;

/// The length in bytes of `s` as a stored path segment: object stores (and a local store's file
/// names) hold a segment percent-encoded as `object_store`'s `PathPart` encodes it, so each byte
/// of a non-ASCII character, of a control character and of
/// `` \ / { } ^ % ` ] [ " < > ~ # | * ? `` takes three bytes (`ü` is `%C3%BC`); every other character one.
pub fn stored_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            let encoded = !b.is_ascii()
                || b.is_ascii_control()
                || matches!(
                    b,
                    b'/' | b'\\'
                        | b'{'
                        | b'^'
                        | b'}'
                        | b'%'
                        | b'`'
                        | b']'
                        | b'"'
                        | b'>'
                        | b'['
                        | b'~'
                        | b'<'
                        | b'#'
                        | b'|'
                        | b'*'
                        | b'?'
                );
            if encoded { 3 } else { 1 }
        })
        .sum()
}

/// Rejects what would escape or confuse a storage path when used as one path segment, or what
/// would be longer than `max` bytes as stored.
fn check_segment(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(what, "must not be empty"));
    }
    let stored = stored_len(s);
    if stored > max {
        let chars = s.chars().count();
        return Err(Error::invalid(
            what,
            format!(
                "{s:?} ({chars} characters) is {stored} bytes as a storage path segment, the limit is {max} \
                 (non-ASCII characters and \\ {{ }} ^ % ` [ ] \" < > ~ # | * ? take 3 bytes per byte)"
            ),
        ));
    }
    if s == "." || s.contains("..") {
        return Err(Error::invalid(
            what,
            format!("{s:?} must not contain '..' or be '.'"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | '\\') || c.is_control())
    {
        return Err(Error::invalid(
            what,
            format!("{s:?} must not contain {c:?} (no path separators or control characters)"),
        ));
    }
    if s.trim() != s {
        return Err(Error::invalid(
            what,
            format!("{s:?} must not start or end with whitespace"),
        ));
    }
    Ok(())
}

/// Rejects what would escape a storage path when used as a `/`-separated relative path.
fn check_relative_path(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(what, "must not be empty"));
    }
    let len = s.chars().count();
    if len > max {
        return Err(Error::invalid(
            what,
            format!("{s:?} is {len} characters long, the limit is {max}"),
        ));
    }
    if let Some(c) = s.chars().find(|c| *c == '\\' || c.is_control()) {
        return Err(Error::invalid(
            what,
            format!("{s:?} must not contain {c:?} (no backslashes or control characters)"),
        ));
    }
    for part in s.split('/') {
        if part.is_empty() {
            return Err(Error::invalid(
                what,
                format!("{s:?} must not start or end with '/' or contain '//'"),
            ));
        }
        if part == "." || part == ".." {
            return Err(Error::invalid(
                what,
                format!("{s:?} must not contain '.' or '..' segments"),
            ));
        }
    }
    Ok(())
}

/// The identifier charset MLflow accepts for run ids: `^[a-zA-Z0-9][\w\-]{0,255}$`.
fn check_id(what: &'static str, s: &str) -> Result<()> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(Error::invalid(what, "must not be empty")),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(Error::invalid(
                what,
                format!("{s:?} must start with an ASCII letter or digit"),
            ));
        }
        Some(_) => {}
    }
    if s.len() > 256 {
        return Err(Error::invalid(
            what,
            format!("{s:?} is longer than 256 characters"),
        ));
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(Error::invalid(
            what,
            format!("{s:?} contains {c:?}; only letters, digits, '_' and '-' are allowed"),
        ));
    }
    Ok(())
}

/// Metric, param and tag keys: MLflow's charset (`^[/\w.\- :]*$`), at most 250 characters, and
/// safe as a relative path (MLflow's file store turns `/` into sub-directories).
fn check_key(what: &'static str, s: &str) -> Result<()> {
    check_relative_path(what, s, MAX_KEY_LEN)?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ' ' | '/' | ':')))
    {
        return Err(Error::invalid(
            what,
            format!(
                "{s:?} contains {c:?}; keys may contain letters, digits, '_', '-', '.', ' ', ':' and '/'"
            ),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                let check: fn(&str) -> Result<()> = $check;
                check(&value)?;
                Ok(Self(value))
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the validated string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        // Ord, Eq and Hash are derived from the inner `String`, so they agree with `str`'s and
        // maps keyed by ids can be queried with plain strings.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id!(
    /// An experiment id. MLflow's are decimal strings (`"0"` is the default experiment); any
    /// `^[A-Za-z0-9][\w-]{0,255}$` string is accepted so ids from other servers map 1:1.
    ExperimentId,
    |s| check_id("experiment id", s)
);

string_id!(
    /// A run id: `^[A-Za-z0-9][\w-]{0,255}$`, generated as 32 lowercase hex digits like MLflow's
    /// `uuid4().hex`.
    RunId,
    |s| check_id("run id", s)
);

string_id!(
    /// An experiment name: any non-empty string up to 255 bytes as stored ([`stored_len`])
    /// without path separators, `..` or control characters.
    ExperimentName,
    |s| check_segment("experiment name", s, MAX_NAME_LEN)
);

string_id!(
    /// A dataset name, used as a storage path segment: no `/`, `\`, `..`, `@` or control
    /// characters (`@` separates a version, as in `churn@3`).
    DatasetName,
    |s| {
        check_segment("dataset name", s, MAX_NAME_LEN)?;
        if s.contains('@') {
            return Err(Error::invalid("dataset name", format!("{s:?} must not contain '@'")));
        }
        Ok(())
    }
);

string_id!(
    /// A registered model name, used as a storage path segment: no `/`, `\`, `..`, `%`, `@` or
    /// control characters (MLflow rejects separators and `%`; `@` introduces an alias in
    /// `models:/name@alias`).
    ModelName,
    |s| {
        check_segment("model name", s, MAX_NAME_LEN)?;
        if let Some(c) = s.chars().find(|c| matches!(c, '%' | '@')) {
            return Err(Error::invalid("model name", format!("{s:?} must not contain {c:?}")));
        }
        Ok(())
    }
);

string_id!(
    /// A model alias (`champion`, `production`): MLflow's rules — `^[\w-]*$`, at most 255
    /// characters, and neither `latest` nor `v<digits>` (those already mean a version).
    Alias,
    |s| {
        if s.is_empty() {
            return Err(Error::invalid("alias", "must not be empty"));
        }
        if s.chars().count() > MAX_ALIAS_LEN {
            return Err(Error::invalid("alias", format!("{s:?} is longer than {MAX_ALIAS_LEN} characters")));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-')) {
            return Err(Error::invalid(
                "alias",
                format!("{s:?} contains {c:?}; only letters, digits, '_' and '-' are allowed"),
            ));
        }
        let lower = s.to_ascii_lowercase();
        let version_like = lower.len() > 1
            && lower.starts_with('v')
            && lower[1..].chars().all(|c| c.is_ascii_digit());
        if lower == "latest" || version_like {
            return Err(Error::invalid(
                "alias",
                format!("{s:?} is reserved ('latest' and 'v<number>' name versions)"),
            ));
        }
        Ok(())
    }
);

string_id!(
    /// A metric key: at most 250 characters of letters, digits, `_ - . : /` and space; `/` nests
    /// (`train/loss`) but `..`, empty segments and leading or trailing `/` are rejected.
    MetricKey,
    |s| check_key("metric key", s)
);

string_id!(
    /// A param key, with the same rules as [`MetricKey`].
    ParamKey,
    |s| check_key("param key", s)
);

string_id!(
    /// A tag key, with the same rules as [`MetricKey`]. Keys starting with `mlflow.` are
    /// MLflow's reserved system tags (see [`crate::tracking::tags`]).
    TagKey,
    |s| check_key("tag key", s)
);

string_id!(
    /// The name of a [`Store`](crate::Store) ref: one or more `/`-separated segments, each
    /// non-empty, not starting with `.` (stores keep their own bookkeeping there), and without
    /// `\` or control characters (e.g. `datasets/churn`).
    RefName,
    |s| {
        check_relative_path("ref name", s, 1024)?;
        if s.split('/').any(|seg| seg.starts_with('.')) {
            return Err(Error::invalid(
                "ref name",
                format!("{s:?} has a segment starting with '.', which stores reserve"),
            ));
        }
        Ok(())
    }
);

string_id!(
    /// A relative artifact path inside a run or a model directory (`model/weights.safetensors`):
    /// `/`-separated, no empty, `.` or `..` segments, no `\` or control characters.
    ArtifactPath,
    |s| check_relative_path("artifact path", s, 1024)
);

/// A random (version 4) UUID from the operating system's generator, drawn anew on every call.
///
/// Every id and temporary name the SDK makes comes from here rather than `Uuid::new_v4`: with
/// uuid's `fast-rng` feature (which regorus turns on) that draws from a thread-local generator,
/// and `fork()` copies its state, so a forked child — multiprocessing's default on Linux, a
/// pre-forking server — would repeat its parent's run ids, writer logs and temporary file names.
pub fn random_uuid() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => uuid::Builder::from_random_bytes(bytes).into_uuid(),
        // The OS generator does not fail on supported platforms; keep ids coming regardless.
        Err(_) => uuid::Uuid::new_v4(),
    }
}

impl ExperimentId {
    /// The id of MLflow's default experiment, `"0"`.
    pub fn default_experiment() -> Self {
        Self("0".to_owned())
    }

    /// A new random id: 18 decimal digits with no leading zero, like MLflow's.
    pub fn generate() -> Self {
        let n = random_uuid().as_u128();
        let id = 100_000_000_000_000_000u128 + n % 900_000_000_000_000_000u128;
        Self(id.to_string())
    }
}

impl ExperimentName {
    /// `Default`, the name of MLflow's default experiment.
    pub fn default_experiment() -> Self {
        Self("Default".to_owned())
    }
}

impl RunId {
    /// A new random id: 32 lowercase hex digits (MLflow's `uuid4().hex`).
    pub fn generate() -> Self {
        Self(random_uuid().simple().to_string())
    }
}

/// A version number of a model, a dataset or a store ref: 1, 2, 3, … (never 0).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Version(NonZeroU64);

impl Version {
    /// Version 1.
    pub const FIRST: Version = Version(NonZeroU64::MIN);

    /// Validates that `n` is at least 1.
    pub fn new(n: u64) -> Result<Self> {
        NonZeroU64::new(n)
            .map(Self)
            .ok_or_else(|| Error::invalid("version", "versions start at 1, got 0"))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The version after this one.
    pub fn next(self) -> Result<Self> {
        self.0
            .checked_add(1)
            .map(Self)
            .ok_or_else(|| Error::invalid("version", "version number overflow"))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let n: u64 = s
            .parse()
            .map_err(|_| Error::invalid("version", format!("{s:?} is not a positive integer")))?;
        Self::new(n)
    }
}

impl TryFrom<u64> for Version {
    type Error = Error;
    fn try_from(n: u64) -> Result<Self> {
        Self::new(n)
    }
}

impl From<Version> for u64 {
    fn from(v: Version) -> u64 {
        v.get()
    }
}

/// A blake3 digest: the address of every stored object. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("digest", format!("{s:?} is not 64 lowercase hex digits"));
        let raw = s.as_bytes();
        if raw.len() != 64 {
            return Err(bad());
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in raw.chunks_exact(2).enumerate() {
            let (hi, lo) = (
                nibble(pair[0]).ok_or_else(bad)?,
                nibble(pair[1]).ok_or_else(bad)?,
            );
            out[i] = hi << 4 | lo;
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_hex()
    }
}

/// Incremental blake3 hashing, for data that arrives in chunks.
#[derive(Debug, Clone, Default)]
pub struct Digester(blake3::Hasher);

impl Digester {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The digest of everything fed so far.
    pub fn finalize(&self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_are_version_4_and_distinct() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(RunId::generate().as_str().len(), 32);
        assert_eq!(ExperimentId::generate().as_str().len(), 18);
    }

    #[test]
    fn storage_names_reject_path_tricks() {
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "a..b",
            ".",
            "x\u{0}y",
            "tab\there",
            " pad",
            "pad ",
        ] {
            assert!(DatasetName::new(bad).is_err(), "{bad:?} should be rejected");
            assert!(ModelName::new(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(ModelName::new("churn-model v2").is_ok());
        assert!(ModelName::new("a%b").is_err());
        assert!(ModelName::new("a@b").is_err());
        assert!(DatasetName::new("churn@3").is_err());
        assert!(DatasetName::new("x".repeat(255)).is_ok());
        assert!(DatasetName::new("x".repeat(256)).is_err());
        // Measured as stored: 'ü' is "%C3%BC", six bytes.
        assert!(DatasetName::new("ü".repeat(42)).is_ok());
        let err = DatasetName::new("ü".repeat(43)).unwrap_err();
        assert!(
            err.to_string()
                .contains("258 bytes as a storage path segment, the limit is 255"),
            "{err}"
        );
        assert_eq!(stored_len("a~b"), 5);
    }

    #[test]
    fn keys_follow_mlflow_limits() {
        assert!(MetricKey::new("train/loss").is_ok());
        assert!(MetricKey::new("val acc:top-1").is_ok());
        assert!(MetricKey::new("k".repeat(250)).is_ok());
        let err = MetricKey::new("k".repeat(251)).unwrap_err();
        assert!(err.to_string().contains("limit is 250"), "{err}");
        for bad in [
            "",
            "/x",
            "x/",
            "a//b",
            "a/../b",
            "..",
            "a\\b",
            "bad\nkey",
            "semi;colon",
        ] {
            assert!(ParamKey::new(bad).is_err(), "{bad:?} should be rejected");
            assert!(TagKey::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn run_ids_match_mlflow_pattern() {
        let id = RunId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(RunId::new("_x").is_err());
        assert!(RunId::new("a b").is_err());
        assert!(RunId::new("a".repeat(257)).is_err());
        let e = ExperimentId::generate();
        assert_eq!(e.as_str().len(), 18);
        assert!(!e.as_str().starts_with('0'));
    }

    #[test]
    fn aliases_reserve_latest_and_version_names() {
        assert!(Alias::new("champion").is_ok());
        assert!(Alias::new("prod-2").is_ok());
        for bad in ["latest", "LATEST", "v1", "V12", "", "a b", "a.b"] {
            assert!(Alias::new(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Alias::new("v").is_ok());
        assert!(Alias::new("v1a").is_ok());
    }

    #[test]
    fn ref_names_are_relative_paths_without_hidden_segments() {
        assert!(RefName::new("datasets/churn").is_ok());
        assert!(RefName::new("a b/c.d").is_ok());
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "a/.v/x", ".hidden", "a\\b",
        ] {
            assert!(RefName::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn versions_start_at_one() {
        assert!(Version::new(0).is_err());
        assert_eq!(Version::FIRST.next().unwrap().get(), 2);
        assert!("0".parse::<Version>().is_err());
        assert!("-1".parse::<Version>().is_err());
        assert_eq!("7".parse::<Version>().unwrap().get(), 7);
        assert!(Version::new(u64::MAX).unwrap().next().is_err());
    }

    #[test]
    fn digests_round_trip_hex_and_serde() {
        let d = Digest::of(b"hello");
        assert_eq!(d.to_hex(), blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!("ABC".parse::<Digest>().is_err());
        assert!(d.to_hex().to_uppercase().parse::<Digest>().is_err());
        let mut h = Digester::new();
        h.update(b"hel").update(b"lo");
        assert_eq!(h.finalize(), d);
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        assert!(serde_json::from_str::<ModelName>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<Version>("0").is_err());
        let n: ModelName = serde_json::from_str("\"churn\"").unwrap();
        assert_eq!(n, "churn");
    }
}
