//! `mlops policy`: evaluate Rego policies, run their tests, read and verify the decision log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use mlops::policy::log::{self, DEFAULT_LOG, DecisionLog, LogOptions};
use mlops::policy::{PolicyEngine, PolicyQuery};
use mlops::policy::{RegoPolicyBuilder, RegoPolicyEngine};
use mlops::{Error, RefName, Result, Store};

use crate::output::print_json;

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a decision: prints the decision as JSON; exit 0 allowed, 1 denied, 2 bad input
    ///
    /// The query is a package (decided by its allow and deny rules) or a rule
    /// (data.ml.deployment.deny: denied when it holds any message).
    ///
    /// Example: mlops policy eval --policy deploy.rego --rego-v0 --input input.json --query
    /// data.ml.deployment.deny --log
    Eval(EvalArgs),
    /// Run the `test_` rules of policies, as `opa test` does; exit 1 when any fails
    ///
    /// Example: mlops policy test policies/ --library
    Test {
        /// Policy files or folders (folders are read recursively, with data.json files)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Parse policies as Rego v0 (`deny[msg] { ... }`)
        #[arg(long)]
        rego_v0: bool,
        /// Also load the shipped library under data.mlops
        #[arg(long)]
        library: bool,
    },
    /// Check the decision log's hash chain; exit 1 naming the first bad entry
    ///
    /// Example: mlops policy verify-log --json
    VerifyLog {
        /// The log's ref in the store
        #[arg(long, default_value = DEFAULT_LOG)]
        log: String,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the decision log's newest entries
    ///
    /// Example: mlops policy log --limit 50 --json
    Log {
        /// The log's ref in the store
        #[arg(long, default_value = DEFAULT_LOG)]
        log: String,
        /// How many of the newest entries
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print entries as JSON lines
        #[arg(long)]
        json: bool,
    },
    /// Write the shipped policy library's Rego files into a folder, to read or adapt
    ///
    /// Example: mlops policy library --out policies/
    Library {
        /// Target folder (created)
        #[arg(long)]
        out: PathBuf,
    },
}

/// `mlops policy eval` arguments.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Policy files or folders (folders are read recursively, with data.json files)
    #[arg(long = "policy", value_name = "PATH")]
    policies: Vec<PathBuf>,
    /// Load the shipped library under data.mlops (approval, metrics, fairness, drift, lineage, datasets)
    #[arg(long)]
    library: bool,
    /// JSON data documents merged into data
    #[arg(long = "data", value_name = "FILE")]
    data: Vec<PathBuf>,
    /// The input document (a JSON file, or - for stdin)
    #[arg(long)]
    input: PathBuf,
    /// Decision path: data.ml.deployment, data.ml.deployment.deny, ml/deployment
    #[arg(long)]
    query: String,
    /// Parse policies as Rego v0 (`deny[msg] { ... }`), as most published OPA examples are
    #[arg(long)]
    rego_v0: bool,
    /// Record the decision in the store's decision log
    #[arg(long)]
    log: bool,
    /// Remove this JSON pointer (/input/...) from the logged input; repeatable
    #[arg(long = "mask", value_name = "POINTER", requires = "log")]
    mask: Vec<String>,
}

fn load(
    paths: &[PathBuf],
    data: &[PathBuf],
    rego_v0: bool,
    library: bool,
) -> Result<RegoPolicyEngine> {
    let mut b = RegoPolicyBuilder::new();
    if library {
        b = b.library()?;
    }
    b = b.rego_v0(rego_v0);
    for p in paths {
        if !p.exists() {
            return Err(Error::not_found("policy path", p.display()));
        }
        b = b.policy_path(p)?;
    }
    for d in data {
        b = b.data_file(d)?;
    }
    b.build()
}

fn read_input(path: &Path) -> Result<serde_json::Value> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("input", "read", "stdin", e))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| Error::io("input file", "read", path, e))?
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid("input", format!("{} is not JSON", path.display())).with_source(e)
    })
}

/// The engine `--policy PATH` names: the shipped library plus the policy file or folder.
pub fn engine_with_library(path: &std::path::Path) -> Result<RegoPolicyEngine> {
    if !path.exists() {
        return Err(Error::not_found("policy path", path.display()));
    }
    RegoPolicyEngine::builder()
        .library()?
        .policy_path(path)?
        .build()
}

/// Runs a policy command; `open` gives the store for the log commands. Ok(false) means the
/// command ran and the answer is "no" (denied, failing tests, a broken chain).
pub async fn run<F, Fut>(cmd: &PolicyCommand, open: F) -> Result<bool>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Arc<dyn Store>>>,
{
    match cmd {
        PolicyCommand::Eval(args) => {
            if args.policies.is_empty() && !args.library {
                return Err(Error::invalid(
                    "policy",
                    "name policies with --policy PATH (or load the shipped --library)",
                ));
            }
            let engine = load(&args.policies, &args.data, args.rego_v0, args.library)?;
            let query = PolicyQuery::new(&args.query, read_input(&args.input)?);
            let decision = engine.evaluate(&query)?;
            if args.log {
                let name = RefName::new(DEFAULT_LOG)?;
                let options = args
                    .mask
                    .iter()
                    .fold(LogOptions::default(), |o, m| o.erase(m.clone()));
                let log = DecisionLog::open(open().await?, &name, options).await?;
                log.record(&query, &decision)?;
                log.flush().await?;
            }
            print_json(&decision)?;
            Ok(decision.allowed)
        }
        PolicyCommand::Test {
            paths,
            rego_v0,
            library,
        } => {
            let engine = load(paths, &[], *rego_v0, *library)?;
            let results = engine.run_tests()?;
            if results.is_empty() {
                return Err(Error::invalid(
                    "policy test",
                    "no test_ rules found in the policies given",
                ));
            }
            let failed = results.iter().filter(|r| !r.passed).count();
            for r in &results {
                match &r.failure {
                    None => println!("PASS {}.{} ({})", r.package, r.name, r.file),
                    Some(why) => println!("FAIL {}.{} ({}): {why}", r.package, r.name, r.file),
                }
            }
            println!(
                "{}: {} passed, {failed} failed",
                if failed == 0 { "ok" } else { "FAILED" },
                results.len() - failed
            );
            Ok(failed == 0)
        }
        PolicyCommand::VerifyLog { log: name, json } => {
            let store = open().await?;
            let name = RefName::new(name.clone())?;
            let report = log::verify(store.as_ref(), &name).await?;
            if *json {
                print_json(&report)?;
            } else {
                match &report.first_bad {
                    None => println!(
                        "ok: {} entries in {} segments verify; head {} ({} entries)",
                        report.verified, report.segments, report.head.hash, report.head.entries
                    ),
                    Some(bad) => {
                        println!(
                            "{} entries verified before the first bad entry",
                            report.verified
                        );
                        println!("bad entry: {bad}");
                    }
                }
            }
            Ok(report.is_ok())
        }
        PolicyCommand::Log {
            log: name,
            limit,
            json,
        } => {
            let store = open().await?;
            let name = RefName::new(name.clone())?;
            let log = DecisionLog::open(store, &name, LogOptions::default()).await?;
            let entries = log.entries().await?;
            let start = entries.len().saturating_sub(*limit);
            for e in &entries[start..] {
                if *json {
                    let line =
                        serde_json::to_string(e).map_err(|e| Error::backend("serde_json", e))?;
                    println!("{line}");
                } else {
                    let verdict = if e.allowed { "allow" } else { "deny " };
                    println!(
                        "{:>6}  {}  {verdict}  {}  {}",
                        e.seq, e.timestamp, e.path, e.decision_id
                    );
                    for r in &e.reasons {
                        println!("        - {r}");
                    }
                }
            }
            Ok(true)
        }
        PolicyCommand::Library { out } => {
            for (label, text) in mlops::policy::library::MODULES {
                let path = out.join(label);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("directory", "create", parent, e))?;
                }
                std::fs::write(&path, text).map_err(|e| Error::io("file", "write", &path, e))?;
                println!("{}", path.display());
            }
            Ok(true)
        }
    }
}
