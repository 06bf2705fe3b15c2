//! Recursion is refused at load, as OPA refuses it at compile time.
//!
//! regorus detects a rule that depends on itself while evaluating it, but a function that
//! calls itself (`f(x) := y if { y := f(x) }`) recurses until the thread's stack overflows,
//! which aborts the whole process — a `policy eval`, a `policy test`, or a server asking its
//! deploy gate. So after parsing, the rules and functions of every module form a graph (an
//! edge wherever a body, head, assignment or `with` names another rule or function of a loaded
//! package, by local name, import alias or `data.` path), and a cycle in it is
//! [`Error::InvalidArgument`] naming the rules and where the first is defined.

use std::collections::{BTreeMap, BTreeSet};

use mlops_core::{Error, Result};
use regorus::Value;
use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleAssign, RuleHead, Span};

/// A rule or function: where it is first defined (its `data.`-prefixed path is its key).
#[derive(Debug, Clone)]
struct Node {
    at: String,
}

/// The dotted path an expression names (`x`, `data.a.b`, `lib.f`), when it is a plain reference.
fn path_of(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Var { value, .. } => Some(vec![name(value)?]),
        Expr::RefDot { refr, field, .. } => {
            let mut p = path_of(refr)?;
            p.push(name(&field.1)?);
            Some(p)
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut p = path_of(refr)?;
            // `data.a["b"]` names `data.a.b`; a computed index ends the known path.
            if let Expr::String { value, .. } = index.as_ref() {
                p.push(name(value)?);
            }
            Some(p)
        }
        _ => None,
    }
}

fn name(value: &Value) -> Option<String> {
    value.as_string().ok().map(|s| s.to_string())
}

fn at(span: &Span) -> String {
    format!("{}:{}:{}", span.source.file(), span.line, span.col)
}

/// The names a rule binds locally (function arguments, `:=` and `some` variables, `every`
/// variables): a reference by one of these names is not a reference to a rule.
#[derive(Default)]
struct Locals(BTreeSet<String>);

impl Locals {
    fn pattern(&mut self, expr: &Expr) {
        match expr {
            Expr::Var { value, .. } => {
                if let Some(n) = name(value) {
                    self.0.insert(n);
                }
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                items.iter().for_each(|i| self.pattern(i));
            }
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| self.pattern(v)),
            _ => {}
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { vars, .. } => {
                    for v in vars {
                        self.0.insert(v.text().to_string());
                    }
                }
                Literal::SomeIn { key, value, .. } => {
                    if let Some(k) = key {
                        self.pattern(k);
                    }
                    self.pattern(value);
                }
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
                Literal::Every {
                    key, value, query, ..
                } => {
                    if let Some(k) = key {
                        self.0.insert(k.text().to_string());
                    }
                    self.0.insert(value.text().to_string());
                    self.query(query);
                }
            }
        }
    }

    /// `x := …` anywhere in a body binds `x`; comprehensions bind in their own queries.
    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::AssignExpr { lhs, .. } => self.pattern(lhs),
            Expr::ArrayCompr { query, .. }
            | Expr::SetCompr { query, .. }
            | Expr::ObjectCompr { query, .. } => self.query(query),
            _ => {}
        }
    }
}

/// Collects every path an expression tree refers to.
struct Refs<'a> {
    out: &'a mut Vec<Vec<String>>,
}

impl Refs<'_> {
    fn expr(&mut self, expr: &Ref<Expr>) {
        // Iterative over the tree: a policy's own nesting must not overflow the checker's stack.
        let mut stack: Vec<&Ref<Expr>> = vec![expr];
        while let Some(e) = stack.pop() {
            if let Some(p) = path_of(e) {
                self.out.push(p);
            }
            match e.as_ref() {
                Expr::Array { items, .. } | Expr::Set { items, .. } => stack.extend(items),
                Expr::Object { fields, .. } => {
                    for (_, k, v) in fields {
                        stack.push(k);
                        stack.push(v);
                    }
                }
                Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                    stack.push(term);
                    self.query(query);
                }
                Expr::ObjectCompr {
                    key, value, query, ..
                } => {
                    stack.push(key);
                    stack.push(value);
                    self.query(query);
                }
                Expr::Call { fcn, params, .. } => {
                    stack.push(fcn);
                    stack.extend(params);
                }
                Expr::UnaryExpr { expr, .. } => stack.push(expr),
                Expr::RefDot { refr, .. } => stack.push(refr),
                Expr::RefBrack { refr, index, .. } => {
                    stack.push(refr);
                    stack.push(index);
                }
                Expr::BinExpr { lhs, rhs, .. }
                | Expr::BoolExpr { lhs, rhs, .. }
                | Expr::ArithExpr { lhs, rhs, .. }
                | Expr::AssignExpr { lhs, rhs, .. } => {
                    stack.push(lhs);
                    stack.push(rhs);
                }
                Expr::Membership {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    stack.extend(key);
                    stack.push(value);
                    stack.push(collection);
                }
                _ => {}
            }
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    if let Some(k) = key {
                        self.expr(k);
                    }
                    self.expr(value);
                    self.expr(collection);
                }
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
                Literal::Every { domain, query, .. } => {
                    self.expr(domain);
                    self.query(query);
                }
            }
            for w in &stmt.with_mods {
                self.expr(&w.r#as);
            }
        }
    }

    fn assign(&mut self, assign: &Option<RuleAssign>) {
        if let Some(a) = assign {
            self.expr(&a.value);
        }
    }
}

/// The package's `data.`-prefixed path.
fn package_path(module: &Module) -> Option<String> {
    let p = path_of(&module.package.refr)?;
    Some(if p.first().is_some_and(|s| s == "data") {
        p.join(".")
    } else {
        format!("data.{}", p.join("."))
    })
}

/// A rule's name within its package (the first segment of its head) and its head's reference.
fn rule_name(rule: &Rule) -> Option<String> {
    let refr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    path_of(refr)?.into_iter().next()
}

/// Refuses recursion among the rules and functions of `modules`.
pub(super) fn check(modules: &[Ref<Module>]) -> Result<()> {
    // Every rule of every package, first definition first.
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for m in modules {
        let Some(package) = package_path(m) else {
            continue;
        };
        for rule in &m.policy {
            if let Some(n) = rule_name(rule) {
                let path = format!("{package}.{n}");
                nodes.entry(path).or_insert(Node {
                    at: at(rule.span()),
                });
            }
        }
    }
    // Edges: what each rule's definitions refer to, resolved to rules.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in modules {
        let Some(package) = package_path(m) else {
            continue;
        };
        let aliases: BTreeMap<String, Vec<String>> = m
            .imports
            .iter()
            .filter_map(|i| {
                let full = path_of(&i.refr)?;
                let alias = match &i.r#as {
                    Some(a) => a.text().to_string(),
                    None => full.last()?.clone(),
                };
                Some((alias, full))
            })
            .collect();
        for rule in &m.policy {
            let Some(n) = rule_name(rule) else { continue };
            let mut refs = Vec::new();
            let mut locals = Locals::default();
            {
                let mut r = Refs { out: &mut refs };
                match rule.as_ref() {
                    Rule::Spec { head, bodies, .. } => {
                        match head {
                            RuleHead::Compr { assign, .. } => r.assign(assign),
                            RuleHead::Set { key, .. } => {
                                if let Some(k) = key {
                                    r.expr(k);
                                }
                            }
                            RuleHead::Func { args, assign, .. } => {
                                args.iter().for_each(|a| locals.pattern(a));
                                r.assign(assign);
                            }
                        }
                        for b in bodies {
                            r.assign(&b.assign);
                            r.query(&b.query);
                            locals.query(&b.query);
                        }
                    }
                    Rule::Default { value, .. } => r.expr(value),
                }
            }
            let from = format!("{package}.{n}");
            for path in refs {
                let Some(first) = path.first() else { continue };
                let full: Vec<String> = if first == "data" {
                    path
                } else if let Some(target) = aliases.get(first) {
                    target
                        .iter()
                        .cloned()
                        .chain(path[1..].iter().cloned())
                        .collect()
                } else if locals.0.contains(first) || first == "input" {
                    continue;
                } else {
                    package
                        .split('.')
                        .map(str::to_owned)
                        .chain(path.iter().cloned())
                        .collect()
                };
                // The longest prefix of the reference that names a rule.
                let target = (1..=full.len())
                    .rev()
                    .map(|k| full[..k].join("."))
                    .find(|p| nodes.contains_key(p));
                if let Some(t) = target {
                    edges.entry(from.clone()).or_default().insert(t);
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&nodes, &edges) {
        let first = &nodes[&cycle[0]];
        let described = if cycle.len() == 2 {
            format!("{} calls itself", cycle[0])
        } else {
            format!(
                "{} depends on itself through {}",
                cycle[0],
                cycle.join(" -> ")
            )
        };
        return Err(Error::invalid(
            "policy",
            format!(
                "{}: recursion: {described}; Rego rules and functions may not be recursive",
                first.at
            ),
        ));
    }
    Ok(())
}

/// A cycle (its nodes, the first repeated at the end), found by an iterative depth-first walk.
fn find_cycle(
    nodes: &BTreeMap<String, Node>,
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let none = BTreeSet::new();
    for start in nodes.keys() {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        // (node, its successors still to visit)
        let mut path: Vec<(&str, Vec<&str>)> = vec![(
            start.as_str(),
            edges
                .get(start)
                .unwrap_or(&none)
                .iter()
                .map(String::as_str)
                .collect(),
        )];
        marks.insert(start.as_str(), Mark::Open);
        while let Some(top) = path.last_mut() {
            let node = top.0;
            match top.1.pop() {
                Some(next) => match marks.get(next) {
                    Some(Mark::Open) => {
                        let from = path.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(next.to_owned());
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(next, Mark::Open);
                        let succ = edges
                            .get(next)
                            .unwrap_or(&none)
                            .iter()
                            .map(String::as_str)
                            .collect();
                        path.push((next, succ));
                    }
                },
                None => {
                    marks.insert(node, Mark::Done);
                    path.pop();
                }
            }
        }
    }
    None
}
