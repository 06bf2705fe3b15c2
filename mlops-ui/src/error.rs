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

/// A request part that did not parse (a query value of the wrong type, a path segment that is
/// not UTF-8): our error, as a page or as JSON by the path, instead of axum's plain text.
fn rejection(parts: &axum::http::request::Parts, what: &'static str, text: String) -> UiError {
    let error = mlops_core::Error::invalid(what, text);
    if parts.uri.path().starts_with("/api") {
        UiError::json(error)
    } else {
        UiError::page(error)
    }
}

/// axum's `Query`, rejecting with [`UiError`].
pub(crate) struct Q<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(rejection(parts, "query", e.body_text())),
        }
    }
}

/// axum's `Path`, rejecting with [`UiError`].
pub(crate) struct P<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for P<T>
{
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(rejection(parts, "path", e.body_text())),
        }
    }
}
