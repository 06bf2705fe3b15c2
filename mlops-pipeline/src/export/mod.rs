//! Hand-over to real engines: the same DAG as an Argo Workflow (a DAG template whose tasks
//! `depend` on each other, each a container running the user's binary with `--step <name>`) or
//! as one Kubernetes `batch/v1` Job per step.
//!
//! Every pod runs one step with [`crate::Runner::only`] against the shared store, reading its
//! upstream outputs from the cache records the upstream pods wrote; `--run-token` ties the pods of
//! one pipeline run together (`{{workflow.uid}}` in Argo), so a pod never reads a record from an
//! earlier run. Parse a pod's arguments with [`StepArgs`].

mod argo;
mod bundle;

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mlops_core::{Error, Result};
use mlops_k8s::{ContainerSpec, MANAGED_BY, dns_label, to_checked_yaml};

pub use argo::{DagTask, DagTemplate, Template, Workflow, WorkflowSpec, parse_argo};
pub use bundle::{Bundle, BundleFile, KUSTOMIZATION, github_actions};
/// Environment values of the exported containers (plain, or Secret-backed for credentials).
pub use mlops_k8s::EnvValue;

use crate::pipeline::Pipeline;

/// Resources of one step's pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// CPU request and limit (`"2"`, `"500m"`).
    pub cpu: Option<String>,
    /// Memory request and limit (`"4Gi"`).
    pub memory: Option<String>,
    /// `nvidia.com/gpu`.
    pub gpus: u32,
}

/// How to run the pipeline's steps in pods.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PipelineExport {
    /// The image holding the binary.
    pub image: String,
    /// The binary and the arguments that select the pipeline, before `--step` (e.g.
    /// `["mlops", "pipeline", "run", "/etc/mlops/pipeline.yaml"]` or `["churn-pipeline"]`).
    pub command: Vec<String>,
    /// Namespace, when set.
    pub namespace: Option<String>,
    /// The shared store (`$MLOPS_STORE`): it must be reachable from the cluster.
    pub store_url: Option<String>,
    /// Extra environment variables (plain, or Kubernetes Secret references for credentials).
    pub env: BTreeMap<String, EnvValue>,
    /// Service account of the pods.
    pub service_account: Option<String>,
    /// Per-step resources, by step name.
    pub resources: BTreeMap<String, Resources>,
    /// The run token the Jobs share (Argo uses `{{workflow.uid}}`).
    pub run_token: String,
}

/// The arguments a step's pod receives after the command: `--step <name> --run-token <token>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepArgs {
    /// The step to run.
    pub step: String,
    /// The pipeline run it belongs to.
    pub run_token: Option<String>,
}

impl StepArgs {
    /// Finds `--step NAME` (or `--step=NAME`) and `--run-token T` in `args`; `None` without
    /// `--step` (run the whole pipeline).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Option<Self> {
        let mut step = None;
        let mut run_token = None;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if let Some(v) = a.strip_prefix("--step=") {
                step = Some(v.to_owned());
            } else if a == "--step" {
                step = it.next();
            } else if let Some(v) = a.strip_prefix("--run-token=") {
                run_token = Some(v.to_owned());
            } else if a == "--run-token" {
                run_token = it.next();
            }
        }
        step.map(|step| Self { step, run_token })
    }
}

/// A step or pipeline name as a DNS label (Argo template and task names, Job names).
fn dns(name: &str) -> String {
    dns_label(name)
}

impl PipelineExport {
    /// Runs `command` in `image`.
    pub fn new(image: impl Into<String>, command: Vec<String>) -> Self {
        Self {
            image: image.into(),
            command,
            namespace: None,
            store_url: None,
            env: BTreeMap::new(),
            service_account: None,
            resources: BTreeMap::new(),
            run_token: format!(
                "{:016x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            ),
        }
    }

    fn check(&self, pipeline: &Pipeline) -> Result<()> {
        pipeline.validate()?;
        if self.image.trim().is_empty() {
            return Err(Error::invalid("image", "empty"));
        }
        if self.command.is_empty() {
            return Err(Error::invalid(
                "command",
                "empty: name the binary that runs the pipeline",
            ));
        }
        if let Some(url) = &self.store_url {
            mlops_k8s::check_store_url(url)?;
        }
        let mut seen = BTreeMap::new();
        for s in pipeline.steps() {
            if dns(s.name()).is_empty() {
                return Err(Error::invalid(
                    "step name",
                    format!(
                        "{:?} has no letters or digits for a Kubernetes name",
                        s.name()
                    ),
                ));
            }
            if let Some(other) = seen.insert(dns(s.name()), s.name()) {
                return Err(Error::invalid(
                    "step name",
                    format!("{} and {other} are the same name in Kubernetes", s.name()),
                ));
            }
        }
        if let Some(unknown) = self.resources.keys().find(|k| pipeline.get(k).is_none()) {
            return Err(Error::invalid("resources", format!("no step {unknown:?}")));
        }
        Ok(())
    }

    fn container(&self, step: &str, token: &str) -> Result<Container> {
        let mut args: Vec<String> = self.command[1..].to_vec();
        args.extend([
            "--step".into(),
            step.to_owned(),
            "--run-token".into(),
            token.to_owned(),
        ]);
        let mut spec = ContainerSpec::new("main", self.image.clone())
            .command([self.command[0].clone()])
            .args(args);
        spec.store_url = self.store_url.clone();
        spec.env = self.env.clone();
        if let Some(r) = self.resources.get(step) {
            spec.cpu = r.cpu.clone();
            spec.memory = r.memory.clone();
            spec.gpus = r.gpus;
        }
        spec.build()
    }

    fn labels(pipeline: &Pipeline) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            ("mlops.dev/pipeline".to_owned(), dns(pipeline.name())),
        ])
    }

    /// The Argo Workflow: template `main` is a DAG with one task per step, each depending on
    /// its upstream steps' success; each step has a container template.
    pub fn argo(&self, pipeline: &Pipeline) -> Result<Workflow> {
        self.check(pipeline)?;
        let order = pipeline.validate()?;
        let tasks = order
            .iter()
            .map(|s| {
                let deps: Vec<String> = s
                    .dependencies()
                    .iter()
                    .map(|d| format!("{}.Succeeded", dns(d)))
                    .collect();
                DagTask {
                    name: dns(s.name()),
                    template: dns(s.name()),
                    depends: (!deps.is_empty()).then(|| deps.join(" && ")),
                }
            })
            .collect();
        let mut templates = vec![Template {
            name: "main".into(),
            dag: Some(DagTemplate { tasks }),
            container: None,
        }];
        for s in &order {
            templates.push(Template {
                name: dns(s.name()),
                dag: None,
                container: Some(self.container(s.name(), "{{workflow.uid}}")?),
            });
        }
        if templates.iter().filter(|t| t.name == "main").count() > 1 {
            return Err(Error::invalid(
                "step name",
                "\"main\" is the workflow's entrypoint; rename the step",
            ));
        }
        Ok(Workflow {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Workflow".into(),
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", dns(pipeline.name()))),
                namespace: self.namespace.clone(),
                labels: Some(Self::labels(pipeline)),
                ..ObjectMeta::default()
            },
            spec: WorkflowSpec {
                entrypoint: "main".into(),
                templates,
                service_account_name: self.service_account.clone(),
            },
        })
    }

    /// The Workflow as YAML, checked by parsing it back ([`parse_argo`]).
    pub fn argo_yaml(&self, pipeline: &Pipeline) -> Result<String> {
        let wf = self.argo(pipeline)?;
        let yaml = serde_yaml_ng::to_string(&wf).map_err(|e| Error::backend("serde_yaml", e))?;
        if parse_argo(&yaml)? != wf {
            return Err(Error::invalid(
                "manifest",
                "the YAML does not read back as written",
            ));
        }
        Ok(yaml)
    }

    /// One Job per step, in topological order, sharing [`run_token`](Self::run_token). Jobs
    /// have no dependencies of their own: a step whose upstream has not run in this pipeline
    /// run fails as unavailable and Kubernetes retries its pod (`backoffLimit` 6), so they can
    /// all be applied at once.
    pub fn jobs(&self, pipeline: &Pipeline) -> Result<Vec<Job>> {
        self.check(pipeline)?;
        let order = pipeline.validate()?;
        order
            .iter()
            .map(|s| {
                let mut labels = Self::labels(pipeline);
                labels.insert("mlops.dev/step".into(), dns(s.name()));
                let deps: Vec<&str> = s.dependencies().into_iter().collect();
                let annotations = BTreeMap::from([
                    ("mlops.dev/run-token".to_owned(), self.run_token.clone()),
                    ("mlops.dev/after".to_owned(), deps.join(",")),
                ]);
                let name = format!(
                    "{}-{}-{}",
                    dns(pipeline.name()),
                    dns(s.name()),
                    &self.run_token[..self.run_token.len().min(8)]
                );
                Ok(Job {
                    metadata: ObjectMeta {
                        name: Some(
                            name.chars()
                                .take(63)
                                .collect::<String>()
                                .trim_end_matches('-')
                                .to_owned(),
                        ),
                        namespace: self.namespace.clone(),
                        labels: Some(labels.clone()),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    spec: Some(JobSpec {
                        backoff_limit: Some(6),
                        template: PodTemplateSpec {
                            metadata: Some(ObjectMeta {
                                labels: Some(labels),
                                ..ObjectMeta::default()
                            }),
                            spec: Some(PodSpec {
                                containers: vec![self.container(s.name(), &self.run_token)?],
                                restart_policy: Some("Never".into()),
                                service_account_name: self.service_account.clone(),
                                ..PodSpec::default()
                            }),
                        },
                        ..JobSpec::default()
                    }),
                    status: None,
                })
            })
            .collect()
    }

    /// The Jobs as one multi-document YAML, each checked by parsing it back as a Job.
    pub fn jobs_yaml(&self, pipeline: &Pipeline) -> Result<String> {
        let mut out = String::new();
        for job in self.jobs(pipeline)? {
            let yaml = to_checked_yaml(&job)?;
            out.push_str("---\n");
            out.push_str(&yaml);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_args_parse() {
        let a = StepArgs::parse(
            ["run", "p.yaml", "--step", "train", "--run-token=abc"].map(String::from),
        );
        assert_eq!(
            a,
            Some(StepArgs {
                step: "train".into(),
                run_token: Some("abc".into())
            })
        );
        assert_eq!(StepArgs::parse(["run".to_owned()]), None);
    }
}
