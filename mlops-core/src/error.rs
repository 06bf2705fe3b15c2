//! The one categorical error every mlops crate maps into.
//!
//! [`Error`] says *what kind* of failure happened (its variant, also as an [`ErrorKind`]) and
//! *what* it happened to (typed fields: the kind of thing and its name), and keeps the error
//! underneath as its [`source`](std::error::Error::source), the way `object_store`'s errors do:
//!
//! ```
//! use std::error::Error as _;
//! use mlops_core::{Error, ErrorKind};
//!
//! let io = std::io::Error::other("disk on fire");
//! let e = Error::invalid("policy", "cannot parse deploy.rego").with_source(io);
//! assert_eq!(e.kind(), ErrorKind::InvalidArgument);
//! assert_eq!(e.to_string(), "invalid policy: cannot parse deploy.rego: disk on fire");
//! let cause = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
//! assert_eq!(cause.map(|c| c.kind()), Some(std::io::ErrorKind::Other));
//! ```
//!
//! Errors are [`Clone`] (their sources are shared), so one failure can be handed to every
//! waiter that needs it — the requests of one dynamic batch, a step report and the pipeline
//! result — without re-categorising it as a string; [`Error::context`] adds where it happened
//! without changing what it is.
//!
//! Like `object_store`'s, the `Display` of an error includes its source, so `{e}` alone tells
//! the whole story on one line (what the CLI prints); a reporter that also walks
//! [`source()`](std::error::Error::source) (anyhow's `{:?}`, for one) shows the cause twice.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from a backend or a library underneath us.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The shared form in which [`Error`] keeps its source.
pub type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by category.
///
/// Callers match on the category (retry on [`Error::Conflict`] and [`Error::Unavailable`],
/// create on [`Error::NotFound`], show [`Error::PolicyDenied`] reasons to a person) or on
/// [`Error::kind`]; the fields name the offending thing; the source is the error underneath.
/// Each implementation crate maps its own failures into one of these, the way `object_store`'s
/// backends map their private errors onto its public ones.
///
/// Messages are lowercase, name what was wrong, and have no trailing period. The `Display` of
/// a variant with a message appends its source (`invalid csv file: x.csv: unterminated quote`),
/// so a single line tells the whole story (an empty message lets the source speak alone:
/// `invalid pipeline file: unknown field …`); [`Error::NotFound`] and [`Error::AlreadyExists`]
/// say only what was (not) found.
///
/// Build errors with the constructors ([`Error::invalid`], [`Error::unavailable`], …) and add a
/// cause with [`Error::with_source`]; every variant is `#[non_exhaustive]`, so fields can be added
/// without breaking matches written with `..`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The named thing does not exist (or is soft-deleted and hidden).
    #[non_exhaustive]
    NotFound {
        /// What kind of thing: "experiment", "run", "blob", "ref", "model version", ...
        kind: &'static str,
        /// Its name, id or digest.
        name: String,
        /// The error underneath, if any.
        source: Option<SharedError>,
    },

    /// Creating something that already exists.
    #[non_exhaustive]
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// Its name, id or digest.
        name: String,
        /// The error underneath, if any.
        source: Option<SharedError>,
    },

    /// A concurrent writer got there first (a compare-and-swap lost). Re-read and retry.
    #[non_exhaustive]
    Conflict {
        /// What kind of thing.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What the caller expected and what was found.
        message: String,
        /// The error underneath, if any.
        source: Option<SharedError>,
    },

    /// The caller passed a value that is not acceptable.
    #[non_exhaustive]
    InvalidArgument {
        /// Which argument or field (e.g. "param key", "filter", "tensor shape").
        what: &'static str,
        /// What was wrong, naming the offending value.
        message: String,
        /// The error underneath (a parser's, a decoder's), if any.
        source: Option<SharedError>,
    },

    /// A policy said no. `reasons` holds every deny message.
    #[non_exhaustive]
    PolicyDenied {
        /// The policy path or package that decided.
        policy: String,
        /// Every reason the policy gave.
        reasons: Vec<String>,
    },

    /// The operation, format or value is not available in this build or on this backend.
    #[non_exhaustive]
    NotSupported {
        /// What kind of thing: "store url", "flavor", "device", "tree format", "operation", ...
        kind: &'static str,
        /// Which one.
        name: String,
        /// Why not, and what to do instead (the feature to enable, the format this build reads).
        reason: String,
        /// The error underneath, if any.
        source: Option<SharedError>,
    },

    /// Credentials are missing or do not allow the operation.
    #[non_exhaustive]
    PermissionDenied {
        /// What kind of thing was refused: "secret", "blob", "mlflow endpoint", "file", ...
        kind: &'static str,
        /// Which one.
        name: String,
        /// What the peer said.
        message: String,
        /// The error underneath, if any.
        source: Option<SharedError>,
    },

    /// A backend or peer is temporarily unreachable or too slow; the operation may succeed
    /// later. [`Error::is_timeout`] tells a timeout apart.
    #[non_exhaustive]
    Unavailable {
        /// What was unavailable.
        message: String,
        /// The underlying error, if any.
        source: Option<SharedError>,
    },

    /// Stored data failed verification (digest mismatch) or could not be decoded.
    #[non_exhaustive]
    Corrupt {
        /// What kind of object.
        kind: &'static str,
        /// Its name or digest.
        name: String,
        /// What did not verify.
        message: String,
        /// The decoder's error, if any.
        source: Option<SharedError>,
    },

    /// Any other failure of a backend or a library underneath us (a disk, a network, a
    /// runtime), not caused by the caller's input.
    #[non_exhaustive]
    Backend {
        /// Which backend or library ("object_store", "filesystem", "mlflow", ...).
        backend: &'static str,
        /// The underlying error.
        source: SharedError,
    },
}

/// The category of an [`Error`], for code that branches on it: retries, exit codes, HTTP
/// statuses, MLflow error codes, Python exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::NotFound`]
    NotFound,
    /// [`Error::AlreadyExists`]
    AlreadyExists,
    /// [`Error::Conflict`]
    Conflict,
    /// [`Error::InvalidArgument`]
    InvalidArgument,
    /// [`Error::PolicyDenied`]
    PolicyDenied,
    /// [`Error::NotSupported`]
    NotSupported,
    /// [`Error::PermissionDenied`]
    PermissionDenied,
    /// [`Error::Unavailable`]
    Unavailable,
    /// [`Error::Corrupt`]
    Corrupt,
    /// [`Error::Backend`]
    Backend,
}

impl ErrorKind {
    /// Its name in `snake_case` (`not_found`, `invalid_argument`, …), stable for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::InvalidArgument => "invalid_argument",
            Self::PolicyDenied => "policy_denied",
            Self::NotSupported => "not_supported",
            Self::PermissionDenied => "permission_denied",
            Self::Unavailable => "unavailable",
            Self::Corrupt => "corrupt",
            Self::Backend => "backend",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The source of [`Error::timed_out`]: how long was waited for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What did not finish.
    pub what: String,
    /// How long it was given.
    pub after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.after)
    }
}

impl StdError for TimedOut {}

/// A filesystem failure with the path it happened on: the source of [`Error::io`]'s
/// [`Error::Backend`] errors.
#[derive(Debug)]
pub struct PathError {
    /// What was being done ("read", "write", "create", …).
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl StdError for PathError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

fn share(source: impl Into<BoxError>) -> SharedError {
    Arc::from(source.into())
}

/// A message followed by `": {source}"` when there is a source; an empty message leaves the
/// source to speak alone.
struct Told<'a>(&'a str, &'a Option<SharedError>);

impl fmt::Display for Told<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (message, None) => f.write_str(message),
            ("", Some(source)) => write!(f, "{source}"),
            (message, Some(source)) => write!(f, "{message}: {source}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { kind, name, .. } => write!(f, "{kind} not found: {name}"),
            Self::AlreadyExists { kind, name, .. } => write!(f, "{kind} already exists: {name}"),
            Self::Conflict {
                kind,
                name,
                message,
                source,
            } => write!(f, "conflict on {kind} {name}: {}", Told(message, source)),
            Self::InvalidArgument {
                what,
                message,
                source,
            } => write!(f, "invalid {what}: {}", Told(message, source)),
            Self::PolicyDenied { policy, reasons } => {
                write!(f, "denied by policy {policy}: {}", reasons.join("; "))
            }
            Self::NotSupported {
                kind,
                name,
                reason,
                source,
            } => write!(
                f,
                "{kind} {name} is not supported: {}",
                Told(reason, source)
            ),
            Self::PermissionDenied {
                kind,
                name,
                message,
                source,
            } => write!(
                f,
                "permission denied on {kind} {name}: {}",
                Told(message, source)
            ),
            Self::Unavailable { message, source } => {
                write!(f, "unavailable: {}", Told(message, source))
            }
            Self::Corrupt {
                kind,
                name,
                message,
                source,
            } => write!(f, "corrupt {kind} {name}: {}", Told(message, source)),
            Self::Backend { backend, source } => write!(f, "{backend} error: {source}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // Hand out the error itself, not the `Arc` around it, so callers can downcast.
        let source: &(dyn StdError + Send + Sync + 'static) = match self {
            Self::NotFound { source, .. }
            | Self::AlreadyExists { source, .. }
            | Self::Conflict { source, .. }
            | Self::InvalidArgument { source, .. }
            | Self::NotSupported { source, .. }
            | Self::PermissionDenied { source, .. }
            | Self::Unavailable { source, .. }
            | Self::Corrupt { source, .. } => source.as_deref()?,
            Self::Backend { source, .. } => source.as_ref(),
            Self::PolicyDenied { .. } => return None,
        };
        Some(source)
    }
}

impl Error {
    /// A [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl ToString) -> Self {
        Self::NotFound {
            kind,
            name: name.to_string(),
            source: None,
        }
    }

    /// An [`Error::AlreadyExists`].
    pub fn already_exists(kind: &'static str, name: impl ToString) -> Self {
        Self::AlreadyExists {
            kind,
            name: name.to_string(),
            source: None,
        }
    }

    /// A [`Error::Conflict`].
    pub fn conflict(kind: &'static str, name: impl ToString, message: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            name: name.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what,
            message: message.into(),
            source: None,
        }
    }

    /// A [`Error::PolicyDenied`] with every reason the policy gave.
    pub fn policy_denied(policy: impl Into<String>, reasons: Vec<String>) -> Self {
        Self::PolicyDenied {
            policy: policy.into(),
            reasons,
        }
    }

    /// A [`Error::NotSupported`]: `kind` `name` is not available, and `reason` says why and what
    /// to do instead.
    pub fn not_supported(
        kind: &'static str,
        name: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::NotSupported {
            kind,
            name: name.to_string(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A [`Error::PermissionDenied`] on `kind` `name`, with what the peer said.
    pub fn permission_denied(
        kind: &'static str,
        name: impl ToString,
        message: impl Into<String>,
    ) -> Self {
        Self::PermissionDenied {
            kind,
            name: name.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Unavailable`] because `what` did not finish within `after`
    /// ([`Error::is_timeout`] is true for it).
    pub fn timed_out(what: impl Into<String>, after: Duration) -> Self {
        let what = what.into();
        Self::Unavailable {
            message: what.clone(),
            source: None,
        }
        .with_source(TimedOut { what, after })
    }

    /// A [`Error::Corrupt`].
    pub fn corrupt(kind: &'static str, name: impl ToString, message: impl Into<String>) -> Self {
        Self::Corrupt {
            kind,
            name: name.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// A [`Error::Backend`] wrapping `source`.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: share(source),
        }
    }

    /// A filesystem failure while trying to `action` ("read", "open", "write", "create", …) the
    /// `what` ("file", "policy file", "model directory", …) at `path`, by what the system said:
    /// a missing path is [`Error::NotFound`] when reading (`read`, `open`, `list`) and
    /// [`Error::InvalidArgument`] otherwise (writing where a directory does not exist), a refused
    /// one [`Error::PermissionDenied`], an existing one [`Error::AlreadyExists`], unreadable or
    /// wrong-typed content [`Error::InvalidArgument`]; anything else (a full disk, an I/O error)
    /// is the filesystem's [`Error::Backend`] failure, not the caller's.
    pub fn io(
        what: &'static str,
        action: &'static str,
        path: impl AsRef<Path>,
        source: std::io::Error,
    ) -> Self {
        use std::io::ErrorKind as Io;
        let path = path.as_ref();
        let shown = path.display().to_string();
        match source.kind() {
            Io::NotFound if matches!(action, "read" | "open" | "list") => {
                Self::not_found(what, shown).with_source(source)
            }
            Io::PermissionDenied => {
                Self::permission_denied(what, shown, format!("cannot {action} it"))
                    .with_source(source)
            }
            Io::AlreadyExists => Self::already_exists(what, shown).with_source(source),
            Io::NotFound
            | Io::InvalidData
            | Io::InvalidInput
            | Io::UnexpectedEof
            | Io::IsADirectory
            | Io::NotADirectory
            | Io::InvalidFilename => {
                Self::invalid(what, format!("cannot {action} {shown}")).with_source(source)
            }
            _ => Self::backend(
                "filesystem",
                PathError {
                    action,
                    path: path.to_owned(),
                    source,
                },
            ),
        }
    }

    /// The same error with `source` as its cause (replacing any it had). A
    /// [`Error::PolicyDenied`] has no cause — a policy decided — and is returned as it is.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        match &mut self {
            Self::NotFound { source: s, .. }
            | Self::AlreadyExists { source: s, .. }
            | Self::Conflict { source: s, .. }
            | Self::InvalidArgument { source: s, .. }
            | Self::NotSupported { source: s, .. }
            | Self::PermissionDenied { source: s, .. }
            | Self::Unavailable { source: s, .. }
            | Self::Corrupt { source: s, .. } => *s = Some(share(source)),
            Self::Backend { source: s, .. } => *s = share(source),
            Self::PolicyDenied { .. } => {}
        }
        self
    }

    /// The same error told in a wider context: `context` goes in front of the message of the
    /// variants that have one (`invalid model: churn v2 failed its warm-up: …`), while the
    /// category, the typed fields and the source stay as they were — a caller still matches
    /// and retries on what actually happened. [`Error::NotFound`], [`Error::AlreadyExists`],
    /// [`Error::PolicyDenied`] and [`Error::Backend`] are returned as they are: their fields
    /// already name what failed.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        match &mut self {
            Self::Conflict { message, .. }
            | Self::InvalidArgument { message, .. }
            | Self::PermissionDenied { message, .. }
            | Self::Unavailable { message, .. }
            | Self::Corrupt { message, .. }
            | Self::NotSupported {
                reason: message, ..
            } => {
                *message = if message.is_empty() {
                    context.to_string()
                } else {
                    format!("{context}: {message}")
                };
            }
            Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::PolicyDenied { .. }
            | Self::Backend { .. } => {}
        }
        self
    }

    /// Its category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Self::PolicyDenied { .. } => ErrorKind::PolicyDenied,
            Self::NotSupported { .. } => ErrorKind::NotSupported,
            Self::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Corrupt { .. } => ErrorKind::Corrupt,
            Self::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// True for the categories a retry may cure: [`Error::Unavailable`] (timeouts included),
    /// [`Error::Conflict`] and [`Error::Backend`]. Bad input, missing things, denials and
    /// corruption are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unavailable | ErrorKind::Conflict | ErrorKind::Backend
        )
    }

    /// True for an [`Error::Unavailable`] made by [`Error::timed_out`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Unavailable { source: Some(s), .. } if s.is::<TimedOut>())
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// True for [`Error::Conflict`]: the caller may re-read and retry.
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// True for [`Error::InvalidArgument`].
    pub fn is_invalid_argument(&self) -> bool {
        self.kind() == ErrorKind::InvalidArgument
    }

    /// True for [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        self.kind() == ErrorKind::AlreadyExists
    }

    /// True for [`Error::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        self.kind() == ErrorKind::Corrupt
    }

    /// True for [`Error::PolicyDenied`].
    pub fn is_policy_denied(&self) -> bool {
        self.kind() == ErrorKind::PolicyDenied
    }

    /// True for [`Error::NotSupported`].
    pub fn is_not_supported(&self) -> bool {
        self.kind() == ErrorKind::NotSupported
    }

    /// True for [`Error::PermissionDenied`].
    pub fn is_permission_denied(&self) -> bool {
        self.kind() == ErrorKind::PermissionDenied
    }

    /// True for [`Error::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_offending_value() {
        let e = Error::not_found("run", "abc123");
        assert_eq!(e.to_string(), "run not found: abc123");
        let e = Error::policy_denied(
            "ml.deployment",
            vec!["no approval".into(), "f1 too low".into()],
        );
        assert_eq!(
            e.to_string(),
            "denied by policy ml.deployment: no approval; f1 too low"
        );
        assert!(Error::invalid("param key", "empty").is_invalid_argument());
        let e = Error::not_supported("store url", "s3://b", "needs the `s3` feature");
        assert_eq!(
            e.to_string(),
            "store url s3://b is not supported: needs the `s3` feature"
        );
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        let e = Error::permission_denied("secret", "db/password", "vault answered 403");
        assert_eq!(
            e.to_string(),
            "permission denied on secret db/password: vault answered 403"
        );
    }

    #[test]
    fn backend_errors_keep_their_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::backend("object_store", io);
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "object_store error: disk on fire");
        assert!(e.is_transient());
    }

    #[test]
    fn sources_are_kept_shown_and_downcastable() {
        let parse = "x".parse::<i32>().unwrap_err();
        let e = Error::invalid("port", "\"x\"").with_source(parse.clone());
        assert_eq!(e.to_string(), format!("invalid port: \"x\": {parse}"));
        let cause = e
            .source()
            .and_then(|s| s.downcast_ref::<std::num::ParseIntError>());
        assert_eq!(cause, Some(&parse));
        // Clones share the source.
        let copy = e.clone();
        assert!(copy.source().is_some());
        assert_eq!(copy.to_string(), e.to_string());
        // Not-found says what, and keeps the cause for code that wants it.
        let e = Error::not_found("file", "a.csv").with_source(std::io::Error::other("gone"));
        assert_eq!(e.to_string(), "file not found: a.csv");
        assert!(e.source().is_some());
        // An empty message lets the source speak.
        let e = Error::invalid("port", "").with_source(parse.clone());
        assert_eq!(e.to_string(), format!("invalid port: {parse}"));
        // A policy decision has no cause.
        let e = Error::policy_denied("p", vec![]).with_source(std::io::Error::other("x"));
        assert!(e.source().is_none());
    }

    #[test]
    fn context_keeps_the_category_fields_and_source() {
        let e = Error::unavailable("the accelerator is busy")
            .with_source(std::io::Error::other("EBUSY"))
            .context("churn v2 failed its warm-up prediction");
        assert!(e.is_unavailable() && e.source().is_some());
        assert_eq!(
            e.to_string(),
            "unavailable: churn v2 failed its warm-up prediction: the accelerator is busy: EBUSY"
        );
        let e = Error::invalid("step param", "").context("step t");
        assert_eq!(e.to_string(), "invalid step param: step t");
        let e = Error::not_found("dataset", "churn").context("step d");
        assert_eq!(e.to_string(), "dataset not found: churn");
    }

    #[test]
    fn io_failures_are_categorised_by_what_the_system_said() {
        use std::io::{Error as Io, ErrorKind as K};
        let p = Path::new("/data/x.csv");
        let e = Error::io("file", "read", p, Io::from(K::NotFound));
        assert!(e.is_not_found(), "{e}");
        assert_eq!(e.to_string(), "file not found: /data/x.csv");
        // Writing where the directory is missing is the caller's path, not a missing thing.
        let e = Error::io("html report", "write", p, Io::from(K::NotFound));
        assert!(e.is_invalid_argument(), "{e}");
        assert!(
            e.to_string()
                .starts_with("invalid html report: cannot write /data/x.csv"),
            "{e}"
        );
        let e = Error::io("file", "write", p, Io::from(K::PermissionDenied));
        assert!(e.is_permission_denied(), "{e}");
        let e = Error::io("file", "read", p, Io::new(K::InvalidData, "not utf-8"));
        assert!(e.is_invalid_argument(), "{e}");
        assert!(e.to_string().contains("not utf-8"), "{e}");
        // A full disk is not the caller's fault.
        let e = Error::io("model directory", "write", p, Io::from(K::StorageFull));
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(e.is_transient());
        assert!(
            e.to_string()
                .starts_with("filesystem error: cannot write /data/x.csv")
        );
        let path = e.source().and_then(|s| s.downcast_ref::<PathError>());
        assert_eq!(path.map(|p| p.path.as_path()), Some(p));
    }

    #[test]
    fn timeouts_are_unavailable_and_recognisable() {
        let e = Error::timed_out("step train", Duration::from_millis(100));
        assert!(e.is_unavailable() && e.is_timeout() && e.is_transient());
        assert_eq!(
            e.to_string(),
            "unavailable: step train: timed out after 100ms"
        );
        assert!(!Error::unavailable("queue full").is_timeout());
        assert!(!Error::invalid("x", "y").is_transient());
    }
}
