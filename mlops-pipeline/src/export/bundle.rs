//! A GitOps folder: the exported manifests plus a `kustomization.yaml` naming the ones
//! `kubectl apply -k` can apply, and a CI workflow that runs the pipeline.

use std::path::{Path, PathBuf};

use mlops_core::{Error, Result};

use crate::pipeline::Pipeline;

/// One file of a [`Bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Its file name in the folder.
    pub name: String,
    /// Its contents.
    pub contents: String,
    /// Whether the kustomization lists it (cluster resources that `kubectl apply -k` can
    /// create; not Argo Workflows, whose `generateName` kustomize cannot apply, nor CI files).
    pub kustomized: bool,
}

/// Manifests to write into a folder with a `kustomization.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    files: Vec<BundleFile>,
    namespace: Option<String>,
}

/// The name of the kustomization a [`Bundle`] writes.
pub const KUSTOMIZATION: &str = "kustomization.yaml";

impl Bundle {
    /// An empty bundle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the namespace the kustomization applies everything in.
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }

    fn add(&mut self, name: &str, contents: String, kustomized: bool) -> Result<()> {
        let plain = !name.is_empty()
            && name != KUSTOMIZATION
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(Error::invalid(
                "bundle file",
                format!("{name:?}: use a plain file name (letters, digits, '-', '_', '.')"),
            ));
        }
        if self.files.iter().any(|f| f.name == name) {
            return Err(Error::already_exists("bundle file", name));
        }
        self.files.push(BundleFile {
            name: name.to_owned(),
            contents,
            kustomized,
        });
        Ok(())
    }

    /// Adds a cluster resource that the kustomization lists.
    pub fn resource(&mut self, name: &str, yaml: String) -> Result<()> {
        self.add(name, yaml, true)
    }

    /// Adds a file kept beside the resources but not applied by kustomize (an Argo Workflow
    /// to `argo submit`, a CI workflow).
    pub fn file(&mut self, name: &str, contents: String) -> Result<()> {
        self.add(name, contents, false)
    }

    /// The files, in the order added.
    pub fn files(&self) -> &[BundleFile] {
        &self.files
    }

    /// The `kustomization.yaml` (`kustomize.config.k8s.io/v1beta1`), serialised.
    pub fn kustomization(&self) -> Result<String> {
        let resources: Vec<&str> = self
            .files
            .iter()
            .filter(|f| f.kustomized)
            .map(|f| f.name.as_str())
            .collect();
        let mut doc = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        if let Some(ns) = &self.namespace {
            doc["namespace"] = serde_json::json!(ns);
        }
        serde_yaml_ng::to_string(&doc).map_err(|e| Error::backend("serde_yaml", e))
    }

    /// Writes every file and the kustomization into `dir` (created when missing); each file
    /// goes to a temporary name first and is renamed into place, so a failure leaves no
    /// half-written manifest. Answers the paths written, the kustomization last.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("directory", "create", dir, e))?;
        let kustomization = self.kustomization()?;
        let all = self
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.contents.as_str()))
            .chain([(KUSTOMIZATION, kustomization.as_str())]);
        let mut written = Vec::new();
        for (name, contents) in all {
            let path = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, contents).map_err(|e| Error::io("file", "write", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| Error::io("file", "write", &path, e))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A GitHub Actions workflow for `pipeline`, read from `pipeline_file` in the repository: on
/// pushes to main, by hand and nightly, install the mlops binary, run the repository's policy
/// tests (`policies/`), then the pipeline against the production store (`store_url`, which
/// the runners must reach) with the policy gate, and keep the run report.
pub fn github_actions(pipeline: &Pipeline, pipeline_file: &str, store_url: &str) -> Result<String> {
    mlops_k8s::check_store_url(store_url)?;
    let pipeline = pipeline.name();
    let doc = serde_json::json!({
        "name": format!("mlops pipeline {pipeline}"),
        "on": {
            "push": {"branches": ["main"]},
            "workflow_dispatch": {},
            "schedule": [{"cron": "0 3 * * *"}],
        },
        "concurrency": {"group": format!("mlops-{pipeline}"), "cancel-in-progress": false},
        "jobs": {
            "pipeline": {
                "runs-on": "ubuntu-latest",
                "env": {"MLOPS_STORE": store_url},
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "dtolnay/rust-toolchain@stable"},
                    {"name": "Install mlops", "run": "cargo install --locked --git https://github.com/mlops-rs/mlops mlops-cli"},
                    {"name": "Policy tests", "run": "mlops policy test policies/"},
                    {"name": "Run the pipeline", "run": format!("mlops pipeline run {pipeline_file} --policy policies/ --json > pipeline-report.json")},
                    {"name": "Keep the report", "if": "always()", "uses": "actions/upload-artifact@v4", "with": {"name": "pipeline-report", "path": "pipeline-report.json"}},
                ],
            }
        },
    });
    serde_yaml_ng::to_string(&doc).map_err(|e| Error::backend("serde_yaml", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_list_only_applicable_resources_and_write_whole_files() {
        let mut b = Bundle::new().with_namespace(Some("ml".into()));
        b.resource("jobs.yaml", "kind: Job\n".into()).unwrap();
        b.file("workflow.yaml", "kind: Workflow\n".into()).unwrap();
        assert!(b.resource("jobs.yaml", String::new()).is_err());
        for bad in ["../x.yaml", "a/b.yaml", KUSTOMIZATION, "", ".hidden"] {
            assert!(b.file(bad, String::new()).is_err(), "{bad}");
        }
        let k: serde_json::Value = serde_yaml_ng::from_str(&b.kustomization().unwrap()).unwrap();
        assert_eq!(k["resources"], serde_json::json!(["jobs.yaml"]));
        assert_eq!(k["namespace"], "ml");

        let dir = std::env::temp_dir().join(format!("mlops-bundle-{}", std::process::id()));
        let written = b.write(&dir).unwrap();
        assert_eq!(written.len(), 3);
        assert_eq!(
            std::fs::read_to_string(dir.join("jobs.yaml")).unwrap(),
            "kind: Job\n"
        );
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_ci_workflow_runs_policy_tests_then_the_pipeline() {
        let p = Pipeline::new("churn");
        assert!(github_actions(&p, "pipeline.yaml", "./mlops-data").is_err());
        let y = github_actions(&p, "pipeline.yaml", "s3://ml/prod").unwrap();
        let doc: serde_json::Value = serde_yaml_ng::from_str(&y).unwrap();
        let steps = doc["jobs"]["pipeline"]["steps"].as_array().unwrap();
        let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
        assert!(runs[1].starts_with("mlops policy test"));
        assert!(runs[2].contains("pipeline run pipeline.yaml --policy"));
        assert_eq!(
            doc["jobs"]["pipeline"]["env"]["MLOPS_STORE"],
            "s3://ml/prod"
        );
    }
}
