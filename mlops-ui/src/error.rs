//! Errors as pages (HTML) or as JSON, with the status their kind calls for.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mlops_core::error::ErrorKind;

/// A failed request: the core error and whether the caller wants JSON.
#[derive(Debug)]
pub struct UiError {
    error: mlops_core::Error,
    json: bool,
}

impl UiError {
    /// An error answered as an HTML page.
    pub fn page(error: mlops_core::Error) -> Self {
        Self { error, json: false }
    }

    /// An error answered as `{"error_code", "message"}`.
    pub fn json(error: mlops_core::Error) -> Self {
        Self { error, json: true }
    }

    /// The HTTP status for the error's kind.
    pub fn status(&self) -> StatusCode {
        status_of(&self.error)
    }
}

pub(crate) fn status_of(error: &mlops_core::Error) -> StatusCode {
    match error.kind() {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if self.json {
            let body = serde_json::json!({
                "error_code": self.error.kind().as_str().to_ascii_uppercase(),
                "message": self.error.to_string(),
            });
            (status, axum::Json(body)).into_response()
        } else {
            (
                status,
                crate::view::error_page(status, &self.error.to_string()),
            )
                .into_response()
        }
    }
}

/// Page handlers' result.
pub(crate) type PageResult = Result<Response, UiError>;

/// `?` on a core result inside a page handler.
pub(crate) trait OrPage<T> {
    fn or_page(self) -> Result<T, UiError>;
    fn or_json(self) -> Result<T, UiError>;
}

impl<T> OrPage<T> for mlops_core::Result<T> {
    fn or_page(self) -> Result<T, UiError> {
        self.map_err(UiError::page)
    }
    fn or_json(self) -> Result<T, UiError> {
        self.map_err(UiError::json)
    }
}
