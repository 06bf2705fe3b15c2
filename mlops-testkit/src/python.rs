//! The Python reference tools tests compare against (scikit-learn, shap, fairlearn, scipy,
//! mlflow, …): the interpreter named by `MLOPS_TEST_PYTHON` (`./scripts/test` creates
//! `.venv-peers` with every pinned peer and sets it) and a runner for reference scripts that
//! take a JSON case file and print JSON. Without the variable a test fails and says what to
//! install: a comparison never passes silently.

use std::path::Path;
use std::process::Command;

/// The environment variable naming the Python to run the references with.
pub const PYTHON_VAR: &str = "MLOPS_TEST_PYTHON";

/// The interpreter of [`PYTHON_VAR`]; panics naming `needs` (the packages the test uses) when
/// it is not set.
pub fn interpreter(needs: &str) -> String {
    std::env::var(PYTHON_VAR).unwrap_or_else(|_| {
        panic!(
            "{PYTHON_VAR} is not set. Run ./scripts/test (it creates .venv-peers with {needs}) \
             or point it at a Python that has them"
        )
    })
}

/// Runs `python script <case.json>` with `case` written to a temporary file and answers what
/// the script printed, as JSON; panics with the script's stderr when it fails.
pub fn run_json(script: &Path, case: &serde_json::Value, needs: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("case.json");
    std::fs::write(&input, serde_json::to_vec(case).expect("JSON")).expect("the case file");
    let out = Command::new(interpreter(needs))
        .arg(script)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
