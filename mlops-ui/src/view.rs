//! The page frame, the stylesheet and small formatting helpers shared by the pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Compiled into the binary: the UI works offline and needs no CDN.
pub(crate) const STYLESHEET: &str = include_str!("mlops.css");

/// Percent-encodes `text` for a query value or a path segment.
pub(crate) fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page: the navigation bar, a title and `body`.
pub(crate) fn page(base: &str, title: &str, section: &str, body: Markup) -> Response {
    let nav = [
        ("experiments", "Experiments"),
        ("models", "Models"),
        ("datasets", "Datasets"),
        ("drift", "Drift"),
        ("pipelines", "Pipelines"),
        ("decisions", "Decisions"),
    ];
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mlops" }
                link rel="stylesheet" href={ (base) "/static/mlops.css" };
            }
            body {
                header.top {
                    a.brand href={ (base) "/" } { "mlops" }
                    nav {
                        @for (href, label) in nav {
                            a class=@if section == href { "active" } href={ (base) "/" (href) } { (label) }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// An error as a page, with the message that says what was wrong.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · mlops" } style { (PreEscaped(STYLESHEET)) } }
            body { main {
                h1 { (status.as_u16()) " " (title) }
                p.error id="error" { (message) }
                p { a href="javascript:history.back()" { "Back" } }
            } }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

pub(crate) fn login_page(base: &str, next: &str, failed: bool) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Log in · mlops" } link rel="stylesheet" href={ (base) "/static/mlops.css" }; }
            body { main.login {
                h1 { "mlops" }
                @if failed { p.error id="error" { "That token is not right." } }
                form method="post" action={ (base) "/login" } {
                    input type="hidden" name="next" value=(next);
                    label { "Token " input type="password" name="token" id="token" autofocus; }
                    button type="submit" id="login" { "Log in" }
                }
            } }
        }
    };
    Html(markup.into_string()).into_response()
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in ms, short.
pub(crate) fn duration(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// A metric value, short but exact enough to compare.
pub(crate) fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "0" || s == "-0" {
            format!("{v:.3e}")
        } else {
            s.to_string()
        }
    }
}

/// Bytes, human-readable.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00");
        assert_eq!(super::time(1_796_644_800_000), "2026-12-07 12:00:00");
        assert_eq!(super::time(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::encode_query("a b&c=<d>/é"),
            "a%20b%26c%3D%3Cd%3E%2F%C3%A9"
        );
    }
}
