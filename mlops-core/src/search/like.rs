//! SQL `LIKE` matching: `%` matches any run of characters, `_` exactly one.

/// Whether `text` matches the SQL `LIKE` `pattern`; `case_insensitive` gives `ILIKE`.
///
/// Linear-space greedy matching with backtracking to the last `%`, so patterns like `%a%a%a%b`
/// cannot blow up.
pub fn like_match(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let (t, p) = (norm(text), norm(pattern));
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::like_match;

    #[test]
    fn like_semantics() {
        assert!(like_match("mlp-2", "mlp%", false));
        assert!(like_match("mlp-2", "%-_", false));
        assert!(!like_match("MLP", "mlp", false));
        assert!(like_match("MLP", "mlp", true));
        assert!(like_match("", "%", false));
        assert!(!like_match("", "_", false));
        assert!(like_match("a.b", "a.b", false));
        assert!(!like_match("axb", "a.b", false));
        assert!(like_match(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            "%a%a%a%a%b",
            false
        ));
        assert!(!like_match(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "%a%a%a%a%b",
            false
        ));
    }
}
