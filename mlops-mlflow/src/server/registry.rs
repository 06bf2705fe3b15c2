//! The model-registry half of MLflow's REST API (`model_registry.proto`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::{delete, get, patch, post};
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, RegistryExt, RegistryObject, SearchRegistryOptions,
    Stage, TransitionOptions,
};
use mlops_core::tracking::Tag;
use mlops_core::uri::ModelUri;
use mlops_core::{Alias, ModelName, TagKey, Version};
use serde::Deserialize;
use serde_json::{Value, json};

use super::entities::{model_version_to_json, registered_model_to_json, split_version_tags};
use super::logged_models;
use super::params::{Params, opt_bool, opt_string, opt_usize, string, strings};
use super::{ApiError, ApiResult, AppState, MlflowServer, ok};
use crate::json::JTag;

type Answer = ApiResult<Json<Value>>;

pub(super) fn routes() -> Router<Arc<MlflowServer>> {
    Router::new()
        .route("/registered-models/create", post(create_model))
        .route("/registered-models/get", get(get_model))
        .route("/registered-models/update", patch(update_model))
        .route("/registered-models/rename", post(rename_model))
        .route("/registered-models/delete", delete(delete_model))
        .route("/registered-models/search", get(search_models))
        .route(
            "/registered-models/get-latest-versions",
            get(latest_versions).post(latest_versions),
        )
        .route("/registered-models/set-tag", post(set_model_tag))
        .route("/registered-models/delete-tag", delete(delete_model_tag))
        .route(
            "/registered-models/alias",
            post(set_alias).delete(delete_alias).get(get_by_alias),
        )
        .route("/model-versions/create", post(create_version))
        .route("/model-versions/get", get(get_version))
        .route("/model-versions/update", patch(update_version))
        .route("/model-versions/delete", delete(delete_version))
        .route("/model-versions/search", get(search_versions))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/set-tag", post(set_version_tag))
        .route("/model-versions/delete-tag", delete(delete_version_tag))
}

fn version(v: &str) -> ApiResult<Version> {
    Ok(v.trim().parse()?)
}

#[derive(Deserialize)]
struct CreateModel {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(default)]
    tags: Vec<JTag>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
}

async fn create_model(st: AppState, p: Params) -> Answer {
    let r: CreateModel = p.read()?;
    let name: ModelName = r.name.parse()?;
    let mut options =
        CreateModelOptions::default().with_description(r.description.unwrap_or_default());
    for t in r.tags {
        options = options.with_tag(Tag::new(t.key.parse()?, t.value.unwrap_or_default())?);
    }
    let model = st.registry.create_registered_model(&name, options).await?;
    ok(json!({"registered_model": registered_model_to_json(&model)}))
}

#[derive(Deserialize)]
struct ModelRef {
    #[serde(deserialize_with = "string")]
    name: String,
}

async fn get_model(st: AppState, p: Params) -> Answer {
    let r: ModelRef = p.read()?;
    let model = st.registry.get_registered_model(&r.name.parse()?).await?;
    ok(json!({"registered_model": registered_model_to_json(&model)}))
}

#[derive(Deserialize)]
struct Describe {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(default, deserialize_with = "opt_string")]
    version: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
}

async fn update_model(st: AppState, p: Params) -> Answer {
    let r: Describe = p.read()?;
    let model = st
        .registry
        .update_registered_model(&r.name.parse()?, &r.description.unwrap_or_default())
        .await?;
    ok(json!({"registered_model": registered_model_to_json(&model)}))
}

async fn rename_model(st: AppState, p: Params) -> Answer {
    let r: ModelRef = p.read()?;
    st.registry.get_registered_model(&r.name.parse()?).await?;
    Err(ApiError::not_implemented(
        "renaming a registered model is not supported: model names are permanent in mlops (versions' lineage and the decision log name them)",
    ))
}

async fn delete_model(st: AppState, p: Params) -> Answer {
    let r: ModelRef = p.read()?;
    st.registry
        .delete_registered_model(&r.name.parse()?)
        .await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
    #[serde(default, deserialize_with = "strings")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

/// The most a registry page holds here. MLflow's client asks for 10,000 model versions a page
/// (its server's default); a page holds fewer and a `next_page_token`, as paging allows.
const MAX_PAGE: usize = 1000;

/// The tag MLflow 3 marks prompts (registered models holding prompt templates) with.
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Whether a search is for prompts or for models, as MLflow's client says it: it appends
/// ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search (and `= 'true'` to prompt
/// searches), meaning "models without that tag" — which `!=` does not mean for a missing tag, so
/// MLflow's server special-cases the clause. So does this one: the clause is taken out and
/// prompts are excluded from the answer (or, for `= 'true'`, only prompts are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompts {
    Exclude,
    Only,
}

fn split_prompt_clause(filter: Option<String>) -> (Option<String>, Prompts) {
    let Some(f) = filter else {
        return (None, Prompts::Exclude);
    };
    for (clause, prompts) in [
        (format!("tag.`{PROMPT_TAG}` != 'true'"), Prompts::Exclude),
        (format!("tag.`{PROMPT_TAG}` = 'true'"), Prompts::Only),
    ] {
        if f.trim() == clause {
            return (None, prompts);
        }
        if let Some(rest) = f.strip_suffix(&format!(" AND {clause}")) {
            return (Some(rest.to_owned()), prompts);
        }
    }
    (Some(f), Prompts::Exclude)
}

fn is_prompt(tags: &std::collections::BTreeMap<TagKey, String>) -> bool {
    tags.get(PROMPT_TAG)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn keep(prompts: Prompts, tags: &std::collections::BTreeMap<TagKey, String>) -> bool {
    (prompts == Prompts::Only) == is_prompt(tags)
}

impl Search {
    fn options(self) -> (SearchRegistryOptions, Prompts) {
        let mut o = SearchRegistryOptions::default();
        let (filter, prompts) = split_prompt_clause(self.filter);
        o.filter = filter.filter(|f| !f.trim().is_empty());
        o.max_results = self.max_results.map(|n| n.min(MAX_PAGE));
        o.order_by = self.order_by;
        o.page_token = self.page_token.filter(|t| !t.is_empty());
        (o, prompts)
    }
}

fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let (Some(t), Some(o)) = (token, v.as_object_mut()) {
        o.insert("next_page_token".into(), t.into());
    }
    v
}

async fn search_models(st: AppState, p: Params) -> Answer {
    let r: Search = p.read()?;
    let (options, prompts) = r.options();
    let page = st.registry.search_registered_models(options).await?;
    let models: Vec<Value> = page
        .items
        .iter()
        .filter(|m| keep(prompts, &m.tags))
        .map(registered_model_to_json)
        .collect();
    ok(with_token(
        json!({"registered_models": models}),
        page.next_page_token,
    ))
}

#[derive(Deserialize)]
struct Latest {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(default, deserialize_with = "strings")]
    stages: Vec<String>,
}

/// For each requested stage (every stage when none is named), the highest live version in it.
async fn latest_versions(st: AppState, p: Params) -> Answer {
    let r: Latest = p.read()?;
    let name: ModelName = r.name.parse()?;
    let stages: Vec<Stage> = if r.stages.is_empty() {
        vec![
            Stage::None,
            Stage::Staging,
            Stage::Production,
            Stage::Archived,
        ]
    } else {
        r.stages
            .iter()
            .map(|s| s.parse())
            .collect::<mlops_core::Result<_>>()?
    };
    let versions = st.registry.list_versions(&name).await?;
    let mut out = Vec::new();
    for stage in stages {
        if let Some(v) = versions.iter().rev().find(|v| v.current_stage == stage) {
            out.push(model_version_to_json(v));
        }
    }
    ok(json!({"model_versions": out}))
}

#[derive(Deserialize)]
struct TagRequest {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(default, deserialize_with = "opt_string")]
    version: Option<String>,
    #[serde(deserialize_with = "string")]
    key: String,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

impl TagRequest {
    fn target(&self, versioned: bool) -> ApiResult<RegistryObject> {
        let name: ModelName = self.name.parse()?;
        if !versioned {
            return Ok(RegistryObject::Model(name));
        }
        let v = self
            .version
            .as_deref()
            .ok_or_else(|| ApiError::invalid("missing value for required parameter 'version'"))?;
        Ok(RegistryObject::Version(name, version(v)?))
    }
}

async fn set_model_tag(st: AppState, p: Params) -> Answer {
    let r: TagRequest = p.read()?;
    let tag = Tag::new(r.key.parse()?, r.value.clone().unwrap_or_default())?;
    st.registry.set_tag(&r.target(false)?, tag).await?;
    ok(json!({}))
}

async fn delete_model_tag(st: AppState, p: Params) -> Answer {
    let r: TagRequest = p.read()?;
    let key: TagKey = r.key.parse()?;
    st.registry.delete_tag(&r.target(false)?, &key).await?;
    ok(json!({}))
}

async fn set_version_tag(st: AppState, p: Params) -> Answer {
    let r: TagRequest = p.read()?;
    let tag = Tag::new(r.key.parse()?, r.value.clone().unwrap_or_default())?;
    st.registry.set_tag(&r.target(true)?, tag).await?;
    ok(json!({}))
}

async fn delete_version_tag(st: AppState, p: Params) -> Answer {
    let r: TagRequest = p.read()?;
    let key: TagKey = r.key.parse()?;
    st.registry.delete_tag(&r.target(true)?, &key).await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct AliasRequest {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    alias: String,
    #[serde(default, deserialize_with = "opt_string")]
    version: Option<String>,
}

async fn set_alias(st: AppState, p: Params) -> Answer {
    let r: AliasRequest = p.read()?;
    let v = r
        .version
        .as_deref()
        .ok_or_else(|| ApiError::invalid("missing value for required parameter 'version'"))?;
    let alias: Alias = r.alias.parse()?;
    st.registry
        .set_alias(&r.name.parse()?, &alias, version(v)?)
        .await?;
    ok(json!({}))
}

async fn delete_alias(st: AppState, p: Params) -> Answer {
    let r: AliasRequest = p.read()?;
    let alias: Alias = r.alias.parse()?;
    st.registry.delete_alias(&r.name.parse()?, &alias).await?;
    ok(json!({}))
}

async fn get_by_alias(st: AppState, p: Params) -> Answer {
    let r: AliasRequest = p.read()?;
    let alias: Alias = r.alias.parse()?;
    let v = st
        .registry
        .get_version_by_alias(&r.name.parse()?, &alias)
        .await?;
    ok(json!({"model_version": model_version_to_json(&v)}))
}

#[derive(Deserialize)]
struct CreateVersion {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    source: String,
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<JTag>,
    #[serde(default, deserialize_with = "opt_string")]
    run_link: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
    /// MLflow 3: the LoggedModel this version promotes (its source is then `models:/<model_id>`).
    #[serde(default, deserialize_with = "opt_string")]
    model_id: Option<String>,
}

async fn create_version(st: AppState, p: Params) -> Answer {
    let r: CreateVersion = p.read()?;
    let name: ModelName = r.name.parse()?;
    let (tags, lineage, signature) = split_version_tags(&r.name, r.tags)?;
    let named = logged_models::model_id_of_source(&r.source);
    let model_id = match (r.model_id.filter(|m| !m.is_empty()), named) {
        // As MLflow's `_validate_source_model`: the source must be the model it names.
        (Some(given), Some(named)) if given != named => {
            return Err(ApiError::invalid(format!(
                "invalid model version source {:?}: the model_id request parameter is {given:?}",
                r.source
            )));
        }
        (given, named) => given.or_else(|| named.map(str::to_owned)),
    };
    let mut run_id = r.run_id.filter(|r| !r.is_empty());
    if let Some(model_id) = &model_id {
        // As MLflow's registry does: the version's run is the LoggedModel's source run unless
        // the request names one, and a LoggedModel that does not exist is refused.
        let (source_run, _) = logged_models::registration_facts(&st, model_id).await?;
        run_id = run_id.or(source_run);
    }
    let mut options = CreateVersionOptions::new(r.source)
        .with_lineage(lineage)
        .with_description(r.description.unwrap_or_default());
    if let Some(run) = run_id {
        options = options.with_run_id(run.parse()?);
    }
    if let Some(sig) = signature {
        options = options.with_signature(sig);
    }
    for t in tags {
        options = options.with_tag(t);
    }
    options.run_link = r.run_link.filter(|l| !l.is_empty());
    let v = st.registry.create_model_version(&name, options).await?;
    ok(json!({"model_version": model_version_to_json(&v)}))
}

async fn get_version(st: AppState, p: Params) -> Answer {
    let r: Describe = p.read()?;
    let v = required_version(r.version.as_deref())?;
    let mv = st.registry.get_model_version(&r.name.parse()?, v).await?;
    ok(json!({"model_version": model_version_to_json(&mv)}))
}

fn required_version(v: Option<&str>) -> ApiResult<Version> {
    version(v.ok_or_else(|| ApiError::invalid("missing value for required parameter 'version'"))?)
}

async fn update_version(st: AppState, p: Params) -> Answer {
    let r: Describe = p.read()?;
    let v = required_version(r.version.as_deref())?;
    let mv = st
        .registry
        .update_model_version(&r.name.parse()?, v, &r.description.unwrap_or_default())
        .await?;
    ok(json!({"model_version": model_version_to_json(&mv)}))
}

async fn delete_version(st: AppState, p: Params) -> Answer {
    let r: Describe = p.read()?;
    let v = required_version(r.version.as_deref())?;
    st.registry
        .delete_model_version(&r.name.parse()?, v)
        .await?;
    ok(json!({}))
}

async fn search_versions(st: AppState, p: Params) -> Answer {
    let r: Search = p.read()?;
    let (options, prompts) = r.options();
    let page = st.registry.search_model_versions(options).await?;
    let versions: Vec<Value> = page
        .items
        .iter()
        .filter(|v| keep(prompts, &v.tags))
        .map(model_version_to_json)
        .collect();
    ok(with_token(
        json!({"model_versions": versions}),
        page.next_page_token,
    ))
}

/// Where a version's files are, for a client to download: a `runs:/<id>/<path>` source becomes
/// that run's proxied artifact path, a `models:/<model_id>` source the LoggedModel's artifact
/// location, another `models:/` source the download URI of the version it names; any other
/// source is answered as it is.
async fn download_uri(st: AppState, p: Params) -> Answer {
    let r: Describe = p.read()?;
    let v = required_version(r.version.as_deref())?;
    let mut mv = st.registry.get_model_version(&r.name.parse()?, v).await?;
    // `models:/` sources may chain; stop at a bounded depth rather than loop.
    for _ in 0..8 {
        if let Some(model_id) = logged_models::model_id_of_source(&mv.source) {
            let (_, uri) = logged_models::registration_facts(&st, model_id).await?;
            return ok(json!({"artifact_uri": uri}));
        }
        match mv.source.parse::<ModelUri>() {
            Ok(ModelUri::Run { run_id, path }) => {
                let run = st.tracker.get_run(&run_id).await?;
                let root = super::tracking::run_artifact_uri(&run.info);
                let uri = match path {
                    Some(p) => format!("{root}/{p}"),
                    None => root,
                };
                return ok(json!({"artifact_uri": uri}));
            }
            Ok(uri) if mv.source.starts_with("models:/") => {
                mv = st.registry.resolve(&uri).await?;
            }
            _ => return ok(json!({"artifact_uri": mv.source})),
        }
    }
    Err(ApiError::invalid(format!(
        "the source of {} version {v} names models:/ URIs more than 8 deep",
        r.name
    )))
}

#[cfg(test)]
mod tests {
    use super::{Prompts, split_prompt_clause};

    #[test]
    fn the_clients_prompt_clause_is_split_off() {
        let ex = "tag.`mlflow.prompt.is_prompt` != 'true'";
        assert_eq!(
            split_prompt_clause(Some(ex.into())),
            (None, Prompts::Exclude)
        );
        assert_eq!(
            split_prompt_clause(Some(format!("name LIKE 'a%' AND {ex}"))),
            (Some("name LIKE 'a%'".into()), Prompts::Exclude)
        );
        assert_eq!(
            split_prompt_clause(Some("tag.`mlflow.prompt.is_prompt` = 'true'".into())),
            (None, Prompts::Only)
        );
        assert_eq!(split_prompt_clause(None), (None, Prompts::Exclude));
        assert_eq!(
            split_prompt_clause(Some("name = 'x'".into())),
            (Some("name = 'x'".into()), Prompts::Exclude)
        );
    }
}

#[derive(Deserialize)]
struct Transition {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    version: String,
    #[serde(deserialize_with = "string")]
    stage: String,
    #[serde(default, deserialize_with = "opt_bool")]
    archive_existing_versions: Option<bool>,
}

async fn transition_stage(st: AppState, p: Params) -> Answer {
    let r: Transition = p.read()?;
    let stage: Stage = r.stage.parse()?;
    let options = TransitionOptions::default()
        .with_archive_existing(r.archive_existing_versions.unwrap_or(false));
    let mv = st
        .registry
        .transition_stage(&r.name.parse()?, version(&r.version)?, stage, options)
        .await?;
    ok(json!({"model_version": model_version_to_json(&mv)}))
}
