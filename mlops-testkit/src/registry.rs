//! The [`Registry`] conformance suite.

use std::collections::BTreeSet;

use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, DatasetLineage, Lineage, ModelVersionStatus,
    Registry, RegistryExt, RegistryObject, SearchRegistryOptions, Stage,
};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::tracking::Tag;
use mlops_core::{Alias, DataType, Digest, Error, ModelName, ModelUri, RunId, Version};

use crate::{in_parallel, unique};

fn model_name(prefix: &str) -> ModelName {
    unique(prefix).parse().unwrap()
}

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}

fn alias(s: &str) -> Alias {
    s.parse().unwrap()
}

async fn new_model(r: &dyn Registry, prefix: &str) -> ModelName {
    let name = model_name(prefix);
    r.create_registered_model(&name, CreateModelOptions::default())
        .await
        .unwrap();
    name
}

async fn new_version(r: &dyn Registry, name: &ModelName) -> Version {
    r.create_model_version(
        name,
        CreateVersionOptions::new(format!("mem://{name}/model")),
    )
    .await
    .unwrap()
    .version
}

/// Runs every clause.
pub async fn run_all(r: &dyn Registry) {
    models_round_trip(r).await;
    unknown_names_are_not_found(r).await;
    versions_are_numbered_without_reuse(r).await;
    concurrent_versions_have_no_gaps_or_duplicates(r).await;
    aliases_point_and_move(r).await;
    stages_archive_existing(r).await;
    deleted_versions_disappear(r).await;
    tags_on_models_and_versions(r).await;
    lineage_and_signature_round_trip(r).await;
    uris_resolve(r).await;
    versions_search_and_page(r).await;
    deleting_a_model_removes_everything(r).await;
}

/// Models read back; names are unique; descriptions update; search filters by name.
pub async fn models_round_trip(r: &dyn Registry) {
    let name = model_name("churn");
    let created = r
        .create_registered_model(
            &name,
            CreateModelOptions::default()
                .with_description("predicts churn")
                .with_tag(Tag::new("team".parse().unwrap(), "growth").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.description, "predicts churn");
    assert!(created.latest_versions.is_empty());
    let got = r.get_registered_model(&name).await.unwrap();
    assert_eq!(got.tags.get("team").map(String::as_str), Some("growth"));
    let err = r
        .create_registered_model(&name, CreateModelOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    let updated = r
        .update_registered_model(&name, "v2 description")
        .await
        .unwrap();
    assert_eq!(updated.description, "v2 description");
    assert!(updated.last_updated_timestamp >= created.last_updated_timestamp);
    let found = r
        .search_registered_models(
            SearchRegistryOptions::default().with_filter(format!("name = '{name}'")),
        )
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].name, name);
}

/// Unknown models, versions and aliases are `NotFound` with the right kind.
pub async fn unknown_names_are_not_found(r: &dyn Registry) {
    let missing = model_name("missing");
    let expect = |err: Option<Error>, want: &str| match err {
        Some(Error::NotFound { kind, .. }) if kind == want => {}
        other => panic!("expected NotFound for {want}, got {other:?}"),
    };
    expect(
        r.get_registered_model(&missing).await.err(),
        "registered model",
    );
    expect(
        r.create_model_version(&missing, CreateVersionOptions::new("mlops://missing/model"))
            .await
            .err(),
        "registered model",
    );
    let name = new_model(r, "nf").await;
    expect(
        r.get_model_version(&name, v(1)).await.err(),
        "model version",
    );
    expect(
        r.set_alias(&name, &alias("champion"), v(1)).await.err(),
        "model version",
    );
    expect(
        r.get_version_by_alias(&name, &alias("champion"))
            .await
            .err(),
        "alias",
    );
    expect(
        r.delete_alias(&name, &alias("champion")).await.err(),
        "alias",
    );
    let empty = r
        .create_model_version(&name, CreateVersionOptions::new("  "))
        .await
        .unwrap_err();
    assert!(
        empty.is_invalid_argument(),
        "an empty source is InvalidArgument: {empty}"
    );
}

/// Versions count 1, 2, 3 and numbers are never reused after a delete.
pub async fn versions_are_numbered_without_reuse(r: &dyn Registry) {
    let name = new_model(r, "numbers").await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(new_version(r, &name).await.get());
    }
    assert_eq!(got, vec![1, 2, 3]);
    let mv = r.get_model_version(&name, v(2)).await.unwrap();
    assert_eq!(mv.current_stage, Stage::None);
    assert_eq!(mv.status, ModelVersionStatus::Ready);
    r.delete_model_version(&name, v(3)).await.unwrap();
    assert_eq!(
        new_version(r, &name).await,
        v(4),
        "deleted numbers are not reused"
    );
}

/// Sixteen threads registering versions of one model get 1..=16, each once.
pub async fn concurrent_versions_have_no_gaps_or_duplicates(r: &dyn Registry) {
    let name = new_model(r, "racy").await;
    let versions = in_parallel(16, |_| new_version(r, &name));
    let got: BTreeSet<u64> = versions.iter().map(|v| v.get()).collect();
    assert_eq!(
        got,
        (1..=16).collect::<BTreeSet<_>>(),
        "versions {versions:?}"
    );
    assert_eq!(r.list_versions(&name).await.unwrap().len(), 16);
}

/// An alias points at one version; setting it again moves it.
pub async fn aliases_point_and_move(r: &dyn Registry) {
    let name = new_model(r, "aliases").await;
    let (v1, v2) = (new_version(r, &name).await, new_version(r, &name).await);
    let champion = alias("champion");
    r.set_alias(&name, &champion, v1).await.unwrap();
    assert_eq!(
        r.get_version_by_alias(&name, &champion)
            .await
            .unwrap()
            .version,
        v1
    );
    r.set_alias(&name, &champion, v2).await.unwrap();
    let now = r.get_version_by_alias(&name, &champion).await.unwrap();
    assert_eq!(now.version, v2);
    assert_eq!(now.aliases, vec![champion.clone()]);
    assert!(
        r.get_model_version(&name, v1)
            .await
            .unwrap()
            .aliases
            .is_empty(),
        "moved away from v1"
    );
    let model = r.get_registered_model(&name).await.unwrap();
    assert_eq!(model.aliases.get(&champion), Some(&v2));
    r.set_alias(&name, &alias("challenger"), v1).await.unwrap();
    r.delete_alias(&name, &alias("challenger")).await.unwrap();
    assert!(
        r.get_version_by_alias(&name, &alias("challenger"))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// Moving into Production with `archive_existing` archives the previous Production version.
pub async fn stages_archive_existing(r: &dyn Registry) {
    let name = new_model(r, "stages").await;
    let (v1, v2, v3) = (
        new_version(r, &name).await,
        new_version(r, &name).await,
        new_version(r, &name).await,
    );
    r.transition_stage(&name, v1, Stage::Production, TransitionOptions::default())
        .await
        .unwrap();
    r.transition_stage(&name, v2, Stage::Production, TransitionOptions::default())
        .await
        .unwrap();
    let moved = r
        .transition_stage(
            &name,
            v3,
            Stage::Production,
            TransitionOptions::default().with_archive_existing(true),
        )
        .await
        .unwrap();
    assert_eq!(moved.current_stage, Stage::Production);
    for old in [v1, v2] {
        assert_eq!(
            r.get_model_version(&name, old).await.unwrap().current_stage,
            Stage::Archived
        );
    }
    let err = r
        .transition_stage(
            &name,
            v1,
            Stage::Archived,
            TransitionOptions::default().with_archive_existing(true),
        )
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_argument(),
        "archive_existing only for Staging/Production: {err}"
    );
    let model = r.get_registered_model(&name).await.unwrap();
    let latest: Vec<(Stage, u64)> = model
        .latest_versions
        .iter()
        .map(|m| (m.current_stage, m.version.get()))
        .collect();
    assert!(
        latest.contains(&(Stage::Production, 3)) && latest.contains(&(Stage::Archived, 2)),
        "{latest:?}"
    );
}

/// A deleted version is gone from reads and searches and loses its aliases.
pub async fn deleted_versions_disappear(r: &dyn Registry) {
    let name = new_model(r, "softdel").await;
    let (v1, v2) = (new_version(r, &name).await, new_version(r, &name).await);
    r.set_alias(&name, &alias("champion"), v2).await.unwrap();
    r.delete_model_version(&name, v2).await.unwrap();
    assert!(
        r.get_model_version(&name, v2)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        r.get_version_by_alias(&name, &alias("champion"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let versions: Vec<Version> = r
        .list_versions(&name)
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, vec![v1]);
    assert!(
        r.delete_model_version(&name, v2)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        r.get_registered_model(&name)
            .await
            .unwrap()
            .aliases
            .is_empty()
    );
}

/// Tags set, overwrite and delete on models and versions.
pub async fn tags_on_models_and_versions(r: &dyn Registry) {
    let name = new_model(r, "tags").await;
    let v1 = new_version(r, &name).await;
    let tag = |k: &str, val: &str| Tag::new(k.parse().unwrap(), val).unwrap();
    let model = RegistryObject::Model(name.clone());
    let version = RegistryObject::Version(name.clone(), v1);
    r.set_tag(&model, tag("owner", "ann")).await.unwrap();
    r.set_tag(&model, tag("owner", "bob")).await.unwrap();
    r.set_tag(&version, tag("validated", "true")).await.unwrap();
    assert_eq!(
        r.get_registered_model(&name)
            .await
            .unwrap()
            .tags
            .get("owner")
            .map(String::as_str),
        Some("bob")
    );
    assert_eq!(
        r.get_model_version(&name, v1)
            .await
            .unwrap()
            .tags
            .get("validated")
            .map(String::as_str),
        Some("true")
    );
    let key = "validated".parse().unwrap();
    r.delete_tag(&version, &key).await.unwrap();
    assert!(
        r.delete_tag(&version, &key)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        r.get_model_version(&name, v1)
            .await
            .unwrap()
            .tags
            .is_empty()
    );
    let missing = RegistryObject::Version(name.clone(), v(99));
    assert!(
        r.set_tag(&missing, tag("a", "b"))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// Lineage and signature come back exactly as registered; without a git commit, the caller's
/// checkout (if any) is recorded.
pub async fn lineage_and_signature_round_trip(r: &dyn Registry) {
    let name = new_model(r, "lineage").await;
    let run_id = RunId::generate();
    let lineage = Lineage {
        run_id: Some(run_id.clone()),
        datasets: vec![DatasetLineage {
            name: "churn".parse().unwrap(),
            version: v(3),
            digest: Digest::of(b"manifest"),
        }],
        git_commit: Some("0123abcd".into()),
    };
    let signature = Signature::tensors(
        vec![TensorSpec::new("features", DataType::Fp32, vec![-1, 8])],
        vec![TensorSpec::new("probability", DataType::Fp32, vec![-1, 1])],
    );
    let mv = r
        .create_model_version(
            &name,
            CreateVersionOptions::new(format!("mlops://lineage/{run_id}/model"))
                .with_run_id(run_id.clone())
                .with_lineage(lineage.clone())
                .with_signature(signature.clone())
                .with_description("first"),
        )
        .await
        .unwrap();
    let got = r.get_model_version(&name, mv.version).await.unwrap();
    assert_eq!(got.lineage, lineage);
    assert_eq!(got.signature, Some(signature));
    assert_eq!(got.run_id, Some(run_id));
    assert_eq!(got.description, "first");
    let updated = r
        .update_model_version(&name, mv.version, "second")
        .await
        .unwrap();
    assert_eq!(updated.description, "second");
}

/// `models:/` URIs resolve by number, alias, stage and `latest`.
pub async fn uris_resolve(r: &dyn Registry) {
    let name = new_model(r, "uris").await;
    let (v1, v2, _v3) = (
        new_version(r, &name).await,
        new_version(r, &name).await,
        new_version(r, &name).await,
    );
    r.set_alias(&name, &alias("champion"), v1).await.unwrap();
    r.transition_stage(&name, v2, Stage::Staging, TransitionOptions::default())
        .await
        .unwrap();
    let resolve = |s: String| async move { r.resolve(&s.parse::<ModelUri>().unwrap()).await };
    assert_eq!(
        resolve(format!("models:/{name}/2"))
            .await
            .unwrap()
            .version
            .get(),
        2
    );
    assert_eq!(
        resolve(format!("models:/{name}@champion"))
            .await
            .unwrap()
            .version
            .get(),
        1
    );
    assert_eq!(
        resolve(format!("models:/{name}/Staging"))
            .await
            .unwrap()
            .version
            .get(),
        2
    );
    assert_eq!(
        resolve(format!("models:/{name}/latest"))
            .await
            .unwrap()
            .version
            .get(),
        3
    );
    assert!(
        resolve(format!("models:/{name}/Production"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        resolve(format!("models:/{name}@nobody"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let run = format!("runs:/{}/model", RunId::generate());
    assert!(resolve(run).await.unwrap_err().is_invalid_argument());
}

/// Version search filters by name and run id and pages through everything once.
pub async fn versions_search_and_page(r: &dyn Registry) {
    let name = new_model(r, "vsearch").await;
    let run_id = RunId::generate();
    for i in 0..7 {
        let mut o = CreateVersionOptions::new(format!("mlops://vsearch/s{i}"));
        if i % 2 == 0 {
            o = o.with_run_id(run_id.clone());
        }
        r.create_model_version(&name, o).await.unwrap();
    }
    let by_run = r
        .search_model_versions(
            SearchRegistryOptions::default().with_filter(format!("run_id = '{run_id}'")),
        )
        .await
        .unwrap();
    assert_eq!(by_run.items.len(), 4);
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = r
            .search_model_versions(
                SearchRegistryOptions::default()
                    .with_filter(format!("name = '{name}'"))
                    .order_by("version_number ASC")
                    .with_max_results(3)
                    .with_page_token(token.clone()),
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|m| m.version.get()));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
}

/// Deleting a model removes its versions and aliases with it.
pub async fn deleting_a_model_removes_everything(r: &dyn Registry) {
    let name = new_model(r, "delete").await;
    let v1 = new_version(r, &name).await;
    r.set_alias(&name, &alias("champion"), v1).await.unwrap();
    r.delete_registered_model(&name).await.unwrap();
    assert!(
        r.get_registered_model(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        r.get_model_version(&name, v1)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        r.delete_registered_model(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // The name is free again.
    r.create_registered_model(&name, CreateModelOptions::default())
        .await
        .unwrap();
}
