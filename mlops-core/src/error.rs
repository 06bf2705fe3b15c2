//! The one categorical error every mlops crate maps into.

use std::error::Error as StdError;

/// A boxed error from a backend or a library underneath us.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by category.
///
/// Callers match on the category (retry on [`Error::Conflict`], create on [`Error::NotFound`], show
/// [`Error::PolicyDenied`] reasons to a person); the message names the offending value. Each
/// implementation crate keeps its own detailed error enum and maps it into one of these with
/// `From`, the way `object_store`'s backends map their private errors onto its public ones.
///
/// Messages are lowercase, name what was wrong, and have no trailing period.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named thing does not exist (or is soft-deleted and hidden).
    #[error("{kind} not found: {name}")]
    NotFound {
        /// What kind of thing: "experiment", "run", "blob", "ref", "model version", ...
        kind: &'static str,
        /// Its name, id or digest.
        name: String,
    },

    /// Creating something that already exists.
    #[error("{kind} already exists: {name}")]
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// Its name, id or digest.
        name: String,
    },

    /// A concurrent writer got there first (a compare-and-swap lost). Re-read and retry.
    #[error("conflict on {kind} {name}: {message}")]
    Conflict {
        /// What kind of thing.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What the caller expected and what was found.
        message: String,
    },

    /// The caller passed a value that is not acceptable.
    #[error("invalid {what}: {message}")]
    InvalidArgument {
        /// Which argument or field (e.g. "param key", "filter", "tensor shape").
        what: &'static str,
        /// What was wrong, naming the offending value.
        message: String,
    },

    /// A policy said no. `reasons` holds every deny message.
    #[error("denied by policy {policy}: {}", reasons.join("; "))]
    PolicyDenied {
        /// The policy path or package that decided.
        policy: String,
        /// Every reason the policy gave.
        reasons: Vec<String>,
    },

    /// The operation or feature is not available in this build or on this backend.
    #[error("not supported: {0}")]
    NotSupported(String),

    /// Credentials are missing or do not allow the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),

    /// A backend or peer is temporarily unreachable; the operation may succeed later.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What was unavailable.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// Stored data failed verification (digest mismatch) or could not be decoded.
    #[error("corrupt {kind} {name}: {message}")]
    Corrupt {
        /// What kind of object.
        kind: &'static str,
        /// Its name or digest.
        name: String,
        /// What did not verify.
        message: String,
    },

    /// Any other failure of a backend or a library underneath us.
    #[error("{backend} error: {source}")]
    Backend {
        /// Which backend or library ("object_store", "parquet", "mlflow", ...).
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl ToString) -> Self {
        Self::NotFound {
            kind,
            name: name.to_string(),
        }
    }

    /// An [`Error::AlreadyExists`].
    pub fn already_exists(kind: &'static str, name: impl ToString) -> Self {
        Self::AlreadyExists {
            kind,
            name: name.to_string(),
        }
    }

    /// A [`Error::Conflict`].
    pub fn conflict(kind: &'static str, name: impl ToString, message: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what,
            message: message.into(),
        }
    }

    /// A [`Error::Corrupt`].
    pub fn corrupt(kind: &'static str, name: impl ToString, message: impl Into<String>) -> Self {
        Self::Corrupt {
            kind,
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// A [`Error::Backend`] wrapping `source`.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True for [`Error::Conflict`]: the caller may re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// True for [`Error::InvalidArgument`].
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self, Self::InvalidArgument { .. })
    }

    /// True for [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }

    /// True for [`Error::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }

    /// True for [`Error::PolicyDenied`].
    pub fn is_policy_denied(&self) -> bool {
        matches!(self, Self::PolicyDenied { .. })
    }

    /// True for [`Error::NotSupported`].
    pub fn is_not_supported(&self) -> bool {
        matches!(self, Self::NotSupported(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_offending_value() {
        let e = Error::not_found("run", "abc123");
        assert_eq!(e.to_string(), "run not found: abc123");
        let e = Error::PolicyDenied {
            policy: "ml.deployment".into(),
            reasons: vec!["no approval".into(), "f1 too low".into()],
        };
        assert_eq!(
            e.to_string(),
            "denied by policy ml.deployment: no approval; f1 too low"
        );
        assert!(Error::invalid("param key", "empty").is_invalid_argument());
    }

    #[test]
    fn backend_errors_keep_their_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::backend("object_store", io);
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "object_store error: disk on fire");
    }
}
