#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Exported workflows: the Argo Workflow read back by Argo's own model types (hera's models,
//! generated from Argo's OpenAPI spec, in the test venv) with every field we wrote known to
//! them, and the Jobs read back as Kubernetes `Job`s.
//!
//! Needs a Python with hera named by `MLOPS_TEST_PYTHON` (`./scripts/test` provides it).

use std::collections::BTreeMap;
use std::io::Write;

use k8s_openapi::api::batch::v1::Job;
use mlops_pipeline::export::{Resources, parse_argo};
use mlops_pipeline::{FnStep, Outputs, Pipeline, PipelineExport, StepDef};

fn noop() -> FnStep {
    FnStep::new(|_| async { Ok(Outputs::new()) })
}

fn pipeline() -> Pipeline {
    Pipeline::new("churn_retrain")
        .step(StepDef::new("prep", noop()))
        .step(StepDef::new("train", noop()).input("data", "prep", "dataset"))
        .step(
            StepDef::new("evaluate", noop())
                .input("model", "train", "model")
                .input("data", "prep", "dataset"),
        )
        .step(StepDef::new("deploy_canary", noop()).after("evaluate"))
}

fn export() -> PipelineExport {
    let mut e = PipelineExport::new(
        "ghcr.io/acme/mlops:1.0",
        ["mlops", "pipeline", "run", "/etc/mlops/pipeline.yaml"]
            .map(String::from)
            .to_vec(),
    );
    e.store_url = Some("s3://ml/prod".into());
    e.service_account = Some("mlops".into());
    e.resources.insert(
        "train".into(),
        Resources {
            cpu: Some("4".into()),
            memory: Some("8Gi".into()),
            gpus: 1,
        },
    );
    e
}

/// Validates `yaml` with hera's `Workflow` model and returns the model's dump (aliases, no
/// nulls) next to the document as parsed, both as JSON.
fn hera_round_trip(yaml: &str) -> (serde_json::Value, serde_json::Value) {
    let python = mlops_testkit::python::interpreter("hera");
    let script = r#"
import json, sys, yaml
from hera.workflows.models import Workflow
doc = yaml.safe_load(sys.stdin.read())
wf = Workflow.model_validate(doc)
print(json.dumps({"doc": doc, "model": wf.model_dump(by_alias=True, exclude_none=True, mode="json")}))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hera rejected the workflow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["doc"].clone(), v["model"].clone())
}

#[test]
fn argo_workflow_is_a_real_argo_workflow() {
    let yaml = export().argo_yaml(&pipeline()).unwrap();
    let wf = parse_argo(&yaml).unwrap();
    assert_eq!(wf.metadata.generate_name.as_deref(), Some("churn-retrain-"));
    let dag = wf.spec.templates[0].dag.as_ref().unwrap();
    let depends: BTreeMap<&str, Option<&str>> = dag
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.depends.as_deref()))
        .collect();
    assert_eq!(depends["prep"], None);
    assert_eq!(depends["train"], Some("prep.Succeeded"));
    assert_eq!(
        depends["evaluate"],
        Some("prep.Succeeded && train.Succeeded")
    );
    assert_eq!(depends["deploy-canary"], Some("evaluate.Succeeded"));
    let train = wf
        .spec
        .templates
        .iter()
        .find(|t| t.name == "train")
        .unwrap();
    let c = train.container.as_ref().unwrap();
    assert_eq!(c.command.as_deref(), Some(&["mlops".to_owned()][..]));
    assert_eq!(
        c.args.as_deref().unwrap(),
        [
            "pipeline",
            "run",
            "/etc/mlops/pipeline.yaml",
            "--step",
            "train",
            "--run-token",
            "{{workflow.uid}}"
        ]
    );
    let deploy = wf
        .spec
        .templates
        .iter()
        .find(|t| t.name == "deploy-canary")
        .unwrap();
    assert!(
        deploy
            .container
            .as_ref()
            .unwrap()
            .args
            .as_ref()
            .unwrap()
            .contains(&"deploy_canary".to_owned())
    );

    // Argo's own types accept it, and know every field we wrote.
    let (doc, model) = hera_round_trip(&yaml);
    assert_eq!(
        model, doc,
        "fields hera's Workflow model does not know were dropped"
    );
}

#[test]
fn jobs_are_real_kubernetes_jobs_sharing_a_run_token() {
    let e = export();
    let yaml = e.jobs_yaml(&pipeline()).unwrap();
    let jobs: Vec<Job> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(jobs.len(), 4);
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j.metadata.labels.as_ref().unwrap()["mlops.dev/step"].as_str())
        .collect();
    assert_eq!(names, ["prep", "train", "evaluate", "deploy-canary"]);
    for job in &jobs {
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let args = pod.containers[0].args.as_ref().unwrap();
        assert_eq!(args[args.len() - 1], e.run_token);
        assert!(job.metadata.name.as_ref().unwrap().len() <= 63);
    }
    let train = &jobs[1]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let limits = train.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "1");
    assert_eq!(
        jobs[2].metadata.annotations.as_ref().unwrap()["mlops.dev/after"],
        "prep,train"
    );
}

#[test]
fn exports_refuse_what_a_cluster_cannot_run() {
    let mut e = export();
    e.store_url = Some("./mlops-data".into());
    assert!(
        e.argo(&pipeline())
            .unwrap_err()
            .to_string()
            .contains("not reachable from pods")
    );
    let bare = || {
        let mut e = export();
        e.resources.clear();
        e
    };
    let clash = Pipeline::new("p")
        .step(StepDef::new("a_b", noop()))
        .step(StepDef::new("a-b", noop()));
    assert!(
        export()
            .argo(&clash)
            .unwrap_err()
            .to_string()
            .contains("same name in Kubernetes")
    );
    let main = Pipeline::new("p").step(StepDef::new("main", noop()));
    let e = bare().argo(&main).unwrap_err();
    assert!(e.to_string().contains("entrypoint"), "{e}");
    let mut e = export();
    e.resources.insert("nope".into(), Resources::default());
    assert!(
        e.jobs(&pipeline())
            .unwrap_err()
            .to_string()
            .contains("no step \"nope\"")
    );
    assert!(
        parse_argo(
            "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {entrypoint: x, templates: []}\n"
        )
        .is_err()
    );
}
