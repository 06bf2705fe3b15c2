//! MLflow's search language: filters (`metrics.acc > 0.9 AND params.model = 'mlp'`) and
//! `order_by` clauses, parsed once into an AST and evaluated against runs, experiments, registered
//! models or model versions.
//!
//! It lives in core so that every [`Tracker`](crate::Tracker) and [`Registry`](crate::Registry)
//! has the same semantics, which are those of `mlflow/utils/search_utils.py`:
//!
//! - clauses are joined with `AND` only; keywords and `LIKE`/`ILIKE`/`IN` are case-insensitive;
//! - identifiers are `<prefix>.<key>` with prefixes `metric(s)`, `param(s)`/`parameter(s)`,
//!   `tag(s)`, `attribute(s)`/`attr`/`run` and `dataset(s)`; no prefix means an attribute; keys
//!   with special characters are quoted with backticks or double quotes;
//! - metrics and numeric attributes compare with `= != > >= < <=` against numbers (metrics against
//!   their latest value); params, tags and string attributes with `= != LIKE ILIKE` against quoted
//!   strings; `IN (...)`/`NOT IN (...)` works for `run_id` and dataset keys;
//! - `IS NULL` / `IS NOT NULL` test whether a key is set: tags and params of runs, tags of
//!   experiments; any other prefix, and registry searches, are refused as MLflow refuses them;
//! - an entity that lacks the key never matches any other comparison (not even `!=`).
//!
//! Deviation, on purpose: `LIKE` patterns treat every character but `%` and `_` literally, as the
//! SQL stores do (MLflow's in-memory filter turns the pattern into an unescaped regex).

mod impls;
mod lexer;
mod like;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

pub use impls::{run_tiebreak, select, select_ref};
use lexer::{Spanned, Tok, tokenize};
pub use like::like_match;

use crate::error::{Error, Result};

/// What a search runs over; decides which prefixes, keys and operators are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SearchTarget {
    /// Runs (`search_runs`).
    Runs,
    /// Experiments (`search_experiments`): attributes `name`, `creation_time`,
    /// `last_update_time`, and tags.
    Experiments,
    /// Registered models: attribute `name`, and tags.
    RegisteredModels,
    /// Model versions: attributes `name`, `run_id`, `source_path`, `version_number`, and tags.
    ModelVersions,
    /// MLflow 3's LoggedModels: attributes `name`, `model_id`, `model_type`, `status`,
    /// `source_run_id`, `creation_timestamp`, `last_updated_timestamp`; tags and params.
    LoggedModels,
}

impl SearchTarget {
    fn string_attributes(self) -> &'static [&'static str] {
        match self {
            Self::Runs => &["run_id", "run_name", "user_id", "status", "artifact_uri"],
            Self::Experiments | Self::RegisteredModels => &["name"],
            Self::ModelVersions => &["name", "run_id", "source_path"],
            Self::LoggedModels => &["name", "model_id", "model_type", "status", "source_run_id"],
        }
    }

    fn numeric_attributes(self) -> &'static [&'static str] {
        match self {
            Self::Runs => &["start_time", "end_time"],
            Self::Experiments => &["creation_time", "last_update_time"],
            Self::RegisteredModels => &[],
            Self::ModelVersions => &["version_number"],
            Self::LoggedModels => &["creation_timestamp", "last_updated_timestamp"],
        }
    }

    fn allows(self, entity: Entity) -> bool {
        match self {
            Self::Runs => true,
            Self::Experiments | Self::RegisteredModels | Self::ModelVersions => {
                matches!(entity, Entity::Attribute | Entity::Tag)
            }
            Self::LoggedModels => matches!(entity, Entity::Attribute | Entity::Tag | Entity::Param),
        }
    }

    /// Attributes that take `IN (...)` lists.
    fn list_attributes(self) -> &'static [&'static str] {
        match self {
            Self::Runs | Self::ModelVersions => &["run_id"],
            Self::Experiments | Self::RegisteredModels | Self::LoggedModels => &[],
        }
    }
}

/// The kind of thing a clause looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// `metrics.<key>`: the latest value of a metric.
    Metric,
    /// `params.<key>`.
    Param,
    /// `tags.<key>`.
    Tag,
    /// `attributes.<key>` or a bare key.
    Attribute,
    /// `datasets.<name|digest|context>`: true when any input dataset matches.
    Dataset,
}

impl Entity {
    fn from_prefix(p: &str) -> Option<Self> {
        Some(match p {
            "metric" | "metrics" => Self::Metric,
            "param" | "params" | "parameter" | "parameters" => Self::Param,
            "tag" | "tags" => Self::Tag,
            "attribute" | "attributes" | "attr" | "run" => Self::Attribute,
            "dataset" | "datasets" => Self::Dataset,
            _ => return None,
        })
    }

    /// The canonical prefix: `metrics`, `params`, `tags`, `attributes`, `datasets`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Metric => "metrics",
            Self::Param => "params",
            Self::Tag => "tags",
            Self::Attribute => "attributes",
            Self::Dataset => "datasets",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `LIKE` (case-sensitive; `%` any run, `_` one character)
    Like,
    /// `ILIKE` (case-insensitive `LIKE`)
    ILike,
    /// `IN (...)`
    In,
    /// `NOT IN (...)`
    NotIn,
    /// `IS NULL`: the param or tag is not set (tags and params only, as in MLflow).
    IsNull,
    /// `IS NOT NULL`: the param or tag is set, to any value (the empty string too).
    IsNotNull,
}

impl Op {
    /// The operator as written: `=`, `!=`, `LIKE`, `NOT IN`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Like => "LIKE",
            Self::ILike => "ILIKE",
            Self::In => "IN",
            Self::NotIn => "NOT IN",
            Self::IsNull => "IS NULL",
            Self::IsNotNull => "IS NOT NULL",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::Ne | Self::Gt | Self::Ge | Self::Lt | Self::Le
        )
    }

    fn is_string(self) -> bool {
        matches!(self, Self::Eq | Self::Ne | Self::Like | Self::ILike)
    }

    fn is_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn)
    }

    fn is_null_test(self) -> bool {
        matches!(self, Self::IsNull | Self::IsNotNull)
    }

    fn compare<T: PartialOrd + ?Sized>(self, lhs: &T, rhs: &T) -> bool {
        match self {
            Self::Eq => lhs == rhs,
            Self::Ne => lhs != rhs,
            Self::Gt => lhs > rhs,
            Self::Ge => lhs >= rhs,
            Self::Lt => lhs < rhs,
            Self::Le => lhs <= rhs,
            Self::Like | Self::ILike | Self::In | Self::NotIn | Self::IsNull | Self::IsNotNull => {
                false
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side of a clause.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// A number (metrics).
    Number(f64),
    /// An integer (numeric attributes such as `start_time`).
    Integer(i64),
    /// A quoted string.
    String(String),
    /// A parenthesised list of quoted strings (for `IN`).
    List(Vec<String>),
    /// No value: the right-hand side of `IS NULL` and `IS NOT NULL`.
    Null,
}

/// One `<entity>.<key> <op> <literal>` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// What it looks at.
    pub entity: Entity,
    /// The key, unquoted, with attribute aliases resolved (`created` → `start_time`).
    pub key: String,
    /// The operator.
    pub op: Op,
    /// The value.
    pub value: Literal,
}

/// A value an attribute has, for filtering and ordering.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    /// A string attribute.
    Str(&'a str),
    /// An integer attribute (timestamps, version numbers).
    Int(i64),
}

/// A dataset input as the `datasets.` prefix sees it.
#[derive(Debug, Clone, Copy)]
pub struct DatasetFields<'a> {
    /// Dataset name.
    pub name: &'a str,
    /// Dataset digest.
    pub digest: &'a str,
    /// The `mlflow.data.context` input tag, if any.
    pub context: Option<&'a str>,
}

/// Something a filter can be evaluated against and sorted by.
pub trait Searchable {
    /// An attribute's value; `None` when unset (e.g. `end_time` of a running run).
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>>;
    /// The latest value of a metric.
    fn metric(&self, _key: &str) -> Option<f64> {
        None
    }
    /// A param's value.
    fn param(&self, _key: &str) -> Option<&str> {
        None
    }
    /// A tag's value.
    fn tag(&self, key: &str) -> Option<&str>;
    /// The dataset inputs.
    fn datasets(&self) -> Vec<DatasetFields<'_>> {
        Vec::new()
    }
}

/// A parsed filter: clauses that must all hold. The empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    target: Option<SearchTarget>,
    clauses: Vec<Clause>,
}

fn translate_alias(key: &str) -> &str {
    match key {
        "created" | "Created" => "start_time",
        "run name" | "Run name" | "Run Name" => "run_name",
        other => other,
    }
}

struct Parser<'a> {
    what: &'static str,
    input: &'a str,
    toks: Vec<Spanned>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(what: &'static str, input: &'a str) -> Result<Self> {
        Ok(Self {
            what,
            input,
            toks: tokenize(what, input)?,
            pos: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Spanned> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_at(&self, t: Option<&Spanned>, msg: &str) -> Error {
        match t {
            Some(t) => Error::invalid(
                self.what,
                format!(
                    "{msg}, found {} at position {} in {:?}",
                    t.tok.describe(),
                    t.at,
                    self.input
                ),
            ),
            None => Error::invalid(
                self.what,
                format!("{msg}, found the end of {:?}", self.input),
            ),
        }
    }

    fn unexpected(&mut self, msg: &str) -> Error {
        let t = self.toks.get(self.pos).cloned();
        self.error_at(t.as_ref(), msg)
    }

    /// `part ('.' part)*`, where a part is a word or a backtick/double-quoted name. Returns the
    /// parts and whether each was quoted.
    fn identifier(&mut self) -> Result<Vec<(String, bool)>> {
        let mut parts = Vec::new();
        loop {
            let part = match self.next() {
                Some(Spanned {
                    tok: Tok::Word(w), ..
                }) => (w, false),
                Some(Spanned {
                    tok: Tok::Backtick(s) | Tok::DoubleQuoted(s),
                    ..
                }) => (s, true),
                other => {
                    return Err(self.error_at(
                        other.as_ref(),
                        "expected an identifier such as metrics.<key>",
                    ));
                }
            };
            parts.push(part);
            if self.peek() == Some(&Tok::Dot) {
                self.pos += 1;
            } else {
                return Ok(parts);
            }
        }
    }

    /// Splits identifier parts into entity and key, as MLflow does: the first part is the prefix
    /// when there is more than one part; the rest, joined by `.`, is the key.
    fn entity_and_key(&self, parts: Vec<(String, bool)>, at: usize) -> Result<(Entity, String)> {
        let mut it = parts.into_iter();
        let Some((first, _)) = it.next() else {
            return Err(Error::invalid(self.what, "empty identifier"));
        };
        let rest: Vec<String> = it.map(|(p, _)| p).collect();
        if rest.is_empty() {
            return Ok((Entity::Attribute, first));
        }
        let entity = Entity::from_prefix(&first).ok_or_else(|| {
            Error::invalid(
                self.what,
                format!(
                    "unknown prefix '{first}' at position {at} in {:?}; valid prefixes are metrics, params, tags, attributes, datasets",
                    self.input
                ),
            )
        })?;
        Ok((entity, rest.join(".")))
    }

    fn operator(&mut self) -> Result<Op> {
        let t = self.next();
        let op = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Cmp("=")) => Op::Eq,
            Some(Tok::Cmp("!=")) => Op::Ne,
            Some(Tok::Cmp(">")) => Op::Gt,
            Some(Tok::Cmp(">=")) => Op::Ge,
            Some(Tok::Cmp("<")) => Op::Lt,
            Some(Tok::Cmp("<=")) => Op::Le,
            Some(w) if w.is_keyword("LIKE") => Op::Like,
            Some(w) if w.is_keyword("ILIKE") => Op::ILike,
            Some(w) if w.is_keyword("IN") => Op::In,
            Some(w) if w.is_keyword("IS") => {
                let not = self.peek().is_some_and(|t| t.is_keyword("NOT"));
                if not {
                    self.pos += 1;
                }
                if self.peek().is_some_and(|t| t.is_keyword("NULL")) {
                    self.pos += 1;
                    if not { Op::IsNotNull } else { Op::IsNull }
                } else if not {
                    return Err(self.unexpected("expected NULL after IS NOT"));
                } else {
                    return Err(self.unexpected("expected NULL or NOT NULL after IS"));
                }
            }
            Some(w) if w.is_keyword("NOT") => {
                if self.peek().is_some_and(|t| t.is_keyword("IN")) {
                    self.pos += 1;
                    Op::NotIn
                } else {
                    return Err(self.unexpected("expected IN after NOT"));
                }
            }
            _ => {
                return Err(self.error_at(
                    t.as_ref(),
                    "expected a comparison (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL)",
                ));
            }
        };
        Ok(op)
    }

    fn literal(&mut self) -> Result<(Literal, usize)> {
        let t = self.next();
        let at = t.as_ref().map_or(self.input.len(), |t| t.at);
        let lit = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Number(n)) => {
                let v: f64 = n
                    .parse()
                    .map_err(|_| self.error_at(t.as_ref(), "malformed number"))?;
                Literal::Number(v)
            }
            Some(Tok::SingleQuoted(s) | Tok::DoubleQuoted(s)) => Literal::String(s.clone()),
            Some(Tok::LParen) => {
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Some(Spanned {
                            tok: Tok::SingleQuoted(s) | Tok::DoubleQuoted(s),
                            ..
                        }) => items.push(s),
                        other => {
                            return Err(self
                                .error_at(other.as_ref(), "expected a quoted string in the list"));
                        }
                    }
                    match self.next() {
                        Some(Spanned {
                            tok: Tok::Comma, ..
                        }) => continue,
                        Some(Spanned {
                            tok: Tok::RParen, ..
                        }) => break,
                        other => return Err(self.error_at(other.as_ref(), "expected ',' or ')'")),
                    }
                }
                Literal::List(items)
            }
            _ => {
                return Err(self.error_at(
                    t.as_ref(),
                    "expected a value (a number, a quoted string or a list)",
                ));
            }
        };
        Ok((lit, at))
    }
}

impl Filter {
    /// Parses a run filter (the common case).
    pub fn parse(input: &str) -> Result<Self> {
        Self::parse_for(SearchTarget::Runs, input)
    }

    /// Parses a filter for `target`. Any malformed input is [`Error::InvalidArgument`] naming the
    /// offending token and its position; no input panics.
    pub fn parse_for(target: SearchTarget, input: &str) -> Result<Self> {
        let mut p = Parser::new("filter", input)?;
        let mut clauses = Vec::new();
        if p.toks.is_empty() {
            return Ok(Self {
                target: Some(target),
                clauses,
            });
        }
        loop {
            let at = p.toks.get(p.pos).map_or(input.len(), |t| t.at);
            let parts = p.identifier()?;
            let (entity, key) = p.entity_and_key(parts, at)?;
            let op = p.operator()?;
            let (value, value_at) = if op.is_null_test() {
                (Literal::Null, at)
            } else {
                p.literal()?
            };
            clauses.push(validate(
                target, input, at, value_at, entity, key, op, value,
            )?);
            match p.next() {
                None => break,
                Some(t) if t.tok.is_keyword("AND") => {
                    if p.peek().is_none() {
                        return Err(p.unexpected("expected a clause after AND"));
                    }
                }
                Some(t) if t.tok.is_keyword("OR") => {
                    return Err(
                        p.error_at(Some(&t), "only AND may join clauses (MLflow has no OR)")
                    );
                }
                Some(t) => {
                    return Err(p.error_at(Some(&t), "expected AND or the end of the filter"));
                }
            }
        }
        Ok(Self {
            target: Some(target),
            clauses,
        })
    }

    /// The clauses, in order.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// True when there are no clauses.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether `item` satisfies every clause.
    pub fn matches<S: Searchable + ?Sized>(&self, item: &S) -> bool {
        self.clauses.iter().all(|c| c.matches(item))
    }
}

impl FromStr for Filter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[allow(clippy::too_many_arguments)]
fn validate(
    target: SearchTarget,
    input: &str,
    at: usize,
    value_at: usize,
    entity: Entity,
    key: String,
    op: Op,
    value: Literal,
) -> Result<Clause> {
    let bad = |msg: String| {
        Error::invalid(
            "filter",
            format!("{msg} (clause at position {at} in {input:?})"),
        )
    };
    if !target.allows(entity) {
        return Err(bad(format!(
            "prefix '{}' cannot be used when searching {target:?}",
            entity.prefix()
        )));
    }
    let key = match entity {
        Entity::Attribute => translate_alias(&key).to_owned(),
        _ => key,
    };
    let numeric_attr =
        entity == Entity::Attribute && target.numeric_attributes().contains(&key.as_str());
    let string_attr =
        entity == Entity::Attribute && target.string_attributes().contains(&key.as_str());
    if entity == Entity::Attribute && !numeric_attr && !string_attr {
        let mut valid: Vec<&str> = target.string_attributes().to_vec();
        valid.extend(target.numeric_attributes());
        return Err(bad(format!(
            "unknown attribute '{key}'; valid attributes are {}",
            valid.join(", ")
        )));
    }
    if entity == Entity::Dataset && !["name", "digest", "context"].contains(&key.as_str()) {
        return Err(bad(format!(
            "unknown dataset key '{key}'; valid keys are name, digest, context"
        )));
    }
    if key.is_empty() {
        return Err(bad("empty key".into()));
    }
    if op.is_null_test() {
        // MLflow's rules: runs test tags and params, experiments tags, registries nothing.
        let ok = match target {
            SearchTarget::Runs => matches!(entity, Entity::Param | Entity::Tag),
            SearchTarget::Experiments => entity == Entity::Tag,
            SearchTarget::RegisteredModels
            | SearchTarget::ModelVersions
            | SearchTarget::LoggedModels => false,
        };
        if !ok {
            let only = match target {
                SearchTarget::Runs => "tags and params",
                SearchTarget::Experiments => "tags",
                _ => {
                    return Err(bad(format!(
                        "{op} is not supported when searching {target:?}"
                    )));
                }
            };
            return Err(bad(format!(
                "{op} is only supported for {only}, not for {}.{key}",
                entity.prefix()
            )));
        }
        return Ok(Clause {
            entity,
            key,
            op,
            value: Literal::Null,
        });
    }
    let op_ok = match entity {
        Entity::Metric => op.is_numeric(),
        Entity::Param | Entity::Tag => op.is_string(),
        Entity::Attribute if numeric_attr => op.is_numeric(),
        Entity::Attribute => op.is_string() || op.is_list(),
        Entity::Dataset => op.is_string() || op.is_list(),
    };
    if !op_ok {
        return Err(bad(format!(
            "operator {op} cannot compare {}.{key}",
            entity.prefix()
        )));
    }
    let wants_number = entity == Entity::Metric || numeric_attr;
    let value = match value {
        Literal::Number(n) if entity == Entity::Metric => Literal::Number(n),
        Literal::Number(n) if numeric_attr => {
            if n.fract() != 0.0 || !n.is_finite() || n.abs() > 9.0e18 {
                return Err(bad(format!("{key} compares with whole numbers, got {n}")));
            }
            Literal::Integer(n as i64)
        }
        v if wants_number => {
            return Err(bad(format!(
                "{}.{key} compares with a number, got {} at position {value_at}",
                entity.prefix(),
                describe_literal(&v)
            )));
        }
        Literal::List(items) => {
            let allowed = match entity {
                Entity::Dataset => true,
                Entity::Attribute => target.list_attributes().contains(&key.as_str()),
                _ => false,
            };
            if !allowed {
                return Err(bad(format!(
                    "only run_id and dataset keys compare with a list, not {}.{key}",
                    entity.prefix()
                )));
            }
            if !op.is_list() {
                return Err(bad(format!("a list needs IN or NOT IN, not {op}")));
            }
            Literal::List(items)
        }
        Literal::String(s) => {
            if op.is_list() {
                return Err(bad(format!(
                    "{op} needs a parenthesised list of quoted strings"
                )));
            }
            Literal::String(s)
        }
        v => {
            return Err(bad(format!(
                "{}.{key} compares with a quoted string, got {} at position {value_at}",
                entity.prefix(),
                describe_literal(&v)
            )));
        }
    };
    Ok(Clause {
        entity,
        key,
        op,
        value,
    })
}

fn describe_literal(v: &Literal) -> String {
    match v {
        Literal::Number(n) => format!("the number {n}"),
        Literal::Integer(n) => format!("the number {n}"),
        Literal::String(s) => format!("the string '{s}'"),
        Literal::List(_) => "a list".into(),
        Literal::Null => "NULL".into(),
    }
}

fn string_matches(op: Op, lhs: &str, value: &Literal) -> bool {
    match (op, value) {
        (Op::Like, Literal::String(p)) => like_match(lhs, p, false),
        (Op::ILike, Literal::String(p)) => like_match(lhs, p, true),
        (Op::In, Literal::List(items)) => items.iter().any(|i| i == lhs),
        (Op::NotIn, Literal::List(items)) => !items.iter().any(|i| i == lhs),
        (op, Literal::String(s)) => op.compare(lhs, s.as_str()),
        _ => false,
    }
}

/// The answer of `IS NULL` / `IS NOT NULL` on a value; `None` for the other operators.
fn null_test(op: Op, value: Option<&str>) -> Option<bool> {
    match op {
        Op::IsNull => Some(value.is_none()),
        Op::IsNotNull => Some(value.is_some()),
        _ => None,
    }
}

impl Clause {
    /// Whether `item` satisfies this clause.
    pub fn matches<S: Searchable + ?Sized>(&self, item: &S) -> bool {
        match self.entity {
            Entity::Metric => match (item.metric(&self.key), &self.value) {
                (Some(v), Literal::Number(n)) => self.op.compare(&v, n),
                _ => false,
            },
            Entity::Param => null_test(self.op, item.param(&self.key)).unwrap_or_else(|| {
                item.param(&self.key)
                    .is_some_and(|v| string_matches(self.op, v, &self.value))
            }),
            Entity::Tag => null_test(self.op, item.tag(&self.key)).unwrap_or_else(|| {
                item.tag(&self.key)
                    .is_some_and(|v| string_matches(self.op, v, &self.value))
            }),
            Entity::Attribute => match (item.attribute(&self.key), &self.value) {
                (Some(AttrValue::Int(v)), Literal::Integer(n)) => self.op.compare(&v, n),
                (Some(AttrValue::Str(v)), value) => string_matches(self.op, v, value),
                _ => false,
            },
            Entity::Dataset => item.datasets().iter().any(|d| {
                let field = match self.key.as_str() {
                    "name" => Some(d.name),
                    "digest" => Some(d.digest),
                    _ => d.context,
                };
                field.is_some_and(|f| string_matches(self.op, f, &self.value))
            }),
        }
    }
}

/// One parsed `order_by` item: `<identifier> [ASC|DESC]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// What to sort by.
    pub entity: Entity,
    /// The key (aliases resolved).
    pub key: String,
    /// Ascending (the default) or descending.
    pub ascending: bool,
}

impl OrderBy {
    /// Parses a run `order_by` item such as `metrics.acc DESC` or `` params.`lr` ``.
    pub fn parse(input: &str) -> Result<Self> {
        Self::parse_for(SearchTarget::Runs, input)
    }

    /// Parses an `order_by` item for `target`.
    pub fn parse_for(target: SearchTarget, input: &str) -> Result<Self> {
        let mut p = Parser::new("order_by", input)?;
        let parts = p.identifier()?;
        let (entity, key) = p.entity_and_key(parts, 0)?;
        let ascending = match p.next() {
            None => true,
            Some(t) if t.tok.is_keyword("ASC") => true,
            Some(t) if t.tok.is_keyword("DESC") => false,
            Some(t) => return Err(p.error_at(Some(&t), "expected ASC or DESC")),
        };
        if p.peek().is_some() {
            return Err(p.unexpected("expected the end of the order_by item"));
        }
        let bad = |m: String| Error::invalid("order_by", format!("{m} in {input:?}"));
        if entity == Entity::Dataset || !target.allows(entity) {
            return Err(bad(format!("cannot order by {}.{key}", entity.prefix())));
        }
        let key = match entity {
            Entity::Attribute => {
                let key = translate_alias(&key).to_owned();
                let known = target.string_attributes().contains(&key.as_str())
                    || target.numeric_attributes().contains(&key.as_str());
                if !known {
                    return Err(bad(format!("unknown attribute '{key}'")));
                }
                key
            }
            _ => key,
        };
        Ok(Self {
            entity,
            key,
            ascending,
        })
    }

    /// Parses a list of items.
    pub fn parse_all<S: AsRef<str>>(target: SearchTarget, items: &[S]) -> Result<Vec<Self>> {
        items
            .iter()
            .map(|s| Self::parse_for(target, s.as_ref()))
            .collect()
    }
}

/// A sortable value: numbers before strings never mix in practice (a key has one type).
#[derive(Debug, PartialEq, PartialOrd)]
enum SortValue<'a> {
    Num(f64),
    Str(&'a str),
}

fn sort_value<'a, S: Searchable + ?Sized>(item: &'a S, o: &OrderBy) -> Option<SortValue<'a>> {
    match o.entity {
        Entity::Metric => item.metric(&o.key).map(SortValue::Num),
        Entity::Param => item.param(&o.key).map(SortValue::Str),
        Entity::Tag => item.tag(&o.key).map(SortValue::Str),
        Entity::Attribute => item.attribute(&o.key).map(|a| match a {
            AttrValue::Int(i) => SortValue::Num(i as f64),
            AttrValue::Str(s) => SortValue::Str(s),
        }),
        Entity::Dataset => None,
    }
}

/// Rank: real values, then NaN, then missing — in both directions, as MLflow sorts.
fn rank(v: &Option<SortValue<'_>>) -> u8 {
    match v {
        Some(SortValue::Num(n)) if n.is_nan() => 1,
        Some(_) => 0,
        None => 2,
    }
}

/// Compares two items by `order_by` (earlier items win); `Equal` when every item ties.
pub fn compare_by<S: Searchable + ?Sized>(a: &S, b: &S, order_by: &[OrderBy]) -> Ordering {
    for o in order_by {
        let ord = compare_values(&sort_value(a, o), &sort_value(b, o), o);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn compare_values(va: &Option<SortValue<'_>>, vb: &Option<SortValue<'_>>, o: &OrderBy) -> Ordering {
    rank(va).cmp(&rank(vb)).then_with(|| {
        if rank(va) != 0 {
            return Ordering::Equal;
        }
        let ord = va.partial_cmp(vb).unwrap_or(Ordering::Equal);
        if o.ascending { ord } else { ord.reverse() }
    })
}

/// An item's values under `order_by`, looked up once, for sorting many items
/// ([`compare_sort_keys`] orders them as [`compare_by`] orders the items).
pub(crate) struct SortKeys<'a>(Vec<Option<SortValue<'a>>>);

pub(crate) fn sort_keys<'a, S: Searchable + ?Sized>(
    item: &'a S,
    order_by: &[OrderBy],
) -> SortKeys<'a> {
    SortKeys(order_by.iter().map(|o| sort_value(item, o)).collect())
}

pub(crate) fn compare_sort_keys(
    a: &SortKeys<'_>,
    b: &SortKeys<'_>,
    order_by: &[OrderBy],
) -> Ordering {
    for ((va, vb), o) in a.0.iter().zip(&b.0).zip(order_by) {
        let ord = compare_values(va, vb, o);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests;
