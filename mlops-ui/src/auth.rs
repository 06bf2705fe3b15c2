//! The token gate: `Authorization: Bearer <token>` (API clients) or the session cookie the
//! login page sets (browsers). Without a token configured, everything is open.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use mlops_core::secret::{SecretString, bearer_matches, matches_secret};
use serde::Deserialize;

use crate::State;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mlops_ui_session";

/// The cookie's value for `token`: a digest, so the token itself never sits in a browser.
fn session_value(token: &SecretString) -> SecretString {
    use mlops_core::secret::ExposeSecret;
    let digest =
        mlops_core::Digest::of(format!("mlops-ui-session\0{}", token.expose_secret()).as_bytes());
    SecretString::from(digest.to_hex())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

fn authorized(state: &State, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Bearer "));
    // Another scheme (a proxy's Basic auth) is not ours to judge: the cookie still counts.
    if bearer.is_some() {
        return bearer_matches(bearer, token);
    }
    cookie(headers, COOKIE).is_some_and(|c| matches_secret(&c, &session_value(token)))
}

/// Whether the request's `Host` is one the UI answers to (DNS rebinding: a page elsewhere must
/// not reach a UI on 127.0.0.1 through a name of its own). No list: every host.
fn host_allowed(state: &State, headers: &HeaderMap) -> bool {
    if state.allowed_hosts.is_empty() {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Strip the port: `[::1]:5000`, `localhost:5000`.
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !host.ends_with(']') =>
        {
            name
        }
        _ => host,
    };
    state
        .allowed_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

async fn authorize(AxState(state): AxState<Arc<State>>, request: Request, next: Next) -> Response {
    if !host_allowed(&state, request.headers()) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this mlops UI does not answer to that host name (see --allowed-host)",
        )
            .into_response();
    }
    if authorized(&state, request.headers()) {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        let body = serde_json::json!({
            "error_code": "UNAUTHENTICATED",
            "message": "missing or wrong token: send Authorization: Bearer <token>",
        });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let next_page = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let target = format!(
        "{}/login?next={}",
        state.base,
        crate::view::encode_query(&next_page)
    );
    Redirect::to(&target).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Only a path inside the UI is a valid place to go after logging in (no open redirect):
/// `/` then printable ASCII without `\\` — browsers drop tabs and newlines from URLs, so
/// `/<tab>/evil.example` would become `//evil.example`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\') =>
        {
            n
        }
        _ => "/",
    }
}

async fn login_page(AxState(state): AxState<Arc<State>>, Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(q.next.as_deref()).to_string();
    crate::view::login_page(&state.base, &next, q.failed.is_some()).into_response()
}

async fn login(AxState(state): AxState<Arc<State>>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let Some(token) = &state.token else {
        return Redirect::to(&format!("{}{next}", state.base)).into_response();
    };
    if !matches_secret(form.token.trim(), token) {
        let target = format!(
            "{}/login?failed=1&next={}",
            state.base,
            crate::view::encode_query(&next)
        );
        return Redirect::to(&target).into_response();
    }
    use mlops_core::secret::ExposeSecret;
    let path = if state.base.is_empty() {
        "/"
    } else {
        state.base.as_str()
    };
    let cookie = format!(
        "{COOKIE}={}; Path={path}; HttpOnly; SameSite=Lax",
        session_value(token).expose_secret()
    );
    let mut response = Redirect::to(&format!("{}{next}", state.base)).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        crate::view::STYLESHEET,
    )
        .into_response()
}

/// `routes` behind the gate, plus the login page and the stylesheet, which are open.
pub(crate) fn guard(routes: Router<Arc<State>>, state: Arc<State>) -> Router<Arc<State>> {
    routes
        .layer(axum::middleware::from_fn_with_state(state, authorize))
        .route("/login", get(login_page).post(login))
        .route("/static/mlops.css", get(stylesheet))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_inside_the_ui_are_followed_after_login() {
        assert_eq!(safe_next(Some("/runs/abc?x=1")), "/runs/abc?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "runs",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

#[cfg(test)]
mod host_tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    fn allowed(hosts: &[&str], host: Option<&str>) -> bool {
        let ui = crate::Ui::new(
            std::sync::Arc::new(mlops_storage::MemoryTracker::new()),
            std::sync::Arc::new(mlops_storage::MemoryRegistry::new()),
        )
        .with_allowed_hosts(hosts.iter().map(|h| h.to_string()));
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(
                header::HOST,
                HeaderValue::from_str(h).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        super::host_allowed(&ui.state, &headers)
    }

    #[test]
    fn only_listed_host_names_are_answered() {
        let local = ["localhost", "127.0.0.1", "[::1]"];
        for ok in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(allowed(&local, Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example:5000",
            "evil.example",
            "127.0.0.1.evil.example:5000",
            "",
        ] {
            assert!(!allowed(&local, Some(bad)), "{bad}");
        }
        assert!(!allowed(&local, None));
        assert!(allowed(&[], Some("anything")), "no list: every host");
    }
}
