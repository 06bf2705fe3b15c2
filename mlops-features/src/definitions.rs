//! Feature definitions with Feast's names: entities, data sources, feature views and feature
//! services, gathered in a [`FeatureRepo`] that is written in Rust (builders) or YAML.
//!
//! # The YAML feature repo
//!
//! One file describes a project. Field names are Feast's (`join_keys`, `timestamp_field`,
//! `created_timestamp_column`, `ttl`, `schema`, `online`, `tags`, `features`):
//!
//! ```yaml
//! project: churn
//! entities:
//!   - name: customer
//!     join_keys: [customer_id]
//! sources:
//!   - name: customer_stats_source
//!     dataset: customer_stats@3      # a dataset of the store (latest without "@N"), or
//!     # path: data/stats.parquet     # a Parquet file or folder, relative to the repo file
//!     timestamp_field: event_timestamp
//!     created_timestamp_column: created
//! feature_views:
//!   - name: customer_stats
//!     entities: [customer]
//!     ttl: 1day                      # humantime, or seconds; 0 or absent: no lower bound
//!     source: customer_stats_source
//!     schema:                        # absent: every column but keys and timestamps
//!       - {name: tenure, dtype: Int64}
//!       - {name: spend, dtype: Float64}
//! on_demand_feature_views:          # request-time features (crate::ondemand)
//!   - name: order_features
//!     request_schema: [{name: amount, dtype: Float64}]
//!     sources: [customer_stats]
//!     features:
//!       - {name: amount_per_month, dtype: Float64, expression: "amount / max(tenure, 1)"}
//! feature_services:
//!   - name: churn_v1
//!     features: ["customer_stats:tenure", "customer_stats", order_features]   # a view alone: all its features
//! ```
//!
//! Feature dtypes are Feast's: `Int32`, `Int64`, `Float32`, `Float64`, `String`, `Bool`,
//! `Bytes`, `UnixTimestamp`. [`FeatureRepo::validate`] refuses duplicate names, unknown
//! entities, sources or features, empty join keys, names that are not identifiers and negative
//! ttls, each as [`Error::InvalidArgument`] naming what was wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use arrow::datatypes::{DataType, TimeUnit};
use mlops_core::{DatasetName, Error, Result, Version};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ondemand::{OnDemandFeatureView, OnDemandRequest};

/// Something features are about, identified by one or more join keys (`customer_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Entity {
    /// The entity's name, which feature views list.
    pub name: String,
    /// The columns that identify one entity, in the sources and in entity rows.
    pub join_keys: Vec<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Entity {
    /// An entity with one join key.
    pub fn new(name: impl Into<String>, join_key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            join_keys: vec![join_key.into()],
            description: String::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Identified by several columns together.
    pub fn with_join_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.join_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

/// Where a source's rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceLocation {
    /// A dataset of the store: its latest version, or exactly `version`.
    Dataset {
        /// The dataset.
        name: DatasetName,
        /// Pinned, or `None` for the latest at read time.
        version: Option<Version>,
    },
    /// A Parquet file, or a folder of `*.parquet` files; relative paths are resolved against
    /// the feature repo's folder.
    Parquet {
        /// The path as written.
        path: String,
    },
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dataset {
                name,
                version: Some(v),
            } => write!(f, "dataset {name}@{v}"),
            Self::Dataset {
                name,
                version: None,
            } => write!(f, "dataset {name}"),
            Self::Parquet { path } => write!(f, "parquet {path}"),
        }
    }
}

/// A table of feature rows with an event-time column (Feast's batch source).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataSource {
    /// The source's name, which feature views refer to.
    pub name: String,
    /// Where its rows are.
    pub location: SourceLocation,
    /// The event-time column: when each row's values became true.
    pub timestamp_field: String,
    /// When each row was written; breaks ties between rows of one event time (later wins).
    pub created_timestamp_column: Option<String>,
    /// Free text.
    pub description: String,
}

impl DataSource {
    /// A source over a dataset of the store (`version: None` reads the latest).
    pub fn dataset(
        name: impl Into<String>,
        dataset: DatasetName,
        version: Option<Version>,
        timestamp_field: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            location: SourceLocation::Dataset {
                name: dataset,
                version,
            },
            timestamp_field: timestamp_field.into(),
            created_timestamp_column: None,
            description: String::new(),
        }
    }

    /// A source over a Parquet file or folder.
    pub fn parquet(
        name: impl Into<String>,
        path: impl Into<String>,
        timestamp_field: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            location: SourceLocation::Parquet { path: path.into() },
            timestamp_field: timestamp_field.into(),
            created_timestamp_column: None,
            description: String::new(),
        }
    }

    /// Breaks ties on event time by this column.
    pub fn with_created_timestamp_column(mut self, column: impl Into<String>) -> Self {
        self.created_timestamp_column = Some(column.into());
        self
    }
}

/// The YAML/JSON shape of a [`DataSource`]: `dataset: name[@N]` or `path: ...`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSourceDoc {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    timestamp_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_timestamp_column: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
}

impl Serialize for DataSource {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (dataset, path) = match &self.location {
            SourceLocation::Dataset { name, version } => (
                Some(match version {
                    Some(v) => format!("{name}@{v}"),
                    None => name.to_string(),
                }),
                None,
            ),
            SourceLocation::Parquet { path } => (None, Some(path.clone())),
        };
        DataSourceDoc {
            name: self.name.clone(),
            dataset,
            path,
            timestamp_field: self.timestamp_field.clone(),
            created_timestamp_column: self.created_timestamp_column.clone(),
            description: self.description.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let doc = DataSourceDoc::deserialize(d)?;
        let location = match (doc.dataset, doc.path) {
            (Some(dataset), None) => {
                let (name, version) = match dataset.split_once('@') {
                    Some((name, v)) => (
                        name,
                        Some(v.parse::<Version>().map_err(|e| {
                            D::Error::custom(format!(
                                "source {}: dataset {dataset:?}: {e}",
                                doc.name
                            ))
                        })?),
                    ),
                    None => (dataset.as_str(), None),
                };
                let name = DatasetName::new(name).map_err(|e| {
                    D::Error::custom(format!("source {}: dataset {dataset:?}: {e}", doc.name))
                })?;
                SourceLocation::Dataset { name, version }
            }
            (None, Some(path)) => SourceLocation::Parquet { path },
            _ => {
                return Err(D::Error::custom(format!(
                    "source {} needs exactly one of `dataset` and `path`",
                    doc.name
                )));
            }
        };
        Ok(Self {
            name: doc.name,
            location,
            timestamp_field: doc.timestamp_field,
            created_timestamp_column: doc.created_timestamp_column,
            description: doc.description,
        })
    }
}

/// A feature's value type, with Feast's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ValueType {
    /// 32-bit integers.
    Int32,
    /// 64-bit integers.
    Int64,
    /// 32-bit floats.
    Float32,
    /// 64-bit floats.
    Float64,
    /// UTF-8 strings.
    String,
    /// Booleans.
    Bool,
    /// Bytes.
    Bytes,
    /// Timestamps (UTC, microseconds).
    UnixTimestamp,
}

impl ValueType {
    /// The Arrow type feature values of this type have in results.
    pub fn arrow_type(self) -> DataType {
        match self {
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::String => DataType::Utf8,
            Self::Bool => DataType::Boolean,
            Self::Bytes => DataType::Binary,
            Self::UnixTimestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The value type of an Arrow column, when it has one.
    pub fn of_arrow(dt: &DataType) -> Option<Self> {
        Some(match dt {
            DataType::Int8 | DataType::Int16 | DataType::Int32 => Self::Int32,
            DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Self::Int64,
            DataType::Float16 | DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::String,
            DataType::Boolean => Self::Bool,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Bytes,
            DataType::Timestamp(_, _) => Self::UnixTimestamp,
            _ => return None,
        })
    }
}

/// One feature of a view: a column of its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Field {
    /// The column's name.
    pub name: String,
    /// Its type; source columns are cast to it.
    pub dtype: ValueType,
}

impl Field {
    /// A feature of this name and type.
    pub fn new(name: impl Into<String>, dtype: ValueType) -> Self {
        Self {
            name: name.into(),
            dtype,
        }
    }
}

/// Features of some entities read from one source, valid for `ttl` after their event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FeatureView {
    /// The view's name: the `view` of `view:feature` references.
    pub name: String,
    /// The entities whose join keys the view's rows carry; none joins on time alone.
    #[serde(default)]
    pub entities: Vec<String>,
    /// How long a row stays valid after its event time; `None` (or 0): forever.
    #[serde(default, with = "ttl_serde", skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// The source's name.
    pub source: String,
    /// The features; empty: every source column but join keys and timestamps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<Field>,
    /// Whether materialization writes it to the online store.
    #[serde(default = "yes")]
    pub online: bool,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

impl FeatureView {
    /// A view of `source` about `entities`, with no ttl and its features inferred.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        entities: impl IntoIterator<Item = S>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            entities: entities.into_iter().map(Into::into).collect(),
            ttl: None,
            source: source.into(),
            schema: Vec::new(),
            online: true,
            description: String::new(),
            tags: BTreeMap::new(),
        }
    }

    /// Rows older than `ttl` (relative to each entity row's time) do not match; zero: no bound.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = (!ttl.is_zero()).then_some(ttl);
        self
    }

    /// Declares one feature.
    pub fn with_feature(mut self, name: impl Into<String>, dtype: ValueType) -> Self {
        self.schema.push(Field::new(name, dtype));
        self
    }

    /// Whether materialization writes it online.
    pub fn with_online(mut self, online: bool) -> Self {
        self.online = online;
        self
    }

    /// Sets a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// `ttl:` as seconds (an integer) or a humantime string (`1day`, `36h`); written as humantime.
mod ttl_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ttl {
        Seconds(i64),
        Text(String),
    }

    pub(super) fn serialize<S: Serializer>(
        ttl: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match ttl {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        use serde::de::Error as _;
        let ttl = match Option::<Ttl>::deserialize(d)? {
            None => return Ok(None),
            Some(Ttl::Seconds(s)) if s < 0 => {
                return Err(D::Error::custom(format!(
                    "ttl {s} is negative; use 0 (or leave it out) for no bound"
                )));
            }
            Some(Ttl::Seconds(s)) => Duration::from_secs(s.unsigned_abs()),
            Some(Ttl::Text(t)) if t.trim_start().starts_with('-') => {
                return Err(D::Error::custom(format!(
                    "ttl {t:?} is negative; use 0 (or leave it out) for no bound"
                )));
            }
            Some(Ttl::Text(t)) => humantime::parse_duration(&t)
                .map_err(|e| D::Error::custom(format!("ttl {t:?}: {e}")))?,
        };
        Ok((!ttl.is_zero()).then_some(ttl))
    }
}

/// A named set of features a model uses (Feast's `FeatureService`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FeatureService {
    /// The service's name.
    pub name: String,
    /// `view:feature` references, or a view's name for all of its features.
    pub features: Vec<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl FeatureService {
    /// A service of these references.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        features: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            name: name.into(),
            features: features.into_iter().map(Into::into).collect(),
            description: String::new(),
            tags: BTreeMap::new(),
        }
    }
}

/// `view:feature`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureRef {
    /// The feature view.
    pub view: String,
    /// The feature.
    pub feature: String,
}

impl FromStr for FeatureRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((view, feature)) if !view.is_empty() && !feature.is_empty() => Ok(Self {
                view: view.to_owned(),
                feature: feature.to_owned(),
            }),
            _ => Err(Error::invalid(
                "feature reference",
                format!("{s:?} is not of the form view:feature"),
            )),
        }
    }
}

impl fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.view, self.feature)
    }
}

/// Which features a request wants: references, or a feature service's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeatureSelection {
    /// `view:feature` references, in the order the result's columns take.
    Features(Vec<FeatureRef>),
    /// A feature service by name.
    Service(String),
}

impl FeatureSelection {
    /// Parses `view:feature` references.
    pub fn features<S: AsRef<str>>(refs: impl IntoIterator<Item = S>) -> Result<Self> {
        Ok(Self::Features(
            refs.into_iter()
                .map(|r| r.as_ref().parse())
                .collect::<Result<_>>()?,
        ))
    }

    /// A feature service's features.
    pub fn service(name: impl Into<String>) -> Self {
        Self::Service(name.into())
    }
}

/// Every definition of one project: what `apply` stores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FeatureRepo {
    /// The project's name (the registry keeps one document per project).
    pub project: String,
    /// Entities.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Data sources.
    #[serde(default)]
    pub sources: Vec<DataSource>,
    /// Feature views.
    #[serde(default)]
    pub feature_views: Vec<FeatureView>,
    /// Feature services.
    #[serde(default)]
    pub feature_services: Vec<FeatureService>,
    /// Request-time features ([`crate::ondemand`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_demand_feature_views: Vec<OnDemandFeatureView>,
}

/// How a selection is answered ([`FeatureRepo::resolve_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolution {
    /// The feature views' shares, with the inputs of the on-demand features.
    pub views: Vec<ViewRequest>,
    /// The on-demand views' shares.
    pub on_demand: Vec<OnDemandRequest>,
    /// `(view, feature)`s fetched only as on-demand inputs: not part of the result.
    pub hidden: Vec<(String, String)>,
}

/// One view's share of a request: its features in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRequest {
    /// The view.
    pub view: FeatureView,
    /// Its source.
    pub source: DataSource,
    /// The join keys of its entities, in order.
    pub join_keys: Vec<String>,
    /// The requested features (names of the view's features).
    pub features: Vec<String>,
}

impl FeatureRepo {
    /// An empty project.
    pub fn new(project: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            ..Self::default()
        }
    }

    /// Adds an entity.
    pub fn with_entity(mut self, entity: Entity) -> Self {
        self.entities.push(entity);
        self
    }

    /// Adds a source.
    pub fn with_source(mut self, source: DataSource) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds a feature view.
    pub fn with_feature_view(mut self, view: FeatureView) -> Self {
        self.feature_views.push(view);
        self
    }

    /// Adds a feature service.
    pub fn with_feature_service(mut self, service: FeatureService) -> Self {
        self.feature_services.push(service);
        self
    }

    /// Adds an on-demand feature view.
    pub fn with_on_demand_feature_view(mut self, view: OnDemandFeatureView) -> Self {
        self.on_demand_feature_views.push(view);
        self
    }

    /// An on-demand feature view by name.
    pub fn on_demand_feature_view(&self, name: &str) -> Option<&OnDemandFeatureView> {
        self.on_demand_feature_views.iter().find(|v| v.name == name)
    }

    /// Parses a YAML feature repo (see the [module docs](self)) and validates it.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let repo: Self = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::invalid("feature repo", e.to_string()))?;
        repo.validate()?;
        Ok(repo)
    }

    /// The repo as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml_ng::to_string(self).map_err(|e| Error::invalid("feature repo", e.to_string()))
    }

    /// Checks names, references and ttls; see the [module docs](self).
    pub fn validate(&self) -> Result<()> {
        check_name("project", &self.project)?;
        let mut entities = BTreeMap::new();
        for e in &self.entities {
            check_name("entity", &e.name)?;
            if entities.insert(e.name.as_str(), e).is_some() {
                return Err(duplicate("entity", &e.name));
            }
            if e.join_keys.is_empty() {
                return Err(Error::invalid(
                    "entity",
                    format!("entity {} has no join keys", e.name),
                ));
            }
            let mut seen = BTreeSet::new();
            for k in &e.join_keys {
                check_column("join key", k)?;
                if !seen.insert(k) {
                    return Err(Error::invalid(
                        "entity",
                        format!("entity {} lists join key {k} twice", e.name),
                    ));
                }
            }
        }
        let mut sources = BTreeMap::new();
        for s in &self.sources {
            check_name("source", &s.name)?;
            if sources.insert(s.name.as_str(), s).is_some() {
                return Err(duplicate("source", &s.name));
            }
            check_column("timestamp_field", &s.timestamp_field)?;
            if let Some(c) = &s.created_timestamp_column {
                check_column("created_timestamp_column", c)?;
                if *c == s.timestamp_field {
                    return Err(Error::invalid(
                        "source",
                        format!(
                            "source {}: created_timestamp_column and timestamp_field are both {c}",
                            s.name
                        ),
                    ));
                }
            }
            if let SourceLocation::Parquet { path } = &s.location
                && path.trim().is_empty()
            {
                return Err(Error::invalid(
                    "source",
                    format!("source {} has an empty path", s.name),
                ));
            }
        }
        let mut views = BTreeMap::new();
        for v in &self.feature_views {
            check_name("feature view", &v.name)?;
            if views.insert(v.name.as_str(), v).is_some() {
                return Err(duplicate("feature view", &v.name));
            }
            let source = sources.get(v.source.as_str()).ok_or_else(|| {
                Error::invalid(
                    "feature view",
                    format!(
                        "feature view {} reads source {}, which is not defined{}",
                        v.name,
                        v.source,
                        known(sources.keys())
                    ),
                )
            })?;
            let mut keys = BTreeSet::new();
            for e in &v.entities {
                let entity = entities.get(e.as_str()).ok_or_else(|| {
                    Error::invalid(
                        "feature view",
                        format!(
                            "feature view {} names entity {e}, which is not defined{}",
                            v.name,
                            known(entities.keys())
                        ),
                    )
                })?;
                for k in &entity.join_keys {
                    if !keys.insert(k.as_str()) {
                        return Err(Error::invalid(
                            "feature view",
                            format!(
                                "feature view {}: join key {k} comes from two entities",
                                v.name
                            ),
                        ));
                    }
                }
            }
            let mut features = BTreeSet::new();
            for f in &v.schema {
                check_column("feature", &f.name)?;
                if !features.insert(f.name.as_str()) {
                    return Err(Error::invalid(
                        "feature view",
                        format!("feature view {} declares feature {} twice", v.name, f.name),
                    ));
                }
                let reserved = keys.contains(f.name.as_str())
                    || f.name == source.timestamp_field
                    || source.created_timestamp_column.as_deref() == Some(f.name.as_str());
                if reserved {
                    return Err(Error::invalid(
                        "feature view",
                        format!(
                            "feature view {}: {} is a join key or timestamp column, not a feature",
                            v.name, f.name
                        ),
                    ));
                }
            }
        }
        let mut on_demand = BTreeMap::new();
        for o in &self.on_demand_feature_views {
            check_name("on-demand feature view", &o.name)?;
            if views.contains_key(o.name.as_str()) || on_demand.insert(o.name.as_str(), o).is_some()
            {
                return Err(duplicate("feature view", &o.name));
            }
            let mut sources = Vec::new();
            for v in &o.sources {
                let view = views.get(v.as_str()).ok_or_else(|| {
                    Error::invalid(
                        "on-demand feature view",
                        format!(
                            "on-demand feature view {} reads feature view {v}, which is not defined{}",
                            o.name,
                            known(views.keys())
                        ),
                    )
                })?;
                if view.schema.is_empty() {
                    return Err(Error::invalid(
                        "on-demand feature view",
                        format!(
                            "on-demand feature view {} reads {v}, whose features are inferred: declare its schema",
                            o.name
                        ),
                    ));
                }
                sources.push(*view);
            }
            for f in &o.request_schema {
                check_column("request field", &f.name)?;
            }
            o.check(&sources)?;
        }
        let mut services = BTreeSet::new();
        for s in &self.feature_services {
            check_name("feature service", &s.name)?;
            if !services.insert(s.name.as_str()) {
                return Err(duplicate("feature service", &s.name));
            }
            if s.features.is_empty() {
                return Err(Error::invalid(
                    "feature service",
                    format!("feature service {} lists no features", s.name),
                ));
            }
            for r in &s.features {
                let (view, feature) = match r.split_once(':') {
                    Some((v, f)) => (v, Some(f)),
                    None => (r.as_str(), None),
                };
                if let Some(o) = on_demand.get(view) {
                    if let Some(f) = feature {
                        o.feature(f)?;
                    }
                    continue;
                }
                let v = views.get(view).ok_or_else(|| {
                    Error::invalid(
                        "feature service",
                        format!(
                            "feature service {} uses view {view}, which is not defined{}",
                            s.name,
                            known(views.keys())
                        ),
                    )
                })?;
                if let Some(f) = feature
                    && !v.schema.is_empty()
                    && !v.schema.iter().any(|x| x.name == f)
                {
                    return Err(unknown_feature(v, f));
                }
            }
        }
        Ok(())
    }

    /// An entity by name.
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&DataSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// A feature view by name.
    pub fn feature_view(&self, name: &str) -> Option<&FeatureView> {
        self.feature_views.iter().find(|v| v.name == name)
    }

    /// A feature service by name.
    pub fn feature_service(&self, name: &str) -> Option<&FeatureService> {
        self.feature_services.iter().find(|s| s.name == name)
    }

    /// The join keys of a view's entities, in order.
    pub fn join_keys(&self, view: &FeatureView) -> Vec<String> {
        view.entities
            .iter()
            .filter_map(|e| self.entity(e))
            .flat_map(|e| e.join_keys.iter().cloned())
            .collect()
    }

    /// Resolves a selection into per-view requests, views in order of first appearance and
    /// features in request order. A view alone (in a service) means all its declared features;
    /// a view whose features are inferred is resolved by the caller, who knows the source's
    /// columns (`features` is then empty).
    pub fn resolve(&self, selection: &FeatureSelection) -> Result<Vec<ViewRequest>> {
        Ok(self.resolve_all(selection)?.views)
    }

    /// How `selection` is answered: the feature views' shares (the inputs of requested
    /// on-demand features included), the on-demand views' shares, and the features fetched only
    /// as such inputs (not part of the result).
    pub fn resolve_all(&self, selection: &FeatureSelection) -> Result<Resolution> {
        let refs: Vec<(String, Option<String>)> = match selection {
            FeatureSelection::Features(refs) => {
                if refs.is_empty() {
                    return Err(Error::invalid("features", "no features were requested"));
                }
                refs.iter()
                    .map(|r| (r.view.clone(), Some(r.feature.clone())))
                    .collect()
            }
            FeatureSelection::Service(name) => {
                let service = self.feature_service(name).ok_or_else(|| {
                    Error::invalid(
                        "feature service",
                        format!(
                            "project {} has no feature service {name}{}",
                            self.project,
                            known(self.feature_services.iter().map(|s| &s.name))
                        ),
                    )
                })?;
                service
                    .features
                    .iter()
                    .map(|r| match r.split_once(':') {
                        Some((v, f)) => (v.to_owned(), Some(f.to_owned())),
                        None => (r.clone(), None),
                    })
                    .collect()
            }
        };
        let mut regular: Vec<(String, Option<String>)> = Vec::new();
        let mut on_demand: Vec<OnDemandRequest> = Vec::new();
        for (view_name, feature) in refs {
            let Some(o) = self.on_demand_feature_view(&view_name) else {
                regular.push((view_name, feature));
                continue;
            };
            let features = match feature {
                Some(f) => {
                    o.feature(&f)?;
                    vec![f]
                }
                None => o.features.iter().map(|f| f.name.clone()).collect(),
            };
            let i = match on_demand.iter().position(|r| r.view.name == o.name) {
                Some(i) => i,
                None => {
                    on_demand.push(OnDemandRequest {
                        view: o.clone(),
                        features: Vec::new(),
                        sources: o
                            .sources
                            .iter()
                            .filter_map(|s| self.feature_view(s).cloned())
                            .collect(),
                    });
                    on_demand.len() - 1
                }
            };
            for f in features {
                if !on_demand[i].features.contains(&f) {
                    on_demand[i].features.push(f);
                }
            }
        }
        let mut hidden: Vec<(String, String)> = Vec::new();
        for o in &on_demand {
            let views: Vec<&FeatureView> = o.sources.iter().collect();
            for (v, f) in o.view.feature_inputs(&o.features, &views)? {
                let explicit = regular.iter().any(|(rv, rf)| {
                    *rv == v
                        && match rf {
                            Some(rf) => *rf == f,
                            None => true,
                        }
                });
                if !explicit && !hidden.contains(&(v.clone(), f.clone())) {
                    hidden.push((v, f));
                }
            }
        }
        let mut refs = regular;
        refs.extend(hidden.iter().map(|(v, f)| (v.clone(), Some(f.clone()))));
        Ok(Resolution {
            views: self.resolve_refs(refs)?,
            on_demand,
            hidden,
        })
    }

    fn resolve_refs(&self, refs: Vec<(String, Option<String>)>) -> Result<Vec<ViewRequest>> {
        let mut out: Vec<ViewRequest> = Vec::new();
        for (view_name, feature) in refs {
            let view = self.feature_view(&view_name).ok_or_else(|| {
                Error::invalid(
                    "feature reference",
                    format!(
                        "project {} has no feature view {view_name}{}",
                        self.project,
                        known(self.feature_views.iter().map(|v| &v.name))
                    ),
                )
            })?;
            if let Some(f) = &feature
                && !view.schema.is_empty()
                && !view.schema.iter().any(|x| x.name == *f)
            {
                return Err(unknown_feature(view, f));
            }
            let i = match out.iter().position(|r| r.view.name == view_name) {
                Some(i) => i,
                None => {
                    let source = self.source(&view.source).ok_or_else(|| {
                        Error::invalid(
                            "feature view",
                            format!("feature view {} reads an undefined source", view.name),
                        )
                    })?;
                    out.push(ViewRequest {
                        view: view.clone(),
                        source: source.clone(),
                        join_keys: self.join_keys(view),
                        features: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let wanted: Vec<String> = match feature {
                Some(f) => vec![f],
                None => view.schema.iter().map(|f| f.name.clone()).collect(),
            };
            for f in wanted {
                if !out[i].features.contains(&f) {
                    out[i].features.push(f);
                }
            }
        }
        Ok(out)
    }
}

fn unknown_feature(view: &FeatureView, feature: &str) -> Error {
    Error::invalid(
        "feature reference",
        format!(
            "feature view {} has no feature {feature}{}",
            view.name,
            known(view.schema.iter().map(|f| &f.name))
        ),
    )
}

fn duplicate(kind: &'static str, name: &str) -> Error {
    Error::invalid(kind, format!("{kind} {name} is defined twice"))
}

pub(crate) fn known<'a, S: AsRef<str> + 'a>(names: impl IntoIterator<Item = S>) -> String {
    let names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    }
}

/// Names of definitions: letters, digits, `_` and `-`, starting with a letter or `_`; no `__`
/// (Feast's separator of `view__feature`) and at most 128 bytes.
fn check_name(kind: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.contains("__");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            kind,
            format!(
                "{kind} name {name:?} must be 1-128 letters, digits, '_' or '-', start with a \
                 letter or '_', and not contain '__'"
            ),
        ))
    }
}

/// Column names: non-empty, no control characters.
fn check_column(kind: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(char::is_control) {
        Err(Error::invalid(
            kind,
            format!("{kind} {name:?} is not a column name"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const REPO: &str = r#"
project: churn
entities:
  - name: customer
    join_keys: [customer_id]
sources:
  - name: stats
    dataset: customer_stats@3
    timestamp_field: event_timestamp
    created_timestamp_column: created
  - name: orders
    path: data/orders.parquet
    timestamp_field: ts
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 1day
    source: stats
    schema:
      - {name: tenure, dtype: Int64}
      - {name: spend, dtype: Float64}
  - name: orders
    entities: [customer]
    ttl: 3600
    source: orders
feature_services:
  - name: churn_v1
    features: ["customer_stats:tenure", "orders"]
"#;

    #[test]
    fn yaml_round_trips_with_feast_names() {
        let repo = FeatureRepo::from_yaml(REPO).unwrap();
        assert_eq!(repo.project, "churn");
        let stats = repo.source("stats").unwrap();
        assert_eq!(
            stats.location,
            SourceLocation::Dataset {
                name: DatasetName::new("customer_stats").unwrap(),
                version: Some(Version::new(3).unwrap()),
            }
        );
        let view = repo.feature_view("customer_stats").unwrap();
        assert_eq!(view.ttl, Some(Duration::from_secs(86_400)));
        assert!(view.online);
        assert_eq!(
            repo.feature_view("orders").unwrap().ttl,
            Some(Duration::from_secs(3600))
        );
        let again = FeatureRepo::from_yaml(&repo.to_yaml().unwrap()).unwrap();
        assert_eq!(again, repo);
    }

    #[test]
    fn resolve_groups_by_view_in_request_order() {
        let repo = FeatureRepo::from_yaml(REPO).unwrap();
        let req = repo
            .resolve(
                &FeatureSelection::features([
                    "customer_stats:spend",
                    "orders:n",
                    "customer_stats:tenure",
                ])
                .unwrap(),
            )
            .unwrap();
        assert_eq!(req.len(), 2);
        assert_eq!(req[0].view.name, "customer_stats");
        assert_eq!(req[0].features, ["spend", "tenure"]);
        assert_eq!(req[0].join_keys, ["customer_id"]);
        assert_eq!(req[1].features, ["n"]);
        let svc = repo
            .resolve(&FeatureSelection::service("churn_v1"))
            .unwrap();
        assert_eq!(svc[0].features, ["tenure"]);
        assert!(
            svc[1].features.is_empty(),
            "inferred: the caller fills them in"
        );
    }

    #[test]
    fn bad_definitions_are_invalid_arguments_naming_them() {
        let cases = [
            (REPO.replace("ttl: 3600", "ttl: -5"), "negative"),
            (REPO.replace("ttl: 1day", "ttl: \"-1day\""), "negative"),
            (
                REPO.replace(
                    "entities: [customer]\n    ttl: 1day",
                    "entities: [shop]\n    ttl: 1day",
                ),
                "entity shop",
            ),
            (
                REPO.replace("source: orders", "source: nowhere"),
                "source nowhere",
            ),
            (
                REPO.replace("customer_stats:tenure", "customer_stats:age"),
                "no feature age",
            ),
            (
                REPO.replace("name: orders\n    path", "name: stats\n    path"),
                "source stats is defined twice",
            ),
            (
                REPO.replace("join_keys: [customer_id]", "join_keys: []"),
                "no join keys",
            ),
            (
                REPO.replace("name: spend", "name: customer_id"),
                "join key or timestamp",
            ),
            (
                REPO.replace("project: churn", "project: \"a b\""),
                "project name",
            ),
            (
                REPO.replace("dataset: customer_stats@3", "dataset: customer_stats@x"),
                "customer_stats@x",
            ),
            (
                REPO.replace("    dataset: customer_stats@3\n", ""),
                "exactly one of",
            ),
        ];
        for (yaml, needle) in cases {
            let err = FeatureRepo::from_yaml(&yaml).unwrap_err();
            assert!(err.is_invalid_argument(), "{needle}: {err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        let err = "tenure".parse::<FeatureRef>().unwrap_err();
        assert!(err.to_string().contains("view:feature"), "{err}");
    }
}
