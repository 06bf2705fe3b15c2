//! Pagination: a page of results plus an opaque token for the next one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One page of a listing or search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page, in the requested order.
    pub items: Vec<T>,
    /// Pass this back to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `all` (already filtered and ordered) into the page that starts at `token`.
    ///
    /// Tokens are MLflow's file/SQL-store format, base64 of `{"offset": N}`; callers must treat
    /// them as opaque.
    pub fn slice(all: Vec<T>, token: Option<&str>, max_results: usize) -> Result<Self> {
        let offset = decode_offset(token)?;
        let max_results = max_results.max(1);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(max_results).collect();
        let next = offset.saturating_add(items.len());
        let next_page_token = (next < total && !items.is_empty()).then(|| encode_offset(next));
        Ok(Self {
            items,
            next_page_token,
        })
    }

    /// Maps every item.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OffsetToken {
    offset: usize,
}

/// Encodes an offset as a page token.
pub fn encode_offset(offset: usize) -> String {
    let json = serde_json::to_vec(&OffsetToken { offset }).unwrap_or_default();
    STANDARD.encode(json)
}

/// Decodes a page token made by [`encode_offset`]; `None` or `""` is offset 0.
pub fn decode_offset(token: Option<&str>) -> Result<usize> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bad = || {
        Error::invalid(
            "page token",
            format!("{token:?} was not issued by this store"),
        )
    };
    let raw = STANDARD.decode(token).map_err(|_| bad())?;
    let parsed: OffsetToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok(parsed.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_everything_once() {
        let all: Vec<u32> = (0..10).collect();
        let mut token = None;
        let mut seen = vec![];
        loop {
            let page = Page::slice(all.clone(), token.as_deref(), 3).unwrap();
            seen.extend(page.items);
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn bad_tokens_are_invalid_arguments() {
        assert!(
            decode_offset(Some("!!!"))
                .unwrap_err()
                .is_invalid_argument()
        );
        assert!(
            decode_offset(Some("e30="))
                .unwrap_err()
                .is_invalid_argument()
        ); // "{}"
        assert_eq!(decode_offset(Some("")).unwrap(), 0);
    }
}
