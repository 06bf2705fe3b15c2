//! `mlops filter …` and `mlops uri …`: offline checks of MLflow filters and model URIs.

use clap::{Subcommand, ValueEnum};
use mlops::ModelUri;
use mlops::search::{Filter, Literal, OrderBy, SearchTarget};

#[derive(Debug, Subcommand)]
pub enum FilterCommand {
    /// Parse a filter (and order-by items) and print the clauses, or say what is wrong
    ///
    /// Example: mlops filter check "metrics.f1 >= 0.8 AND params.model = 'mlp'" --order-by "metrics.f1 DESC"
    Check {
        /// The filter, in MLflow's grammar
        filter: String,
        /// What the filter searches
        #[arg(long, value_enum, default_value_t = Target::Runs)]
        target: Target,
        /// An order-by item to check as well (repeatable)
        #[arg(long = "order-by")]
        order_by: Vec<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UriCommand {
    /// Parse a model URI and print its parts
    ///
    /// Example: mlops uri parse models:/churn@champion
    Parse {
        /// The URI
        uri: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Target {
    Runs,
    Experiments,
    Models,
    Versions,
}

impl From<Target> for SearchTarget {
    fn from(t: Target) -> Self {
        match t {
            Target::Runs => SearchTarget::Runs,
            Target::Experiments => SearchTarget::Experiments,
            Target::Models => SearchTarget::RegisteredModels,
            Target::Versions => SearchTarget::ModelVersions,
        }
    }
}

fn literal_json(l: &Literal) -> serde_json::Value {
    match l {
        Literal::Number(n) => serde_json::json!(n),
        Literal::Integer(n) => serde_json::json!(n),
        Literal::String(s) => serde_json::json!(s),
        Literal::List(items) => serde_json::json!(items),
        _ => serde_json::Value::Null,
    }
}

pub fn filter(cmd: &FilterCommand) -> mlops::Result<()> {
    let FilterCommand::Check {
        filter,
        target,
        order_by,
        json,
    } = cmd;
    let parsed = Filter::parse_for((*target).into(), filter)?;
    let order = OrderBy::parse_all((*target).into(), order_by)?;
    if *json {
        let clauses: Vec<_> = parsed
            .clauses()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "entity": c.entity.prefix(),
                    "key": c.key,
                    "op": c.op.as_str(),
                    "value": literal_json(&c.value),
                })
            })
            .collect();
        let order: Vec<_> = order
            .iter()
            .map(|o| serde_json::json!({"entity": o.entity.prefix(), "key": o.key, "ascending": o.ascending}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"clauses": clauses, "order_by": order})
        );
        return Ok(());
    }
    if parsed.is_empty() {
        println!("empty filter: matches everything");
    }
    for (i, c) in parsed.clauses().iter().enumerate() {
        println!(
            "{:>2}. {}.{} {} {}",
            i + 1,
            c.entity.prefix(),
            c.key,
            c.op.as_str(),
            literal_json(&c.value)
        );
    }
    for o in &order {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        println!("order by {}.{} {dir}", o.entity.prefix(), o.key);
    }
    Ok(())
}

pub fn uri(cmd: &UriCommand) -> mlops::Result<()> {
    let UriCommand::Parse { uri, json } = cmd;
    let parsed: ModelUri = uri.parse()?;
    let fields = match &parsed {
        ModelUri::Version { name, version } => {
            serde_json::json!({"kind": "version", "model": name.as_str(), "version": version.get()})
        }
        ModelUri::Alias { name, alias } => {
            serde_json::json!({"kind": "alias", "model": name.as_str(), "alias": alias.as_str()})
        }
        ModelUri::Stage { name, stage } => {
            serde_json::json!({"kind": "stage", "model": name.as_str(), "stage": stage.as_str()})
        }
        ModelUri::Latest { name } => serde_json::json!({"kind": "latest", "model": name.as_str()}),
        ModelUri::Run { run_id, path } => serde_json::json!({
            "kind": "run",
            "run_id": run_id.as_str(),
            "path": path.as_ref().map(|p| p.as_str()),
        }),
    };
    if *json {
        println!("{fields}");
    } else if let Some(map) = fields.as_object() {
        for (k, v) in map {
            println!(
                "{k}: {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            );
        }
    }
    Ok(())
}
