//! Helpers shared by the CLI tests that run `mlops` in a working directory.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `mlops args…` in `dir`, with the default store (`dir/mlops-data`).
pub fn mlops(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir)
        .env_remove("MLOPS_STORE")
        .args(args)
        .output()
        .unwrap()
}

/// Stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
