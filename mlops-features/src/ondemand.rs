//! On-demand (request-time) features: Feast's `OnDemandFeatureView` with a `RequestSource`,
//! computed from fields the request carries and from other feature views' features, the same
//! way for training sets (after the point-in-time join) and for online lookups.
//!
//! ```yaml
//! on_demand_feature_views:
//!   - name: order_features
//!     request_schema:               # what the request carries (Feast's RequestSource)
//!       - {name: amount, dtype: Float64}
//!     sources: [customer_stats]     # feature views whose features the expressions read
//!     features:
//!       - {name: amount_over_avg, dtype: Float64, expression: "amount / max(avg_spend, 1)"}
//!       - {name: big_order, dtype: Bool, expression: "amount > 3 * avg_spend"}
//!       - {name: score, dtype: Float64, udf: order_score}   # a Rust closure, by name
//! ```
//!
//! # Expressions
//!
//! Numbers (`3`, `0.5`, `1e-3`); names: a request field, a source view's feature (`avg_spend`,
//! or `customer_stats__avg_spend` when two sources share the name); `+ - * /`, unary `-`,
//! comparisons `< <= > >= == !=` (1 when true, 0 when false), parentheses, and the functions
//! `abs`, `sqrt`, `log` (natural), `exp`, `pow(x, y)`, `min(a, b, …)`, `max(a, b, …)`,
//! `coalesce(a, b, …)` (the first non-null) and `if(cond, then, else)` (`then` when `cond` is
//! non-zero). Values are 64-bit floats (integers and booleans convert); a null input makes a
//! null result (except in `coalesce`, and in the `if` branch not taken), and so does a result
//! that is not finite (`1 / 0`, `log(-1)`). The result is cast to the feature's dtype:
//! `Float64`, `Float32`, `Int64`/`Int32` (towards zero; null when out of range) or `Bool`
//! (non-zero).
//!
//! # Closures
//!
//! `udf: NAME` names a closure registered with
//! [`FeatureStore::with_udf`](crate::FeatureStore::with_udf): it gets one Arrow batch of the
//! view's inputs (the request fields and every feature of its sources, named as in
//! expressions) and answers the feature's column, one value per row. Closures live in the
//! process, not in the registry: a process that did not register one answers
//! `InvalidArgument` naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::definitions::{FeatureView, Field, ValueType};

/// A request-time feature view (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OnDemandFeatureView {
    /// Its name (references are `name:feature`).
    pub name: String,
    /// The fields the request carries (entity-row columns in training sets, entity values
    /// online).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_schema: Vec<Field>,
    /// The feature views whose features the features read (each must declare its schema).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// The features it computes.
    pub features: Vec<OnDemandFeature>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One computed feature: an expression or a named closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OnDemandFeature {
    /// The feature's name.
    pub name: String,
    /// Its type.
    pub dtype: ValueType,
    /// The expression computing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Or the name of a closure registered with `FeatureStore::with_udf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udf: Option<String>,
}

impl OnDemandFeatureView {
    /// A view computing nothing yet, reading `sources`.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            name: name.into(),
            request_schema: Vec::new(),
            sources: sources.into_iter().map(Into::into).collect(),
            features: Vec::new(),
            description: String::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Adds a request field.
    pub fn with_request_field(mut self, name: impl Into<String>, dtype: ValueType) -> Self {
        self.request_schema.push(Field::new(name, dtype));
        self
    }

    /// Adds a feature computed by `expression`.
    pub fn with_expression(
        mut self,
        name: impl Into<String>,
        dtype: ValueType,
        expression: impl Into<String>,
    ) -> Self {
        self.features.push(OnDemandFeature {
            name: name.into(),
            dtype,
            expression: Some(expression.into()),
            udf: None,
        });
        self
    }

    /// Adds a feature computed by the closure registered as `udf`.
    pub fn with_udf(
        mut self,
        name: impl Into<String>,
        dtype: ValueType,
        udf: impl Into<String>,
    ) -> Self {
        self.features.push(OnDemandFeature {
            name: name.into(),
            dtype,
            expression: None,
            udf: Some(udf.into()),
        });
        self
    }

    /// The inputs' namespace: name → what it is. Features under their bare names when no other
    /// source has one of that name, and always as `view__feature`.
    pub(crate) fn namespace(&self, views: &[&FeatureView]) -> BTreeMap<String, Input> {
        let mut out = BTreeMap::new();
        for f in &self.request_schema {
            out.insert(f.name.clone(), Input::Request(f.name.clone()));
        }
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for v in views {
            for f in &v.schema {
                *count.entry(f.name.as_str()).or_default() += 1;
            }
        }
        for v in views {
            for f in &v.schema {
                let input = Input::Feature(v.name.clone(), f.name.clone());
                out.insert(format!("{}__{}", v.name, f.name), input.clone());
                if count.get(f.name.as_str()) == Some(&1) && !out.contains_key(&f.name) {
                    out.insert(f.name.clone(), input);
                }
            }
        }
        out
    }

    /// Checks the features against the namespace (`views`: its sources). Returns the
    /// `(view, feature)` inputs each feature reads.
    pub(crate) fn check(&self, views: &[&FeatureView]) -> Result<()> {
        let names = self.namespace(views);
        let mut seen = BTreeSet::new();
        if self.features.is_empty() {
            return Err(Error::invalid(
                "on-demand feature view",
                format!("on-demand feature view {} computes no features", self.name),
            ));
        }
        for f in &self.features {
            if !seen.insert(f.name.as_str()) {
                return Err(Error::invalid(
                    "on-demand feature view",
                    format!(
                        "on-demand feature view {} declares {} twice",
                        self.name, f.name
                    ),
                ));
            }
            if !matches!(
                f.dtype,
                ValueType::Float64
                    | ValueType::Float32
                    | ValueType::Int64
                    | ValueType::Int32
                    | ValueType::Bool
            ) {
                return Err(Error::invalid(
                    "on-demand feature",
                    format!(
                        "{}:{} is {:?}; computed features are Float64, Float32, Int64, Int32 or Bool",
                        self.name, f.name, f.dtype
                    ),
                ));
            }
            match (&f.expression, &f.udf) {
                (Some(e), None) => {
                    let expr = Expr::parse(e)
                        .map_err(|e| e.context(format!("{}:{}", self.name, f.name)))?;
                    for name in expr.names() {
                        if !names.contains_key(name) {
                            return Err(Error::invalid(
                                "on-demand feature",
                                format!(
                                    "{}:{} reads {name}, which is neither a request field nor a feature of its sources{}",
                                    self.name,
                                    f.name,
                                    crate::definitions::known(names.keys())
                                ),
                            ));
                        }
                    }
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(Error::invalid(
                        "on-demand feature",
                        format!(
                            "{}:{} needs exactly one of expression or udf",
                            self.name, f.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `(view, feature)` inputs `features` read (all of the sources' features for
    /// closures).
    pub(crate) fn feature_inputs(
        &self,
        features: &[String],
        views: &[&FeatureView],
    ) -> Result<Vec<(String, String)>> {
        let names = self.namespace(views);
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |input: &Input| {
            if let Input::Feature(v, f) = input
                && !out.iter().any(|(a, b)| a == v && b == f)
            {
                out.push((v.clone(), f.clone()));
            }
        };
        for name in features {
            let f = self.feature(name)?;
            match &f.expression {
                Some(e) => {
                    for n in Expr::parse(e)?.names() {
                        if let Some(i) = names.get(n) {
                            push(i);
                        }
                    }
                }
                None => {
                    for v in views {
                        for x in &v.schema {
                            push(&Input::Feature(v.name.clone(), x.name.clone()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// A feature by name.
    pub fn feature(&self, name: &str) -> Result<&OnDemandFeature> {
        self.features
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                Error::invalid(
                    "feature reference",
                    format!(
                        "on-demand feature view {} has no feature {name}{}",
                        self.name,
                        crate::definitions::known(self.features.iter().map(|f| &f.name))
                    ),
                )
            })
    }
}

/// What a name in an on-demand view's namespace is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A request field.
    Request(String),
    /// A feature of a source view.
    Feature(String, String),
}

/// A closure computing an on-demand feature from a batch of its view's inputs.
pub type Udf = Arc<dyn Fn(&RecordBatch) -> Result<ArrayRef> + Send + Sync>;

/// The closures a process registered, by name.
#[derive(Clone, Default)]
pub struct Udfs(pub(crate) BTreeMap<String, Udf>);

impl fmt::Debug for Udfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One on-demand view's share of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDemandRequest {
    /// The view.
    pub view: OnDemandFeatureView,
    /// Its requested features, in request order.
    pub features: Vec<String>,
    /// Its source views, as defined.
    pub sources: Vec<FeatureView>,
}

impl OnDemandRequest {
    /// Computes the requested features over `rows` rows, reading each input through `column`
    /// (a request field by name, or a feature as `(view, feature)`), as Arrow arrays of the
    /// features' dtypes.
    pub fn compute(
        &self,
        rows: usize,
        column: &dyn Fn(&Input) -> Result<ArrayRef>,
        udfs: &Udfs,
    ) -> Result<Vec<(String, ArrayRef)>> {
        let views: Vec<&FeatureView> = self.sources.iter().collect();
        let names = self.view.namespace(&views);
        let mut out = Vec::with_capacity(self.features.len());
        for name in &self.features {
            let f = self.view.feature(name)?;
            let array = match (&f.expression, &f.udf) {
                (Some(e), _) => {
                    let expr = Expr::parse(e)?;
                    let mut inputs: BTreeMap<&str, Float64Array> = BTreeMap::new();
                    for n in expr.names() {
                        let input = names.get(n).ok_or_else(|| {
                            Error::invalid(
                                "on-demand feature",
                                format!("{}:{name} reads unknown {n}", self.view.name),
                            )
                        })?;
                        inputs.insert(n, as_f64(&column(input)?, n)?);
                    }
                    let values: Float64Array = (0..rows)
                        .map(|row| {
                            expr.eval(&|n| {
                                inputs
                                    .get(n)
                                    .and_then(|a| (!a.is_null(row)).then(|| a.value(row)))
                            })
                            .filter(|v| v.is_finite())
                        })
                        .collect();
                    cast_to(&values, f.dtype)?
                }
                (None, Some(udf)) => {
                    let closure = udfs.0.get(udf).ok_or_else(|| {
                        Error::invalid(
                            "on-demand feature",
                            format!(
                                "{}:{name} uses closure {udf}, which this process has not registered (FeatureStore::with_udf)",
                                self.view.name
                            ),
                        )
                    })?;
                    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
                    for (n, input) in &names {
                        // Each input once: under its bare name when it has one.
                        let qualified =
                            matches!(input, Input::Feature(v, f) if *n == format!("{v}__{f}"));
                        if qualified && names.iter().any(|(m, i)| i == input && m != n) {
                            continue;
                        }
                        columns.push((n.clone(), column(input)?));
                    }
                    let batch = if columns.is_empty() {
                        RecordBatch::try_new_with_options(
                            Arc::new(arrow::datatypes::Schema::empty()),
                            vec![],
                            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
                        )
                    } else {
                        RecordBatch::try_from_iter(columns)
                    }
                    .map_err(|e| Error::invalid("on-demand feature", e.to_string()))?;
                    let result =
                        closure(&batch).map_err(|e| e.context(format!("closure {udf}")))?;
                    if result.len() != rows {
                        return Err(Error::invalid(
                            "on-demand feature",
                            format!(
                                "closure {udf} answered {} values for {rows} rows",
                                result.len()
                            ),
                        ));
                    }
                    cast_array(&result, f.dtype, udf)?
                }
                (None, None) => {
                    return Err(Error::invalid(
                        "on-demand feature",
                        format!(
                            "{}:{name} has neither an expression nor a udf",
                            self.view.name
                        ),
                    ));
                }
            };
            out.push((name.clone(), array));
        }
        Ok(out)
    }
}

fn as_f64(array: &ArrayRef, name: &str) -> Result<Float64Array> {
    let cast = match array.data_type() {
        DataType::Boolean => {
            let b = array.as_boolean();
            let v: Float64Array = b
                .iter()
                .map(|x| x.map(|x| f64::from(u8::from(x))))
                .collect();
            return Ok(v);
        }
        DataType::Null => return Ok(Float64Array::new_null(array.len())),
        _ => arrow::compute::cast(array, &DataType::Float64).map_err(|e| {
            Error::invalid(
                "on-demand feature",
                format!("{name} ({}) is not a number: {e}", array.data_type()),
            )
        })?,
    };
    Ok(cast.as_primitive::<Float64Type>().clone())
}

fn cast_to(values: &Float64Array, dtype: ValueType) -> Result<ArrayRef> {
    Ok(match dtype {
        ValueType::Bool => Arc::new(
            values
                .iter()
                .map(|v| v.map(|v| v != 0.0))
                .collect::<BooleanArray>(),
        ),
        ValueType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(|v| (v.abs() < 9.2e18).then(|| v.trunc() as i64)))
                .collect::<arrow::array::Int64Array>(),
        ),
        ValueType::Int32 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(|v| i32::try_from(v.trunc() as i64).ok()))
                .collect::<arrow::array::Int32Array>(),
        ),
        ValueType::Float32 => Arc::new(
            values
                .iter()
                .map(|v| v.map(|v| v as f32))
                .collect::<arrow::array::Float32Array>(),
        ),
        _ => Arc::new(values.clone()),
    })
}

fn cast_array(array: &ArrayRef, dtype: ValueType, udf: &str) -> Result<ArrayRef> {
    if array.data_type() == &dtype.arrow_type() {
        return Ok(array.clone());
    }
    arrow::compute::cast(array, &dtype.arrow_type()).map_err(|e| {
        Error::invalid(
            "on-demand feature",
            format!(
                "closure {udf} answered {}, not {dtype:?}: {e}",
                array.data_type()
            ),
        )
    })
}

/// A parsed expression (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// A name.
    Name(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary(Op, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Func {
    Abs,
    Sqrt,
    Log,
    Exp,
    Pow,
    Min,
    Max,
    Coalesce,
    If,
}

impl Func {
    fn of(name: &str) -> Option<(Self, usize, usize)> {
        Some(match name {
            "abs" => (Self::Abs, 1, 1),
            "sqrt" => (Self::Sqrt, 1, 1),
            "log" => (Self::Log, 1, 1),
            "exp" => (Self::Exp, 1, 1),
            "pow" => (Self::Pow, 2, 2),
            "min" => (Self::Min, 1, usize::MAX),
            "max" => (Self::Max, 1, usize::MAX),
            "coalesce" => (Self::Coalesce, 1, usize::MAX),
            "if" => (Self::If, 3, 3),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>> {
    let bad = |msg: String| Error::invalid("expression", format!("{text:?}: {msg}"));
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || ((chars[i] == 'e' || chars[i] == 'E') && i > start)
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Token::Number(
                s.parse().map_err(|_| bad(format!("{s} is not a number")))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["<=", ">=", "==", "!="]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| {
                    ["+", "-", "*", "/", "<", ">"]
                        .into_iter()
                        .find(|o| o.starts_with(c))
                });
            match (op, c) {
                (Some(o), _) => {
                    out.push(Token::Op(o));
                    i += o.len();
                }
                (None, '(') => {
                    out.push(Token::Open);
                    i += 1;
                }
                (None, ')') => {
                    out.push(Token::Close);
                    i += 1;
                }
                (None, ',') => {
                    out.push(Token::Comma);
                    i += 1;
                }
                (None, other) => return Err(bad(format!("unexpected {other:?} at {i}"))),
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> Error {
        Error::invalid("expression", format!("{:?}: {msg}", self.text))
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn comparison(&mut self) -> Result<Expr> {
        let left = self.sum()?;
        let op = match self.peek() {
            Some(Token::Op("<")) => Op::Lt,
            Some(Token::Op("<=")) => Op::Le,
            Some(Token::Op(">")) => Op::Gt,
            Some(Token::Op(">=")) => Op::Ge,
            Some(Token::Op("==")) => Op::Eq,
            Some(Token::Op("!=")) => Op::Ne,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.sum()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn sum(&mut self) -> Result<Expr> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op("+")) => Op::Add,
                Some(Token::Op("-")) => Op::Sub,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op("*")) => Op::Mul,
                Some(Token::Op("/")) => Op::Div,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.peek() == Some(&Token::Op("-")) {
            self.at += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Open) => {
                let e = self.comparison()?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err(self.err("a ( is not closed")),
                }
            }
            Some(Token::Name(name)) if self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let (func, min, max) =
                    Func::of(&name).ok_or_else(|| self.err(&format!("unknown function {name}")))?;
                let mut args = Vec::new();
                if self.peek() != Some(&Token::Close) {
                    loop {
                        args.push(self.comparison()?);
                        match self.next() {
                            Some(Token::Comma) => {}
                            Some(Token::Close) => break,
                            _ => return Err(self.err(&format!("{name}( is not closed"))),
                        }
                    }
                } else {
                    self.at += 1;
                }
                if args.len() < min || args.len() > max {
                    return Err(self.err(&format!(
                        "{name} takes {} arguments, not {}",
                        if min == max {
                            min.to_string()
                        } else {
                            format!("at least {min}")
                        },
                        args.len()
                    )));
                }
                Ok(Expr::Call(func, args))
            }
            Some(Token::Name(name)) => Ok(Expr::Name(name)),
            Some(other) => Err(self.err(&format!("unexpected {other:?}"))),
            None => Err(self.err("ends too early")),
        }
    }
}

impl Expr {
    /// Parses an expression; a syntax error is [`Error::InvalidArgument`] quoting it.
    pub fn parse(text: &str) -> Result<Self> {
        let mut p = Parser {
            text,
            tokens: tokens(text)?,
            at: 0,
        };
        let e = p.comparison()?;
        if p.at < p.tokens.len() {
            return Err(p.err(&format!("unexpected {:?}", p.tokens[p.at])));
        }
        Ok(e)
    }

    /// The names it reads.
    pub fn names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Self::Number(_) => {}
            Self::Name(n) => {
                out.insert(n);
            }
            Self::Neg(e) => e.collect(out),
            Self::Binary(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Self::Call(_, args) => args.iter().for_each(|a| a.collect(out)),
        }
    }

    /// Its value with names read through `get` (`None`: null).
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Self::Number(n) => Some(*n),
            Self::Name(n) => get(n),
            Self::Neg(e) => e.eval(get).map(|v| -v),
            Self::Binary(op, a, b) => {
                let (a, b) = (a.eval(get)?, b.eval(get)?);
                Some(match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                    Op::Lt => flag(a < b),
                    Op::Le => flag(a <= b),
                    Op::Gt => flag(a > b),
                    Op::Ge => flag(a >= b),
                    Op::Eq => flag(a == b),
                    Op::Ne => flag(a != b),
                })
            }
            Self::Call(func, args) => match func {
                Func::Abs => args[0].eval(get).map(f64::abs),
                Func::Sqrt => args[0].eval(get).map(f64::sqrt),
                Func::Log => args[0].eval(get).map(f64::ln),
                Func::Exp => args[0].eval(get).map(f64::exp),
                Func::Pow => Some(args[0].eval(get)?.powf(args[1].eval(get)?)),
                Func::Min => args
                    .iter()
                    .map(|a| a.eval(get))
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.into_iter().fold(f64::INFINITY, f64::min)),
                Func::Max => args
                    .iter()
                    .map(|a| a.eval(get))
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.into_iter().fold(f64::NEG_INFINITY, f64::max)),
                Func::Coalesce => args.iter().find_map(|a| a.eval(get)),
                Func::If => {
                    if args[0].eval(get)? != 0.0 {
                        args[1].eval(get)
                    } else {
                        args[2].eval(get)
                    }
                }
            },
        }
    }
}

/// Adds the on-demand features of `resolution` to a joined batch (entity columns, request
/// fields among them, then the views' features named as `full_feature_names` says) and drops
/// the features fetched only as their inputs.
pub fn complete_batch(
    rows: RecordBatch,
    resolution: &crate::definitions::Resolution,
    full_feature_names: bool,
    udfs: &Udfs,
) -> Result<RecordBatch> {
    use crate::historical::output_name;
    if resolution.on_demand.is_empty() {
        return Ok(rows);
    }
    let mut fields: Vec<arrow::datatypes::FieldRef> =
        rows.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    for od in &resolution.on_demand {
        let column = |input: &Input| -> Result<ArrayRef> {
            let name = match input {
                Input::Request(n) => n.clone(),
                Input::Feature(v, f) => output_name(v, f, full_feature_names),
            };
            rows.column_by_name(&name).cloned().ok_or_else(|| {
                Error::invalid(
                    "on-demand feature",
                    match input {
                        Input::Request(n) => format!(
                            "on-demand feature view {} needs request field {n}: add it to the entity rows",
                            od.view.name
                        ),
                        Input::Feature(..) => format!("{name} is missing from the joined rows"),
                    },
                )
            })
        };
        for (name, array) in od.compute(rows.num_rows(), &column, udfs)? {
            let out = output_name(&od.view.name, &name, full_feature_names);
            if fields.iter().any(|f| *f.name() == out) {
                return Err(Error::invalid(
                    "features",
                    format!(
                        "result column {out} collides with another column; request full feature names"
                    ),
                ));
            }
            fields.push(Arc::new(arrow::datatypes::Field::new(
                out,
                array.data_type().clone(),
                true,
            )));
            columns.push(array);
        }
    }
    let hidden: Vec<String> = resolution
        .hidden
        .iter()
        .map(|(v, f)| output_name(v, f, full_feature_names))
        .collect();
    let (fields, columns): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .zip(columns)
        .filter(|(f, _)| !hidden.contains(f.name()))
        .unzip();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| Error::invalid("on-demand feature", e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn eval(text: &str, vars: &[(&str, Option<f64>)]) -> Option<f64> {
        let vars: BTreeMap<&str, Option<f64>> = vars.iter().copied().collect();
        Expr::parse(text)
            .unwrap()
            .eval(&|n| vars.get(n).copied().flatten())
    }

    #[test]
    fn expressions_follow_precedence_nulls_and_functions() {
        assert_eq!(eval("1 + 2 * 3", &[]), Some(7.0));
        assert_eq!(eval("(1 + 2) * 3", &[]), Some(9.0));
        assert_eq!(eval("-a - -2", &[("a", Some(5.0))]), Some(-3.0));
        assert_eq!(
            eval("a / max(b, 1)", &[("a", Some(6.0)), ("b", Some(0.5))]),
            Some(6.0)
        );
        assert_eq!(
            eval("a > 3 * b", &[("a", Some(7.0)), ("b", Some(2.0))]),
            Some(1.0)
        );
        assert_eq!(eval("a + b", &[("a", Some(1.0)), ("b", None)]), None);
        assert_eq!(
            eval("coalesce(b, a, 9)", &[("a", Some(1.0)), ("b", None)]),
            Some(1.0)
        );
        assert_eq!(
            eval("if(a >= 1, 10, b)", &[("a", Some(1.0)), ("b", None)]),
            Some(10.0)
        );
        assert_eq!(eval("pow(2, 10) + abs(-1) + sqrt(4)", &[]), Some(1027.0));
        assert_eq!(eval("1.5e3 + .5", &[]), Some(1500.5));
        assert_eq!(eval("log(exp(2))", &[]), Some(2.0));
        assert_eq!(eval("min(3, 1, 2) == 1", &[]), Some(1.0));
    }

    #[test]
    fn bad_expressions_are_named() {
        for (text, says) in [
            ("1 +", "ends too early"),
            ("(1 + 2", "not closed"),
            ("foo(1)", "unknown function foo"),
            ("pow(1)", "takes 2 arguments"),
            ("a $ b", "unexpected '$'"),
            ("1 2", "unexpected"),
        ] {
            let e = Expr::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let expr = Expr::parse("a * b__c + if(d, 1, a)").unwrap();
        let names: Vec<&str> = expr.names().into_iter().collect();
        assert_eq!(names, ["a", "b__c", "d"]);
    }
}
