//! Argo Workflows' `Workflow` (`argoproj.io/v1alpha1`), typed as far as the export writes it
//! (containers and metadata are the real Kubernetes types), and the checks Argo makes of a DAG.

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// An Argo `Workflow` (`argoproj.io/v1alpha1`): the fields this export writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `Workflow`.
    pub kind: String,
    /// Name (`generateName`), namespace, labels.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: WorkflowSpec,
}

/// `Workflow.spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// The template to start from.
    pub entrypoint: String,
    /// The DAG template and one container template per step.
    pub templates: Vec<Template>,
    /// The pods' service account (for the store's credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// A template: a DAG or a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Its name.
    pub name: String,
    /// The DAG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
    /// The container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// A DAG template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagTemplate {
    /// Its tasks.
    pub tasks: Vec<DagTask>,
}

/// A DAG task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagTask {
    /// Its name.
    pub name: String,
    /// The template it runs.
    pub template: String,
    /// Argo's enhanced `depends` expression (`prep.Succeeded && train.Succeeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends: Option<String>,
}

/// Parses an Argo Workflow and checks what Argo checks of a DAG: the entrypoint names a
/// template, every task names a template and depends only on tasks of its DAG.
pub fn parse_argo(yaml: &str) -> Result<Workflow> {
    let wf: Workflow = serde_yaml_ng::from_str(yaml)
        .map_err(|e| Error::invalid("manifest", "not a Workflow").with_source(e))?;
    if wf.api_version != "argoproj.io/v1alpha1" || wf.kind != "Workflow" {
        return Err(Error::invalid(
            "manifest",
            format!(
                "{}/{} is not argoproj.io/v1alpha1 Workflow",
                wf.api_version, wf.kind
            ),
        ));
    }
    let names: Vec<&str> = wf.spec.templates.iter().map(|t| t.name.as_str()).collect();
    if !names.contains(&wf.spec.entrypoint.as_str()) {
        return Err(Error::invalid(
            "manifest",
            format!("entrypoint {} is not a template", wf.spec.entrypoint),
        ));
    }
    for t in &wf.spec.templates {
        if t.dag.is_some() == t.container.is_some() {
            return Err(Error::invalid(
                "manifest",
                format!("template {} must be a dag or a container", t.name),
            ));
        }
        let Some(dag) = &t.dag else { continue };
        let tasks: Vec<&str> = dag.tasks.iter().map(|t| t.name.as_str()).collect();
        for task in &dag.tasks {
            if !names.contains(&task.template.as_str()) {
                return Err(Error::invalid(
                    "manifest",
                    format!("task {} runs unknown template {}", task.name, task.template),
                ));
            }
            for term in task.depends.iter().flat_map(|d| d.split("&&")) {
                let dep = term.trim().split('.').next().unwrap_or_default();
                if !tasks.contains(&dep) {
                    return Err(Error::invalid(
                        "manifest",
                        format!("task {} depends on unknown task {dep}", task.name),
                    ));
                }
            }
        }
    }
    Ok(wf)
}
