//! Reading a decision out of Rego values: deny messages, `allow`, and what is not a decision;
//! JSON to and from regorus values.

use mlops_core::{Error, Result};
use regorus::Value;

pub(super) fn not_a_decision(path: &str, value: &Value) -> Error {
    let kind = match value {
        Value::Null => "null",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        _ => "an object without allow or deny",
    };
    Error::invalid(
        "policy path",
        format!(
            "{path} is {kind}; a decision is a boolean, a set of deny messages, or an object with allow/deny"
        ),
    )
}

/// The reasons an `allow`/`deny` pair gives: every deny message, and a reason when `allow` is
/// present but not `true`.
pub(super) fn allow_deny_reasons(
    path: &str,
    allow: Option<&Value>,
    deny: Option<&Value>,
) -> Result<Vec<String>> {
    let mut reasons = match deny {
        Some(d) => deny_messages(d)?,
        None => Vec::new(),
    };
    if allow.is_some_and(|a| *a != Value::Bool(true)) {
        reasons.push(format!("{path}.allow is not true"));
    }
    Ok(reasons)
}

/// Messages of a deny rule's value: a set or array of messages (objects give their `msg`), or
/// `true`.
pub(super) fn deny_messages(deny: &Value) -> Result<Vec<String>> {
    let items: Vec<&Value> = match deny {
        Value::Undefined | Value::Bool(false) | Value::Null => Vec::new(),
        Value::Bool(true) => return Ok(vec!["denied".to_string()]),
        Value::Set(s) => s.iter().collect(),
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            Ok(match item {
                Value::String(s) => s.to_string(),
                Value::Object(o) => match o.get(&Value::from("msg")) {
                    Some(Value::String(s)) => s.to_string(),
                    _ => to_json(item)?.to_string(),
                },
                other => to_json(other)?.to_string(),
            })
        })
        .collect()
}

/// The input as a regorus value, converted by reference (`null` is "no input").
pub(super) fn to_value(input: &serde_json::Value) -> Result<Value> {
    if input.is_null() {
        return Ok(Value::Undefined);
    }
    <Value as serde::Deserialize>::deserialize(input).map_err(|e| {
        Error::invalid("policy input", "cannot convert it to a Rego value").with_source(e)
    })
}

pub(super) fn to_json(value: &Value) -> Result<serde_json::Value> {
    if *value == Value::Undefined {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(value).map_err(|e| Error::backend("regorus", e))
}
