//! regorus's errors, flattened to one line and mapped onto [`mlops_core::Error`].

use mlops_core::Error;
use mlops_core::error::BoxError;

/// A regorus failure, shown on one line.
///
/// regorus errors carry a source excerpt over several lines (`--> file:line:col`, the line, a
/// caret, `error: message`); this keeps `file:line:col` apart and the message on one line, and
/// keeps regorus's own error (boxed, whatever its type) as the source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(super) struct RegoError {
    /// `file:line:col`, when regorus located the error.
    at: Option<String>,
    /// What went wrong, on one line.
    pub(super) message: String,
    /// regorus's error.
    source: BoxError,
}

impl RegoError {
    pub(super) fn new(e: impl Into<BoxError>) -> Self {
        let source: BoxError = e.into();
        // The whole chain, as `outer: cause: cause`.
        let mut text = source.to_string();
        let mut next = source.source();
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let at = lines
            .iter()
            .find_map(|l| l.strip_prefix("--> "))
            .map(str::to_string);
        let message = lines
            .iter()
            .find_map(|l| l.strip_prefix("error: "))
            .or_else(|| {
                lines
                    .iter()
                    .find(|l| !l.starts_with("-->") && !l.contains('|'))
                    .copied()
            })
            .unwrap_or("unknown policy error")
            .to_string();
        Self {
            at,
            message,
            source,
        }
    }

    /// Whether regorus stopped the evaluation at its execution time limit.
    pub(super) fn is_time_limit(&self) -> bool {
        self.message.contains("exceeded time limit")
            || self.source.to_string().contains("exceeded time limit")
    }

    /// `file:line:col: message`, or the message where regorus gave no location.
    pub(super) fn line(&self) -> String {
        match &self.at {
            Some(at) => format!("{at}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// An [`Error::InvalidArgument`] about `what`, in `context` (a file label, a rule path):
    /// `invalid {what}: {context}: {file:line:col}: {message}`, the context left out where the
    /// location already starts with it.
    pub(super) fn into_error(mut self, what: &'static str, context: &str) -> Error {
        let message = match &self.at {
            Some(at) if at.starts_with(context) => at.clone(),
            Some(at) => format!("{context}: {at}"),
            None => {
                // A message that names its file already (`p.rego: invalid line 9 specified`).
                let rest = self.message.strip_prefix(context);
                if let Some(rest) = rest.and_then(|r| r.strip_prefix(": ")) {
                    self.message = rest.to_string();
                }
                context.to_string()
            }
        };
        Error::invalid(what, message).with_source(self)
    }
}
