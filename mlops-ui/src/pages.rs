//! The HTML pages. Each handler loads through the same functions as the JSON API and renders
//! with maud (every interpolated string is escaped).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use mlops_core::registry::ModelVersion;
use mlops_core::tracking::Run;
use mlops_core::{DatasetName, Error, ExperimentId, MetricKey, ModelName, RunId, Version};
use serde::Deserialize;

use crate::State;
use crate::api::{self, XAxis, parse, split_list};
use crate::chart::{self, Series};
use crate::error::{OrPage, P, PageResult, Q};
use crate::view::{self, encode_query as q, page};

type St = AxState<Arc<State>>;

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(home))
        .route("/experiments", get(experiments))
        .route("/experiments/{id}", get(experiment))
        .route("/runs/{run_id}", get(run))
        .route("/runs/{run_id}/artifacts", get(artifacts))
        .route("/chart", get(chart_page))
        .route("/compare", get(compare))
        .route("/models", get(models))
        .route("/models/{name}", get(model))
        .route("/models/{name}/versions/{version}", get(model_version))
        .route("/datasets", get(datasets))
        .route("/datasets/{name}", get(dataset))
        .route("/pipelines", get(pipelines))
        .route("/drift", get(drift))
        .route("/drift/{run_id}", get(drift_report))
        .route("/decisions", get(decisions))
}

async fn home(AxState(state): St) -> Response {
    Redirect::to(&format!("{}/experiments", state.base)).into_response()
}

fn badge(text: &str) -> Markup {
    html! { span class={ "badge " (text.replace(' ', "-")) } { (text) } }
}

/// A column of the runs table: `metrics.x`, `params.x` or `tags.x`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    kind: &'static str,
    key: String,
}

impl Column {
    fn parse(text: &str) -> Option<Self> {
        let (kind, key) = text.split_once('.')?;
        let kind = match kind {
            "metrics" | "metric" => "metrics",
            "params" | "param" => "params",
            "tags" | "tag" => "tags",
            _ => return None,
        };
        (!key.is_empty()).then(|| Self {
            kind,
            key: key.trim_matches('`').to_string(),
        })
    }

    fn id(&self) -> String {
        format!("{}.{}", self.kind, self.key)
    }

    /// The `order_by` term in MLflow's grammar (the key backquoted).
    fn order_term(&self) -> String {
        format!("{}.`{}`", self.kind, self.key)
    }

    fn cell(&self, run: &Run) -> Option<String> {
        match self.kind {
            "metrics" => run.metric(&self.key).map(view::value),
            "params" => run.data.params.get(self.key.as_str()).cloned(),
            _ => run.data.tags.get(self.key.as_str()).cloned(),
        }
    }
}

async fn experiments(AxState(state): St) -> PageResult {
    let experiments = api::all_experiments(&state).await.or_page()?;
    let b = &state.base;
    Ok(page(
        b,
        "Experiments",
        "experiments",
        html! {
            h1 { "Experiments" }
            table #experiments {
                tr { th { "Name" } th { "Id" } th { "Created" } th { "Updated" } }
                @for e in &experiments {
                    tr {
                        td { a href={ (b) "/experiments/" (q(e.experiment_id.as_str())) } { (e.name.as_str()) } }
                        td { code { (e.experiment_id.as_str()) } }
                        td { (view::time(e.creation_time)) }
                        td { (view::time(e.last_update_time)) }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize, Default)]
struct ExperimentQuery {
    filter: Option<String>,
    order_by: Option<String>,
    columns: Option<String>,
    page_token: Option<String>,
    max_results: Option<usize>,
    group_by: Option<String>,
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

async fn experiment(AxState(state): St, P(id): P<String>, Q(qy): Q<ExperimentQuery>) -> PageResult {
    let b = state.base.clone();
    let id: ExperimentId = parse("experiment id", &id).or_page()?;
    let experiment = state.tracker.get_experiment(&id).await.or_page()?;
    let order_by = split_list(qy.order_by.as_deref());
    let max_results = qy.max_results.unwrap_or(100);
    let searched = api::search_runs(
        &state,
        &[id.as_str().to_string()],
        qy.filter.as_deref(),
        &order_by,
        max_results,
        qy.page_token.clone(),
    )
    .await;
    // A bad filter is shown beside the box; anything else is the error page.
    let (runs, next, error) = match searched {
        Ok(page) => (page.items, page.next_page_token, None),
        Err(e) if e.is_invalid_argument() => (vec![], None, Some(e.to_string())),
        Err(e) => return Err(crate::UiError::page(e)),
    };
    let mut columns: Vec<Column> = split_list(qy.columns.as_deref())
        .iter()
        .filter_map(|c| Column::parse(c))
        .collect();
    let (mut metric_keys, mut param_keys) = (BTreeSet::new(), BTreeSet::new());
    for r in &runs {
        metric_keys.extend(r.data.metrics.keys().map(|k| k.as_str().to_string()));
        param_keys.extend(r.data.params.keys().map(|k| k.as_str().to_string()));
    }
    if columns.is_empty() {
        columns.extend(metric_keys.iter().take(8).map(|k| Column {
            kind: "metrics",
            key: k.clone(),
        }));
        columns.extend(param_keys.iter().take(8).map(|k| Column {
            kind: "params",
            key: k.clone(),
        }));
    }
    let columns_value = columns.iter().map(Column::id).collect::<Vec<_>>().join(",");
    let filter = qy.filter.clone().unwrap_or_default();
    let current_order = order_by.first().cloned().unwrap_or_default();
    // Every term, so paging keeps the whole order (page tokens are offsets into it).
    let full_order = order_by.join(",");
    let link = |order: &str, token: Option<&str>| {
        let mut s = format!(
            "{b}/experiments/{}?filter={}&columns={}&order_by={}&max_results={max_results}",
            q(id.as_str()),
            q(&filter),
            q(&columns_value),
            q(order)
        );
        if let Some(t) = token {
            s.push_str(&format!("&page_token={}", q(t)));
        }
        if let Some(g) = &qy.group_by {
            s.push_str(&format!("&group_by={}", q(g)));
        }
        s
    };
    let sort_link = |c: &Column| {
        let asc = format!("{} ASC", c.order_term());
        let desc = format!("{} DESC", c.order_term());
        if current_order == desc {
            link(&asc, None)
        } else {
            link(&desc, None)
        }
    };
    let arrow = |c: &Column| {
        if current_order == format!("{} DESC", c.order_term()) {
            " ▼"
        } else if current_order == format!("{} ASC", c.order_term()) {
            " ▲"
        } else {
            ""
        }
    };
    // Grouping: mean ± std of each metric column over the runs (of this page) per param value.
    let groups: Option<BTreeMap<String, Vec<&Run>>> =
        qy.group_by.as_ref().filter(|g| !g.is_empty()).map(|g| {
            let mut groups: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
            for r in &runs {
                let v = r
                    .data
                    .params
                    .get(g.as_str())
                    .cloned()
                    .unwrap_or_else(|| "(none)".into());
                groups.entry(v).or_default().push(r);
            }
            groups
        });
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let title = experiment.name.as_str().to_string();
    let body = html! {
        h1 { "Experiment " (experiment.name.as_str()) }
        form.bar method="get" action={ (b) "/experiments/" (q(id.as_str())) } {
            input type="text" name="filter" id="filter" value=(filter)
                placeholder="metrics.accuracy > 0.8 AND params.model = 'mlp'";
            input type="hidden" name="columns" value=(columns_value);
            input type="hidden" name="order_by" value=(full_order);
            input type="hidden" name="max_results" value=(max_results);
            label { "Group by param " input type="text" name="group_by" id="group_by" style="min-width:120px" value=(qy.group_by.clone().unwrap_or_default()); }
            button type="submit" id="search" { "Search" }
        }
        @if let Some(e) = &error { p.error id="filter-error" { (e) } }
        details {
            summary { "Columns" }
            form.bar method="get" action={ (b) "/experiments/" (q(id.as_str())) } {
                input type="hidden" name="filter" value=(filter);
                input type="hidden" name="order_by" value=(full_order);
                input type="hidden" name="max_results" value=(max_results);
                input type="hidden" name="group_by" value=(qy.group_by.clone().unwrap_or_default());
                input type="text" name="columns" id="columns" value=(columns_value);
                button type="submit" { "Show columns" }
                span.muted { "comma-separated: metrics.<key>, params.<key>, tags.<key>" }
            }
        }
        form method="get" action={ (b) "/compare" } {
            div.scroll { table #runs {
                tr {
                    th {}
                    th { "Run" }
                    th { a href=(sort_link(&Column { kind: "attributes", key: "start_time".into() })) { "Started" } }
                    th { "Status" }
                    @for c in &columns {
                        th { a href=(sort_link(c)) title=(c.id()) { (c.key) (arrow(c)) } }
                    }
                }
                @for r in &runs {
                    tr {
                        td { input type="checkbox" name="run" value=(r.info.run_id.as_str()); }
                        td { a.run href={ (b) "/runs/" (r.info.run_id.as_str()) } { (r.info.run_name) } }
                        td { (view::time(r.info.start_time)) }
                        td { (badge(r.info.status.as_str())) }
                        @for c in &columns {
                            @let cell = c.cell(r);
                            td class=@if c.kind == "metrics" { "num" } { (cell.unwrap_or_default()) }
                        }
                    }
                }
            } }
            @if runs.is_empty() && error.is_none() { p.empty { "No runs match." } }
            button type="submit" id="compare" { "Compare selected" }
        }
        p.pager {
            @if qy.page_token.is_some() { a.button href=(link(&full_order, None)) { "First page" } " " }
            @if let Some(t) = &next { a.button #next href=(link(&full_order, Some(t))) { "Next page" } }
        }
        @if let Some(groups) = &groups {
            h2 { "Grouped by " (qy.group_by.clone().unwrap_or_default()) }
            @let page_runs = runs.iter().take(MAX_RUNS).map(|r| r.info.run_id.as_str()).collect::<Vec<_>>().join(",");
            p { "Histories as mean ± std bands: "
                @for c in columns.iter().filter(|c| c.kind == "metrics") {
                    a.band-chart href={ (b) "/chart?runs=" (q(&page_runs)) "&key=" (q(&c.key)) "&group_by=" (q(qy.group_by.as_deref().unwrap_or_default())) } { (c.key) } " "
                }
            }
            table #groups {
                tr { th { "Value" } th { "Runs" }
                    @for c in columns.iter().filter(|c| c.kind == "metrics") { th { (c.key) " (mean ± std)" } } }
                @for (value, members) in groups {
                    tr {
                        td { (value) } td.num { (members.len()) }
                        @for c in columns.iter().filter(|c| c.kind == "metrics") {
                            @let values: Vec<f64> = members.iter().filter_map(|r| r.metric(&c.key)).collect();
                            td.num { @if !values.is_empty() {
                                @let (mean, std) = mean_std(&values);
                                (view::value(mean)) " ± " (view::value(std))
                            } }
                        }
                    }
                }
            }
        }
    };
    let mut response = page(&b, &title, "experiments", body);
    *response.status_mut() = status;
    Ok(response)
}

async fn run(AxState(state): St, P(run_id): P<String>) -> PageResult {
    let b = state.base.clone();
    let run_id: RunId = parse("run id", &run_id).or_page()?;
    let run = state.tracker.get_run(&run_id).await.or_page()?;
    let children = api::children(&state, &run).await.or_page()?;
    let versions = api::versions_of_run(&state, &run_id).await.or_page()?;
    let experiment = state
        .tracker
        .get_experiment(&run.info.experiment_id)
        .await
        .or_page()?;
    let info = &run.info;
    let body = html! {
        h1 { "Run " span #run-name { (info.run_name) } }
        div.cards {
            div.card { div.k { "Status" } div.v { (badge(info.status.as_str())) } }
            div.card { div.k { "Experiment" } div.v { a href={ (b) "/experiments/" (q(experiment.experiment_id.as_str())) } { (experiment.name.as_str()) } } }
            div.card { div.k { "Started" } div.v { (view::time(info.start_time)) } }
            @if let Some(end) = info.end_time { div.card { div.k { "Duration" } div.v { (view::duration(end.saturating_sub(info.start_time))) } } }
            div.card { div.k { "Run id" } div.v { code { (info.run_id.as_str()) } } }
        }
        @if let Some(parent) = run.parent_run_id() {
            p { "Parent run: " a #parent href={ (b) "/runs/" (q(parent)) } { (parent) } }
        }
        h2 { "Metrics" }
        table #metrics {
            tr { th { "Key" } th { "Latest" } th { "Step" } th {} }
            @for (k, m) in &run.data.metrics {
                tr {
                    td { (k.as_str()) }
                    td.num { (view::value(m.value)) }
                    td.num { (m.step) }
                    td { a href={ (b) "/chart?runs=" (q(info.run_id.as_str())) "&key=" (q(k.as_str())) } { "chart" } }
                }
            }
        }
        h2 { "Parameters" }
        table #params {
            tr { th { "Key" } th { "Value" } }
            @for (k, v) in &run.data.params { tr { td { (k.as_str()) } td { (v) } } }
        }
        h2 { "Tags" }
        table #tags {
            tr { th { "Key" } th { "Value" } }
            @for (k, v) in &run.data.tags { tr { td { (k.as_str()) } td { (v) } } }
        }
        @if !run.inputs.dataset_inputs.is_empty() {
            h2 { "Dataset inputs" }
            table #inputs {
                tr { th { "Dataset" } th { "Context" } th { "Digest" } th { "Source" } }
                @for input in &run.inputs.dataset_inputs {
                    @let d = &input.dataset;
                    @let base_name = d.name.split('@').next().unwrap_or(&d.name);
                    tr {
                        td { a href={ (b) "/datasets/" (q(base_name)) } { (d.name) } }
                        td { (input.context().unwrap_or("")) }
                        td { code { (d.digest) } }
                        td { (d.source) }
                    }
                }
            }
        }
        @if !children.is_empty() {
            h2 { "Child runs" }
            table #children {
                tr { th { "Run" } th { "Status" } th { "Started" } }
                @for c in &children {
                    tr { td { a href={ (b) "/runs/" (c.run_id.as_str()) } { (c.run_name) } } td { (badge(c.status.as_str())) } td { (view::time(c.start_time)) } }
                }
            }
        }
        @if !versions.is_empty() {
            h2 { "Model versions from this run" }
            ul #versions { @for v in &versions {
                li { a href={ (b) "/models/" (q(v.name.as_str())) "/versions/" (v.version) } { (v.name.as_str()) " v" (v.version) } }
            } }
        }
        @if run.data.tags.contains_key(mlops_drift::history::DRIFT_TAG) {
            p { a #drift-report href={ (b) "/drift/" (info.run_id.as_str()) } { "This run holds a drift report" } }
        }
        h2 { a #artifacts href={ (b) "/runs/" (info.run_id.as_str()) "/artifacts" } { "Artifacts" } }
    };
    Ok(page(&b, &info.run_name, "experiments", body))
}

async fn artifacts(
    AxState(state): St,
    P(run_id): P<String>,
    Q(qy): Q<api::PathQuery>,
) -> PageResult {
    let b = state.base.clone();
    let run_id: RunId = parse("run id", &run_id).or_page()?;
    let run = state.tracker.get_run(&run_id).await.or_page()?;
    let path = api::artifact_path(qy.path.as_deref()).or_page()?;
    let files = state
        .tracker
        .list_artifacts(&run_id, path.as_ref())
        .await
        .or_page()?;
    let here = path
        .as_ref()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let rid = run_id.as_str();
    let crumbs: Vec<(String, String)> = {
        let mut acc = String::new();
        here.split('/')
            .filter(|s| !s.is_empty())
            .map(|seg| {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(seg);
                (seg.to_string(), acc.clone())
            })
            .collect()
    };
    let header = html! {
        h1 { "Artifacts of " a href={ (b) "/runs/" (rid) } { (run.info.run_name) } }
        p.crumbs {
            a href={ (b) "/runs/" (rid) "/artifacts" } { "root" }
            @for (seg, full) in &crumbs { " / " a href={ (b) "/runs/" (rid) "/artifacts?path=" (q(full)) } { (seg) } }
        }
    };
    // A file: the listing holds exactly it.
    if let Some(file) = files
        .iter()
        .find(|f| f.path.as_str() == here && !here.is_empty())
    {
        let download = format!("{b}/api/runs/{rid}/artifact?path={}", q(&here));
        let kind = api::content_type(&here);
        let preview = if file.size as usize > state.max_preview_bytes {
            html! { p.muted { "Too large to preview (" (view::bytes(file.size)) ")." } }
        } else if kind.starts_with("image/") {
            html! { img.preview src=(download) alt=(here); }
        } else {
            let bytes = state
                .tracker
                .get_artifact(&run_id, &file.path)
                .await
                .or_page()?;
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    let text = if kind == "application/json" {
                        serde_json::from_str::<serde_json::Value>(text)
                            .ok()
                            .and_then(|v| serde_json::to_string_pretty(&v).ok())
                            .unwrap_or_else(|| text.to_string())
                    } else {
                        text.to_string()
                    };
                    html! { pre.preview #preview { (text) } }
                }
                Err(_) => html! { p.muted { "Binary file; download it to look inside." } },
            }
        };
        return Ok(page(
            &b,
            &here,
            "experiments",
            html! {
                (header)
                p { (view::bytes(file.size)) " · blake3 " code { (file.digest.to_hex()) } " · " a #download href=(download) { "Download" } }
                (preview)
            },
        ));
    }
    // A folder: its immediate children.
    let prefix = if here.is_empty() {
        String::new()
    } else {
        format!("{here}/")
    };
    let mut folders: BTreeMap<String, u64> = BTreeMap::new();
    let mut leaves = vec![];
    for f in &files {
        let Some(rest) = f.path.as_str().strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((dir, _)) => *folders.entry(dir.to_string()).or_default() += f.size,
            None => leaves.push(f),
        }
    }
    if files.is_empty() && !here.is_empty() {
        return Err(crate::UiError::page(Error::not_found("artifact", here)));
    }
    Ok(page(
        &b,
        "Artifacts",
        "experiments",
        html! {
            (header)
            table #artifact-list {
                tr { th { "Name" } th { "Size" } }
                @for (dir, size) in &folders {
                    tr { td { "📁 " a href={ (b) "/runs/" (rid) "/artifacts?path=" (q(&format!("{prefix}{dir}"))) } { (dir) "/" } } td.num { (view::bytes(*size)) } }
                }
                @for f in &leaves {
                    @let name = f.path.as_str().rsplit('/').next().unwrap_or_default();
                    tr { td { a href={ (b) "/runs/" (rid) "/artifacts?path=" (q(f.path.as_str())) } { (name) } } td.num { (view::bytes(f.size)) } }
                }
            }
            @if files.is_empty() { p.empty { "This run has no artifacts." } }
        },
    ))
}

#[derive(Deserialize)]
struct ChartQuery {
    runs: Option<String>,
    key: Option<String>,
    #[serde(default)]
    x: XAxis,
    log: Option<String>,
    smooth: Option<f64>,
    points: Option<usize>,
    group_by: Option<String>,
}

/// How a chart is drawn.
struct ChartOptions<'a> {
    x: XAxis,
    log_y: bool,
    smooth: f64,
    points: usize,
    /// Draw one mean line ± std band per value of this param instead of a line per run.
    group_by: Option<&'a str>,
}

impl Default for ChartOptions<'_> {
    fn default() -> Self {
        Self {
            x: XAxis::Step,
            log_y: false,
            smooth: 0.0,
            points: crate::DEFAULT_CHART_POINTS,
            group_by: None,
        }
    }
}

/// Loads `key` for each run and draws it.
async fn chart_for(
    state: &State,
    runs: &[Run],
    key: &str,
    options: &ChartOptions<'_>,
) -> Result<Markup, crate::UiError> {
    let key: MetricKey = parse("metric key", key).or_page()?;
    // Every run's history at once; smoothing and group means see every value, and only what
    // is drawn is downsampled.
    let histories = futures::future::try_join_all(
        runs.iter()
            .map(|r| api::raw_history(state, &r.info.run_id, &key, options.x)),
    )
    .await
    .or_page()?;
    let total: usize = histories.iter().map(Vec::len).sum();
    let smoothed = histories.iter().map(|h| chart::smooth(h, options.smooth));
    let series: Vec<Series> = match options.group_by {
        Some(param) => {
            let members: Vec<(String, Vec<chart::Point>)> = runs
                .iter()
                .zip(smoothed)
                .map(|(r, points)| {
                    let value = r
                        .data
                        .params
                        .get(param)
                        .cloned()
                        .unwrap_or_else(|| "(none)".into());
                    (format!("{param}={value}"), points)
                })
                .collect();
            chart::group_bands(&members, 200)
        }
        None => runs
            .iter()
            .zip(smoothed)
            .map(|(r, points)| {
                Series::line(
                    r.info.run_name.clone(),
                    chart::downsample(&points, options.points.clamp(3, 100_000)),
                )
            })
            .collect(),
    };
    let x_label = match options.x {
        XAxis::Step => "step",
        XAxis::Time => "time (UTC)",
    };
    Ok(html! {
        (chart::line_chart(&series, options.log_y, x_label, options.x == XAxis::Time))
        p.legend {
            @for (i, s) in series.iter().enumerate() {
                span { i style={ "background:" (chart::color(i)) } {} (s.name) " (" (s.points.len()) " points)" }
            }
            span.muted #total { (total) " values in all" }
        }
    })
}

/// Most runs one chart or comparison loads.
const MAX_RUNS: usize = 100;

async fn load_runs(state: &State, ids: &[String]) -> Result<Vec<Run>, crate::UiError> {
    if ids.is_empty() {
        return Err(crate::UiError::page(Error::invalid(
            "runs",
            "choose at least one run",
        )));
    }
    if ids.len() > MAX_RUNS {
        return Err(crate::UiError::page(Error::invalid(
            "runs",
            format!(
                "{} runs chosen; a chart or comparison takes at most {MAX_RUNS}",
                ids.len()
            ),
        )));
    }
    let ids: Vec<RunId> = ids
        .iter()
        .map(|id| parse("run id", id))
        .collect::<mlops_core::Result<_>>()
        .or_page()?;
    futures::future::try_join_all(ids.iter().map(|id| state.tracker.get_run(id)))
        .await
        .or_page()
}

async fn chart_page(AxState(state): St, Q(qy): Q<ChartQuery>) -> PageResult {
    let b = state.base.clone();
    let ids = split_list(qy.runs.as_deref());
    let runs = load_runs(&state, &ids).await?;
    let keys: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.data.metrics.keys().map(|k| k.as_str().to_string()))
        .collect();
    let key = match qy
        .key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| keys.iter().next().cloned())
    {
        Some(k) => k,
        None => {
            return Err(crate::UiError::page(Error::not_found(
                "metric",
                "these runs logged no metrics",
            )));
        }
    };
    let log_y = qy
        .log
        .as_deref()
        .is_some_and(|v| v == "1" || v == "on" || v == "true");
    let smooth = qy
        .smooth
        .filter(|s| s.is_finite())
        .unwrap_or(0.0)
        .clamp(0.0, 0.99);
    let group_by = qy.group_by.clone().filter(|g| !g.trim().is_empty());
    let options = ChartOptions {
        x: qy.x,
        log_y,
        smooth,
        points: qy.points.unwrap_or(crate::DEFAULT_CHART_POINTS),
        group_by: group_by.as_deref(),
    };
    let svg = chart_for(&state, &runs, &key, &options).await?;
    let runs_value = ids.join(",");
    Ok(page(
        &b,
        &key,
        "experiments",
        html! {
            h1 { "Metric " span #metric { (key) } }
            form.bar method="get" action={ (b) "/chart" } {
                input type="hidden" name="runs" value=(runs_value);
                label { "Metric " select name="key" id="key" { @for k in &keys { option value=(k) selected[*k == key] { (k) } } } }
                label { "X " select name="x" id="x" {
                    option value="step" selected[qy.x == XAxis::Step] { "step" }
                    option value="time" selected[qy.x == XAxis::Time] { "time" }
                } }
                label { input type="checkbox" name="log" id="log" value="1" checked[log_y]; " log scale" }
                label { "Smoothing " input type="number" name="smooth" id="smooth" min="0" max="0.99" step="0.05" value=(smooth); }
                label { "Group by param " input type="text" name="group_by" id="chart-group-by" style="min-width:100px" value=(group_by.clone().unwrap_or_default()); }
                button type="submit" id="draw" { "Draw" }
            }
            (svg)
            p { @for r in &runs { a href={ (b) "/runs/" (r.info.run_id.as_str()) } { (r.info.run_name) } " " } }
        },
    ))
}

async fn compare(AxState(state): St, Q(pairs): Q<Vec<(String, String)>>) -> PageResult {
    let b = state.base.clone();
    let mut ids: Vec<String> = vec![];
    let mut key = None;
    for (k, v) in pairs {
        match k.as_str() {
            "run" => ids.push(v),
            "runs" => ids.extend(split_list(Some(&v))),
            "key" => key = Some(v),
            _ => {}
        }
    }
    let runs = load_runs(&state, &ids).await?;
    let param_keys: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.data.params.keys().map(|k| k.as_str().to_string()))
        .collect();
    let metric_keys: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.data.metrics.keys().map(|k| k.as_str().to_string()))
        .collect();
    let key = key
        .filter(|k| metric_keys.contains(k))
        .or_else(|| metric_keys.iter().next().cloned());
    let chart = match &key {
        Some(k) => Some(chart_for(&state, &runs, k, &ChartOptions::default()).await?),
        None => None,
    };
    // Parallel coordinates over numeric params, then metrics.
    let numeric = |p: &String| {
        runs.iter().all(|r| {
            r.data
                .params
                .get(p.as_str())
                .is_none_or(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
        })
    };
    let dims: Vec<Column> = param_keys
        .iter()
        .filter(|p| numeric(p))
        .map(|p| Column {
            kind: "params",
            key: p.clone(),
        })
        .chain(metric_keys.iter().map(|m| Column {
            kind: "metrics",
            key: m.clone(),
        }))
        .collect();
    let axes: Vec<String> = dims.iter().map(Column::id).collect();
    let number = |c: &Column, r: &Run| match c.kind {
        "params" => r
            .data
            .params
            .get(c.key.as_str())
            .and_then(|v| v.parse().ok()),
        _ => r.metric(&c.key),
    };
    let rows: Vec<(String, Vec<Option<f64>>)> = runs
        .iter()
        .map(|r| {
            (
                r.info.run_name.clone(),
                dims.iter().map(|c| number(c, r)).collect(),
            )
        })
        .collect();
    let differs = |vals: &[Option<String>]| vals.windows(2).any(|w| w[0] != w[1]);
    let runs_value = ids.join(",");
    Ok(page(
        &b,
        "Compare runs",
        "experiments",
        html! {
            h1 { "Compare " (runs.len()) " runs" }
            table #compare-runs {
                tr { th { "Run" } @for r in &runs { th { a href={ (b) "/runs/" (r.info.run_id.as_str()) } { (r.info.run_name) } } } }
                tr { td { "Status" } @for r in &runs { td { (badge(r.info.status.as_str())) } } }
            }
            h2 { "Parameters" }
            table #param-diff {
                tr { th { "Param" } @for r in &runs { th { (r.info.run_name) } } }
                @for p in &param_keys {
                    @let vals: Vec<Option<String>> = runs.iter().map(|r| r.data.params.get(p.as_str()).cloned()).collect();
                    tr class=@if differs(&vals) { "diff" } { td { (p) } @for v in &vals { td { (v.clone().unwrap_or_default()) } } }
                }
            }
            h2 { "Metrics" }
            table #metric-diff {
                tr { th { "Metric" } @for r in &runs { th { (r.info.run_name) } } }
                @for m in &metric_keys {
                    @let vals: Vec<Option<String>> = runs.iter().map(|r| r.metric(m).map(view::value)).collect();
                    tr class=@if differs(&vals) { "diff" } {
                        td { a href={ (b) "/chart?runs=" (q(&runs_value)) "&key=" (q(m)) } { (m) } }
                        @for v in &vals { td.num { (v.clone().unwrap_or_default()) } }
                    }
                }
            }
            @if let (Some(k), Some(chart)) = (&key, &chart) {
                h2 { "History of " (k) }
                form.bar method="get" action={ (b) "/compare" } {
                    input type="hidden" name="runs" value=(runs_value);
                    select name="key" { @for m in &metric_keys { option value=(m) selected[m == k] { (m) } } }
                    button type="submit" { "Show" }
                }
                (chart)
            }
            h2 { "Parallel coordinates" }
            (chart::parallel_coordinates(&axes, &rows))
        },
    ))
}

async fn models(AxState(state): St, Q(qy): Q<api::FilterQuery>) -> PageResult {
    let b = state.base.clone();
    let models = api::all_models(&state, qy.filter.as_deref())
        .await
        .or_page()?;
    Ok(page(
        &b,
        "Models",
        "models",
        html! {
            h1 { "Registered models" }
            table #models {
                tr { th { "Name" } th { "Latest" } th { "Aliases" } th { "Updated" } th { "Description" } }
                @for m in &models {
                    tr {
                        td { a href={ (b) "/models/" (q(m.name.as_str())) } { (m.name.as_str()) } }
                        td { @for v in &m.latest_versions { "v" (v.version) " " } }
                        td { @for (alias, v) in &m.aliases { span.badge { "@" (alias.as_str()) " → v" (v) } } }
                        td { (view::time(m.last_updated_timestamp)) }
                        td { (m.description) }
                    }
                }
            }
            @if models.is_empty() { p.empty { "No registered models yet." } }
        },
    ))
}

fn version_row(b: &str, v: &ModelVersion) -> Markup {
    html! {
        tr {
            td { a href={ (b) "/models/" (q(v.name.as_str())) "/versions/" (v.version) } { "v" (v.version) } }
            td { (v.current_stage.as_str()) }
            td { @for a in &v.aliases { span.badge.alias { "@" (a.as_str()) } } }
            td { @if let Some(r) = &v.run_id { a href={ (b) "/runs/" (r.as_str()) } { code { (r.as_str()) } } } }
            td { (view::time(v.creation_timestamp)) }
        }
    }
}

async fn model(AxState(state): St, P(name): P<String>) -> PageResult {
    let b = state.base.clone();
    let name: ModelName = parse("model name", &name).or_page()?;
    let m = state.registry.get_registered_model(&name).await.or_page()?;
    let versions = api::model_versions(&state, &name).await.or_page()?;
    Ok(page(
        &b,
        name.as_str(),
        "models",
        html! {
            h1 { "Model " span #model-name { (name.as_str()) } }
            @if !m.description.is_empty() { p { (m.description) } }
            h2 { "Versions" }
            table #model-versions {
                tr { th { "Version" } th { "Stage" } th { "Aliases" } th { "Run" } th { "Created" } }
                @for v in &versions { (version_row(&b, v)) }
            }
            @if !m.tags.is_empty() {
                h2 { "Tags" }
                table { @for (k, v) in &m.tags { tr { td { (k.as_str()) } td { (v) } } } }
            }
        },
    ))
}

/// The lineage graph: datasets → run → commit → version → aliases, as boxes and arrows.
fn lineage_graph(b: &str, v: &ModelVersion, run_name: Option<&str>) -> Markup {
    struct Node {
        label: String,
        href: Option<String>,
    }
    let datasets: Vec<Node> = v
        .lineage
        .datasets
        .iter()
        .map(|d| Node {
            label: format!("{}@{}", d.name.as_str(), d.version),
            href: Some(format!("{b}/datasets/{}", q(d.name.as_str()))),
        })
        .collect();
    let run_id = v.lineage.run_id.as_ref().or(v.run_id.as_ref());
    let mut columns: Vec<Vec<Node>> = vec![];
    if !datasets.is_empty() {
        columns.push(datasets);
    }
    if let Some(r) = run_id {
        columns.push(vec![Node {
            label: format!("run {}", run_name.unwrap_or(r.as_str())),
            href: Some(format!("{b}/runs/{}", r.as_str())),
        }]);
    }
    if let Some(c) = &v.lineage.git_commit {
        columns.push(vec![Node {
            label: format!("commit {}", c.chars().take(10).collect::<String>()),
            href: None,
        }]);
    }
    columns.push(vec![Node {
        label: format!("{} v{}", v.name.as_str(), v.version),
        href: None,
    }]);
    if !v.aliases.is_empty() {
        columns.push(
            v.aliases
                .iter()
                .map(|a| Node {
                    label: format!("@{}", a.as_str()),
                    href: None,
                })
                .collect(),
        );
    }
    let (bw, bh, gap_x, gap_y) = (170.0, 34.0, 60.0, 14.0);
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let height = rows * (bh + gap_y) + gap_y;
    let width = columns.len() as f64 * (bw + gap_x);
    let pos = |c: usize, i: usize, n: usize| {
        let top = (height - n as f64 * (bh + gap_y) + gap_y) / 2.0;
        (
            10.0 + c as f64 * (bw + gap_x),
            top + i as f64 * (bh + gap_y),
        )
    };
    html! {
        svg.lineage #lineage viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) role="img" aria-label="lineage" {
            defs { marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto" { path d="M0,0 L10,5 L0,10 z" fill="#9ca3af" {} } }
            @for c in 1..columns.len() {
                @for i in 0..columns[c - 1].len() {
                    @for j in 0..columns[c].len() {
                        @let (x1, y1) = pos(c - 1, i, columns[c - 1].len());
                        @let (x2, y2) = pos(c, j, columns[c].len());
                        line x1=(x1 + bw) y1=(y1 + bh / 2.0) x2=(x2) y2=(y2 + bh / 2.0) {}
                    }
                }
            }
            @for (c, col) in columns.iter().enumerate() {
                @for (i, node) in col.iter().enumerate() {
                    @let (x, y) = pos(c, i, col.len());
                    @let label: String = if node.label.chars().count() > 24 {
                        node.label.chars().take(23).chain(['…']).collect()
                    } else {
                        node.label.clone()
                    };
                    @if let Some(href) = &node.href {
                        a href=(href) { title { (node.label) } rect x=(x) y=(y) width=(bw) height=(bh) rx="6" {} text x=(x + 8.0) y=(y + 21.0) { (label) } }
                    } @else {
                        g { title { (node.label) } rect x=(x) y=(y) width=(bw) height=(bh) rx="6" {} text x=(x + 8.0) y=(y + 21.0) { (label) } }
                    }
                }
            }
        }
    }
}

/// The version's model directory when it is stored here (`tree:<digest>`): its files and its
/// `model_card.json`, pretty-printed. Anything else (an external source, a missing tree) shows
/// no card rather than failing the page.
async fn model_card(
    state: &State,
    v: &ModelVersion,
) -> Option<(Vec<(String, u64)>, Option<String>)> {
    let store = state.store.as_ref()?;
    let digest: mlops_core::Digest = v
        .source
        .strip_prefix(mlops_storage::MODEL_SOURCE_PREFIX)?
        .parse()
        .ok()?;
    let artifacts = mlops_storage::Artifacts::new(store.clone());
    let tree = artifacts.tree(&digest).await.ok()?;
    let files = tree
        .files
        .iter()
        .map(|(p, e)| (p.as_str().to_string(), e.size))
        .collect();
    let card = match artifacts.read_file(&tree, "model_card.json").await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|j| serde_json::to_string_pretty(&j).ok()),
        Err(_) => None,
    };
    Some((files, card))
}

/// A signature's inputs or outputs: name, type, shape or requiredness.
fn schema_table(title: &str, schema: &mlops_core::signature::Schema) -> Markup {
    use mlops_core::signature::Schema;
    html! {
        table.signature {
            @match schema {
                Schema::Columns(columns) => {
                    tr { th { (title) } th { "Type" } th { "Required" } }
                    @for c in columns {
                        tr { td { (c.name.clone().unwrap_or_default()) } td { code { (c.col_type.as_str()) } } td { (if c.required { "yes" } else { "no" }) } }
                    }
                }
                Schema::Tensors(tensors) => {
                    tr { th { (title) } th { "Type" } th { "Shape" } }
                    @for t in tensors {
                        @let shape = t.shape.iter().map(|d| if *d < 0 { "-1".to_string() } else { d.to_string() }).collect::<Vec<_>>().join(", ");
                        tr { td { (t.name.clone().unwrap_or_default()) } td { code { (t.datatype.to_string()) } } td { code { "[" (shape) "]" } } }
                    }
                }
            }
        }
    }
}

fn decisions_table(entries: &[mlops_policy::log::LogEntry]) -> Markup {
    html! {
        table #decisions {
            tr { th { "#" } th { "Time" } th { "Action" } th { "Model" } th { "Decision" } th { "Reasons" } }
            @for e in entries {
                @let action = e.input["action"].as_str().unwrap_or("").to_string();
                @let alias = e.input["alias"].as_str().map(|a| format!(" @{a}")).unwrap_or_default();
                @let model = format!("{} v{}", e.input["model"]["name"].as_str().unwrap_or("?"), e.input["model"]["version"].as_u64().map(|v| v.to_string()).unwrap_or_default());
                tr {
                    td.num { (e.seq) }
                    td { (e.timestamp) }
                    td { (action) (alias) }
                    td { (model) }
                    td { (badge(if e.allowed { "allowed" } else { "denied" })) }
                    td { @for r in &e.reasons { div { (r) } } }
                }
            }
        }
    }
}

fn chain_status(d: &api::Decisions) -> Markup {
    let report = &d.log;
    html! {
        p #chain {
            "Decision log: "
            @if report.segments == 0 { (badge("ok")) "no decisions logged yet" }
            @else if report.is_ok() { (badge("ok")) (report.verified) " entries, hash chain verified" }
            @else { (badge("bad")) "chain broken after " (report.verified) " verified entries" }
        }
        @if let Some(problem) = &d.problem { p.error { "The log could not be read: " (problem) } }
    }
}

async fn model_version(AxState(state): St, P((name, version)): P<(String, String)>) -> PageResult {
    let b = state.base.clone();
    let name: ModelName = parse("model name", &name).or_page()?;
    let version: Version = parse("version", &version).or_page()?;
    let v = state
        .registry
        .get_model_version(&name, version)
        .await
        .or_page()?;
    let run_name = match v.lineage.run_id.as_ref().or(v.run_id.as_ref()) {
        Some(r) => state.tracker.get_run(r).await.ok().map(|r| r.info.run_name),
        None => None,
    };
    let decisions = api::decisions_for(&state, Some(name.as_str()), Some(version))
        .await
        .or_page()?;
    let card = model_card(&state, &v).await;

    Ok(page(
        &b,
        &format!("{} v{}", name.as_str(), version),
        "models",
        html! {
            h1 { a href={ (b) "/models/" (q(name.as_str())) } { (name.as_str()) } " v" (version) }
            div.cards {
                div.card { div.k { "Stage" } div.v { (v.current_stage.as_str()) } }
                div.card { div.k { "Aliases" } div.v #aliases { @for a in &v.aliases { span.badge { "@" (a.as_str()) } } } }
                div.card { div.k { "Status" } div.v { (badge(&serde_json::to_value(v.status).ok().and_then(|s| s.as_str().map(String::from)).unwrap_or_default())) } }
                div.card { div.k { "Created" } div.v { (view::time(v.creation_timestamp)) } }
            }
            p { "Source: " code { (v.source) } }
            h2 { "Lineage" }
            (lineage_graph(&b, &v, run_name.as_deref()))
            @if let Some(sig) = &v.signature {
                h2 { "Signature" }
                div #signature {
                    (schema_table("Inputs", &sig.inputs))
                    @if let Some(out) = &sig.outputs { (schema_table("Outputs", out)) }
                }
            }
            @if !v.tags.is_empty() {
                h2 { "Tags" }
                table #version-tags { @for (k, val) in &v.tags { tr { td { (k.as_str()) } td { (val) } } } }
            }
            @if let Some((files, card)) = &card {
                h2 { "Model card" }
                @if let Some(card) = card { pre.preview #model-card { (card) } }
                @else { p.muted { "This model directory has no " code { "model_card.json" } "." } }
                details { summary { "Files (" (files.len()) ")" }
                    table { @for (path, size) in files { tr { td { code { (path) } } td.num { (view::bytes(*size)) } } } }
                }
            }
            p { a #drift-link href={ (b) "/drift?model=" (q(name.as_str())) } { "Drift reports about " (name.as_str()) } }
            h2 { "Policy decisions" }
            @match &decisions {
                Some(d) => {
                    (chain_status(d))
                    @if d.decisions.is_empty() { p.empty { "No decisions about this version." } } @else { (decisions_table(&d.decisions)) }
                }
                None => p.empty { "Start the UI over a store to see its decision log." },
            }
        },
    ))
}

async fn datasets(AxState(state): St) -> PageResult {
    let b = state.base.clone();
    let list = api::datasets_of(&state).or_page()?.list().await.or_page()?;
    Ok(page(
        &b,
        "Datasets",
        "datasets",
        html! {
            h1 { "Datasets" }
            table #datasets {
                tr { th { "Name" } th { "Latest" } th { "Rows" } th { "Size" } th { "Committed" } }
                @for d in &list {
                    tr {
                        td { a href={ (b) "/datasets/" (q(d.name.as_str())) } { (d.name.as_str()) } }
                        td.num { "v" (d.version) }
                        td.num { (d.manifest.rows) }
                        td.num { (view::bytes(d.manifest.bytes)) }
                        td { (view::time(d.committed_ms)) }
                    }
                }
            }
            @if list.is_empty() { p.empty { "No datasets yet." } }
        },
    ))
}

#[derive(Deserialize)]
struct DatasetQuery {
    version: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn dataset(AxState(state): St, P(name): P<String>, Q(qy): Q<DatasetQuery>) -> PageResult {
    let b = state.base.clone();
    let name: DatasetName = parse("dataset name", &name).or_page()?;
    let datasets = api::datasets_of(&state).or_page()?;
    let versions = datasets.log(&name).await.or_page()?;
    let chosen = match qy.version.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => {
            let v: Version = parse("version", v).or_page()?;
            Some(
                versions
                    .iter()
                    .find(|d| d.version == v)
                    .ok_or_else(|| {
                        Error::not_found("dataset version", format!("{}@{v}", name.as_str()))
                    })
                    .or_page()?,
            )
        }
        None => versions.iter().max_by_key(|d| d.version),
    };
    let diff = match (qy.from.as_deref(), qy.to.as_deref()) {
        (Some(f), Some(t)) if !f.is_empty() && !t.is_empty() => {
            let (f, t): (Version, Version) = (
                parse("version", f).or_page()?,
                parse("version", t).or_page()?,
            );
            Some((f, t, datasets.diff(&name, f, t).await.or_page()?))
        }
        _ => None,
    };
    let n = name.as_str();
    Ok(page(
        &b,
        n,
        "datasets",
        html! {
            h1 { "Dataset " span #dataset-name { (n) } }
            table #dataset-versions {
                tr { th { "Version" } th { "Committed" } th { "Rows" } th { "Size" } th { "Columns" } th { "Message" } th { "Digest" } }
                @for d in versions.iter().rev() {
                    tr {
                        td { a href={ (b) "/datasets/" (q(n)) "?version=" (d.version) } { "v" (d.version) } }
                        td { (view::time(d.committed_ms)) }
                        td.num { (d.manifest.rows) }
                        td.num { (view::bytes(d.manifest.bytes)) }
                        td.num { (d.manifest.schema.len()) }
                        td { (d.message) }
                        td { code { (d.digest.to_hex().chars().take(12).collect::<String>()) } }
                    }
                }
            }
            @if let Some(d) = chosen {
                h2 { "v" (d.version) ": schema and column statistics" }
                table #columns {
                    tr { th { "Column" } th { "Type" } th { "Nulls" } th { "Min" } th { "Max" } th { "Distinct (est.)" } }
                    @for c in &d.manifest.columns {
                        tr {
                            td { (c.name) } td { code { (c.data_type) } } td.num { (c.null_count) }
                            td { (c.min.as_ref().map(|v| v.to_string()).unwrap_or_default()) }
                            td { (c.max.as_ref().map(|v| v.to_string()).unwrap_or_default()) }
                            td.num { (c.distinct_estimate.map(|v| v.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            }
            h2 { "Schema diff" }
            form.bar method="get" action={ (b) "/datasets/" (q(n)) } {
                label { "from " input type="number" name="from" id="from" min="1" value=(qy.from.clone().unwrap_or_default()); }
                label { "to " input type="number" name="to" id="to" min="1" value=(qy.to.clone().unwrap_or_default()); }
                button type="submit" id="diff" { "Diff" }
            }
            @if let Some((f, t, diff)) = &diff {
                @if diff.is_empty() { p #schema-diff { "v" (f) " → v" (t) ": same schema." } }
                @else { ul #schema-diff { @for line in diff.lines() { li { code { (line) } } } } }
            }
        },
    ))
}

async fn pipelines(AxState(state): St, Q(qy): Q<api::PipelinesQuery>) -> PageResult {
    let b = state.base.clone();
    let mut runs = api::pipeline_runs(&state, qy.experiment.as_deref())
        .await
        .or_page()?;
    runs.reverse();
    let total: f64 = runs.iter().map(|r| r.cost).sum();
    let currency = runs.first().map(|r| r.currency.clone()).unwrap_or_default();
    Ok(page(
        &b,
        "Pipelines",
        "pipelines",
        html! {
            h1 { "Pipeline runs" }
            div.cards {
                div.card { div.k { "Runs" } div.v { (runs.len()) } }
                div.card { div.k { "Total cost" } div.v #total-cost { (format!("{total:.4}")) " " (currency) } }
            }
            @for p in &runs {
                h2 { a href={ (b) "/runs/" (p.run_id.as_str()) } { (p.pipeline) } " " (badge(p.status.as_str())) span.muted { " " (view::time(p.start_time)) " · " (format!("{:.1}s", p.wall_seconds)) " · cost " (format!("{:.4}", p.cost)) " " (p.currency) } }
                (pipeline_dag(&b, &p.steps))
            table.pipeline {
                    tr { th { "Step" } th { "Status" } th { "Cache" } th { "Wall" } th { "CPU" } th { "GPU" } th { "Cost" } }
                    @for s in &p.steps {
                        tr {
                            td { a href={ (b) "/runs/" (s.run_id.as_str()) } { (s.step) } }
                            td { (badge(&s.status)) }
                            td { (badge(&s.cache)) }
                            td.num { (format!("{:.2}s", s.wall_seconds)) }
                            td.num { (format!("{:.2}s", s.cpu_seconds)) }
                            td.num { (format!("{:.2}s", s.gpu_seconds)) }
                            td.num { (format!("{:.4}", s.cost)) }
                        }
                    }
                }
            }
            @if runs.is_empty() { p.empty { "No pipeline runs in this store." } }
        },
    ))
}

/// A pipeline run's steps as a DAG: columns by depth (longest path from a root), edges from
/// each step's `needs`, boxes coloured by status and labelled with cache and duration.
fn pipeline_dag(b: &str, steps: &[mlops_pipeline::tracking::StepRun]) -> Markup {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step.as_str(), i))
        .collect();
    let mut depth = vec![0usize; steps.len()];
    // Longest path by relaxation; a cycle cannot be recorded, but stop after n rounds anyway.
    for _ in 0..steps.len() {
        let mut changed = false;
        for (i, s) in steps.iter().enumerate() {
            for n in &s.needs {
                if let Some(&j) = index.get(n.as_str())
                    && depth[i] < depth[j] + 1
                {
                    depth[i] = depth[j] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let columns = depth.iter().max().map_or(0, |d| d + 1);
    let mut rows_in = vec![0usize; columns];
    let mut slot = vec![(0usize, 0usize); steps.len()];
    for (i, d) in depth.iter().enumerate() {
        slot[i] = (*d, rows_in[*d]);
        rows_in[*d] += 1;
    }
    let (bw, bh, gx, gy) = (170.0, 40.0, 50.0, 12.0);
    let rows = rows_in.iter().copied().max().unwrap_or(1) as f64;
    let (width, height) = (columns as f64 * (bw + gx) + 10.0, rows * (bh + gy) + gy);
    let pos = |i: usize| {
        (
            10.0 + slot[i].0 as f64 * (bw + gx),
            gy + slot[i].1 as f64 * (bh + gy),
        )
    };
    let fill = |status: &str| match status {
        "succeeded" | "cached" => "#dcfce7",
        "failed" => "#fee2e2",
        _ => "#f3f4f6",
    };
    html! {
        svg.lineage.dag viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) role="img" aria-label="pipeline graph" {
            defs { marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto" { path d="M0,0 L10,5 L0,10 z" fill="#9ca3af" {} } }
            @for (i, s) in steps.iter().enumerate() {
                @for n in &s.needs {
                    @if let Some(&j) = index.get(n.as_str()) {
                        @let ((x1, y1), (x2, y2)) = (pos(j), pos(i));
                        line x1=(x1 + bw) y1=(y1 + bh / 2.0) x2=(x2) y2=(y2 + bh / 2.0) {}
                    }
                }
            }
            @for (i, s) in steps.iter().enumerate() {
                @let (x, y) = pos(i);
                a href={ (b) "/runs/" (s.run_id.as_str()) } {
                    title { (s.step) ": " (s.status) }
                    rect x=(x) y=(y) width=(bw) height=(bh) rx="6" style={ "fill:" (fill(&s.status)) } {}
                    text x=(x + 8.0) y=(y + 16.0) { (s.step) }
                    text.tick x=(x + 8.0) y=(y + 32.0) { (s.status) @if s.cache == "hit" { " (hit)" } " · " (format!("{:.2}s", s.wall_seconds)) }
                }
            }
        }
    }
}

async fn decisions(AxState(state): St) -> PageResult {
    let b = state.base.clone();
    let found = api::decisions_for(&state, None, None).await.or_page()?;
    Ok(page(
        &b,
        "Decisions",
        "decisions",
        html! {
            h1 { "Policy decisions" }
            @match &found {
                Some(d) => { (chain_status(d)) (decisions_table(&d.decisions)) }
                None => p.empty { "Start the UI over a store to see its decision log." },
            }
        },
    ))
}

/// One line per model version: the share of drifted columns of each report over time.
fn share_series(list: &[&mlops_drift::history::LoggedReport]) -> Vec<Series> {
    let mut versions: BTreeMap<Option<u64>, Vec<chart::Point>> = BTreeMap::new();
    for r in list {
        versions.entry(r.version).or_default().push(chart::Point {
            x: r.time_ms as f64,
            y: r.share_drifted,
        });
    }
    versions
        .into_iter()
        .map(|(v, points)| {
            Series::line(
                v.map_or_else(|| "no version".to_string(), |v| format!("v{v}")),
                points,
            )
        })
        .collect()
}

async fn drift(AxState(state): St, Q(qy): Q<api::ModelQuery>) -> PageResult {
    let b = state.base.clone();
    let reports = api::drift_history(&state, qy.model.as_deref())
        .await
        .or_page()?;
    // Per model: a share-drifted-over-time line per version, and the reports newest first.
    let mut by_model: BTreeMap<String, Vec<&mlops_drift::history::LoggedReport>> = BTreeMap::new();
    for r in &reports {
        by_model
            .entry(r.model.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let body = html! {
        h1 { "Drift reports" }
        @if reports.is_empty() {
            p.empty { "No drift reports yet: the pipeline step " code { "monitor" } " and "
                code { "mlops drift --track models:/NAME@ALIAS" } " keep them here." }
        }
        @for (model, list) in &by_model {
            @let title = if model.is_empty() { "Reports about no model".to_string() } else { format!("Model {model}") };
            h2 { @if model.is_empty() { (title) } @else { a href={ (b) "/models/" (q(model)) } { (title) } } }
            @let series = share_series(list);
            (chart::line_chart(&series, false, "time (UTC): share of columns drifted", true))
            p.legend { @for (i, s) in series.iter().enumerate() { span { i style={ "background:" (chart::color(i)) } {} (s.name) } } }
            table.drift-reports {
                tr { th { "Time" } th { "Version" } th { "Current data" } th { "Reference" } th { "Drift" } th { "Share drifted" } }
                @for r in list.iter().rev() {
                    tr {
                        td { a href={ (b) "/drift/" (r.run_id.as_str()) } { (view::time(r.time_ms)) } }
                        td { @if let Some(v) = r.version { a href={ (b) "/models/" (q(model)) "/versions/" (v) } { "v" (v) } } }
                        td { (r.current) }
                        td { (r.reference) }
                        td { (badge(if r.dataset_drift { "drift" } else { "no drift" })) }
                        td.num { (format!("{:.0}%", r.share_drifted * 100.0)) }
                    }
                }
            }
        }
    };
    Ok(page(&b, "Drift", "drift", body))
}

async fn drift_report(AxState(state): St, P(run_id): P<String>) -> PageResult {
    let b = state.base.clone();
    let run_id: RunId = parse("run id", &run_id).or_page()?;
    let report = mlops_drift::history::load_report(state.tracker.as_ref(), &run_id)
        .await
        .or_page()?;
    let run = state.tracker.get_run(&run_id).await.or_page()?;
    let html_report = format!(
        "{b}/api/runs/{}/artifact?path={}&inline=1",
        run_id.as_str(),
        q(mlops_drift::history::REPORT_HTML)
    );
    Ok(page(
        &b,
        "Drift report",
        "drift",
        html! {
            h1 { "Drift report " span.muted { (run.info.run_name) } }
            div.cards {
                div.card { div.k { "Verdict" } div.v #verdict { (badge(if report.dataset_drift { "drift" } else { "no drift" })) } }
                div.card { div.k { "Columns drifted" } div.v { (report.drifted_columns) " of " (report.columns_tested) } }
                div.card { div.k { "Share drifted" } div.v { (format!("{:.0}%", report.share_drifted * 100.0)) " (≥ " (format!("{:.0}%", report.drift_share * 100.0)) " is drift)" } }
                div.card { div.k { "Current" } div.v { (report.current.name) " · " (report.current.rows) " rows" } }
                div.card { div.k { "Reference" } div.v { (report.reference.name) " · " (report.reference.rows) " rows" } }
            }
            table #drift-columns {
                tr { th { "Column" } th { "Kind" } th { "Test" } th { "Score" } th { "Threshold" } th { "Drift" } }
                @for c in &report.columns {
                    @let d = &c.drift;
                    tr class=@if d.drifted { "diff" } {
                        td { (d.column) }
                        td { (format!("{:?}", d.kind).to_lowercase()) }
                        td { (d.test) }
                        td.num { (view::value(d.score)) }
                        td.num { (view::value(d.threshold)) }
                        td { (badge(if d.drifted { "drift" } else { "ok" })) }
                    }
                }
                @for u in &report.untested {
                    tr { td { (u.column) } td colspan="5" { "not tested: " (u.reason) } }
                }
            }
            p {
                a #full-report href=(html_report) { "The full report with histograms" }
                " · " a href={ (b) "/runs/" (run_id.as_str()) } { "its run" }
            }
        },
    ))
}
