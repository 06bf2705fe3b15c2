//! Tokens of MLflow's search-filter language (a small slice of SQL, as `sqlparse` sees it).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An unquoted word: `metrics`, `AND`, `start_time`.
    Word(String),
    /// `` `quoted name` ``.
    Backtick(String),
    /// `"double quoted"`: an identifier part or a string value, depending on position.
    DoubleQuoted(String),
    /// `'single quoted'`: a string value.
    SingleQuoted(String),
    /// A numeric literal, kept as written.
    Number(String),
    /// `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`.
    Cmp(&'static str),
    Dot,
    Comma,
    LParen,
    RParen,
}

impl Tok {
    /// How the token is shown in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Backtick(s) => format!("'`{s}`'"),
            Tok::DoubleQuoted(s) => format!("'\"{s}\"'"),
            Tok::SingleQuoted(s) => format!("\"'{s}'\""),
            Tok::Number(n) => format!("'{n}'"),
            Tok::Cmp(c) => format!("'{c}'"),
            Tok::Dot => "'.'".into(),
            Tok::Comma => "','".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
        }
    }

    pub(crate) fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// A token and the character offset it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub tok: Tok,
    pub at: usize,
}

fn err(what: &'static str, input: &str, at: usize, msg: impl std::fmt::Display) -> Error {
    Error::invalid(what, format!("{msg} at position {at} in {input:?}"))
}

/// Reads a quoted run that ends at `quote`; a doubled quote (`''`) or a backslash-escaped one
/// (`\'`) stands for the quote itself.
fn quoted(
    what: &'static str,
    input: &str,
    chars: &[char],
    start: usize,
    quote: char,
) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 2;
        } else if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
            } else {
                return Ok((out, i + 1));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Err(err(
        what,
        input,
        start,
        format!("unterminated {quote}-quoted text"),
    ))
}

fn number_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    if matches!(chars.get(i), Some('-' | '+')) {
        i += 1;
    }
    let digits_from = i;
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    let mut saw_digits = i > digits_from;
    if chars.get(i) == Some(&'.') {
        let frac_from = i + 1;
        let mut j = frac_from;
        while chars.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        if j > frac_from || saw_digits {
            saw_digits = saw_digits || j > frac_from;
            i = j;
        }
    }
    if !saw_digits {
        return None;
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('-' | '+')) {
            j += 1;
        }
        let exp_from = j;
        while chars.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        if j > exp_from {
            i = j;
        }
    }
    // `1abc` is not a number followed by a word (sqlparse agrees).
    if chars
        .get(i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        return None;
    }
    Some(i)
}

pub(crate) fn tokenize(what: &'static str, input: &str) -> Result<Vec<Spanned>> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '`' | '"' | '\'' => {
                let (s, end) = quoted(what, input, &chars, i, c)?;
                i = end;
                match c {
                    '`' => Tok::Backtick(s),
                    '"' => Tok::DoubleQuoted(s),
                    _ => Tok::SingleQuoted(s),
                }
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                Tok::Cmp("=")
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Cmp("!=")
            }
            '<' | '>' => {
                let next = chars.get(i + 1);
                let (tok, len) = match (c, next) {
                    ('<', Some('=')) => ("<=", 2),
                    ('<', Some('>')) => ("<>", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    _ => (">", 1),
                };
                i += len;
                Tok::Cmp(tok)
            }
            _ if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => {
                match number_end(&chars, i) {
                    Some(end) => {
                        let n: String = chars[i..end].iter().collect();
                        i = end;
                        Tok::Number(n)
                    }
                    None if c == '.' => {
                        i += 1;
                        Tok::Dot
                    }
                    None => return Err(err(what, input, at, format!("unexpected {c:?}"))),
                }
            }
            _ if c.is_alphabetic() || c == '_' => {
                let mut end = i;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let w: String = chars[i..end].iter().collect();
                i = end;
                Tok::Word(w)
            }
            _ => return Err(err(what, input, at, format!("unexpected {c:?}"))),
        };
        out.push(Spanned { tok, at });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize("filter", s)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn splits_a_typical_filter() {
        assert_eq!(
            toks("metrics.acc >= 0.9 AND params.`lr rate` = 'x''y'"),
            vec![
                Tok::Word("metrics".into()),
                Tok::Dot,
                Tok::Word("acc".into()),
                Tok::Cmp(">="),
                Tok::Number("0.9".into()),
                Tok::Word("AND".into()),
                Tok::Word("params".into()),
                Tok::Dot,
                Tok::Backtick("lr rate".into()),
                Tok::Cmp("="),
                Tok::SingleQuoted("x'y".into()),
            ]
        );
        assert_eq!(toks("-1.5e-3"), vec![Tok::Number("-1.5e-3".into())]);
        assert_eq!(toks(".5"), vec![Tok::Number(".5".into())]);
        assert!(tokenize("filter", "'open").is_err());
        assert!(tokenize("filter", "a ; b").is_err());
    }
}
