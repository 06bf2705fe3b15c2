//! [`Searchable`] for the domain entities, and the shared select-sort-page pipeline.

use std::cmp::Ordering;

use super::{AttrValue, DatasetFields, Filter, OrderBy, SearchTarget, Searchable};
use crate::error::Result;
use crate::page::Page;
use crate::registry::{ModelVersion, RegisteredModel};
use crate::tracking::{Experiment, Run};

fn find<'a, K: std::borrow::Borrow<str> + Ord, V>(
    map: &'a std::collections::BTreeMap<K, V>,
    key: &str,
) -> Option<&'a V> {
    map.get(key)
}

impl Searchable for Run {
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>> {
        let i = &self.info;
        Some(match key {
            "run_id" => AttrValue::Str(i.run_id.as_str()),
            "run_name" => AttrValue::Str(&i.run_name),
            "user_id" => AttrValue::Str(&i.user_id),
            "status" => AttrValue::Str(i.status.as_str()),
            "artifact_uri" => AttrValue::Str(&i.artifact_uri),
            "start_time" => AttrValue::Int(i.start_time),
            "end_time" => AttrValue::Int(i.end_time?),
            _ => return None,
        })
    }
    fn metric(&self, key: &str) -> Option<f64> {
        find(&self.data.metrics, key).map(|m| m.value)
    }
    fn param(&self, key: &str) -> Option<&str> {
        find(&self.data.params, key).map(String::as_str)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        find(&self.data.tags, key).map(String::as_str)
    }
    fn datasets(&self) -> Vec<DatasetFields<'_>> {
        self.inputs
            .dataset_inputs
            .iter()
            .map(|d| DatasetFields {
                name: &d.dataset.name,
                digest: &d.dataset.digest,
                context: d.context(),
            })
            .collect()
    }
}

impl Searchable for Experiment {
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>> {
        Some(match key {
            "name" => AttrValue::Str(self.name.as_str()),
            "creation_time" => AttrValue::Int(self.creation_time),
            "last_update_time" => AttrValue::Int(self.last_update_time),
            _ => return None,
        })
    }
    fn tag(&self, key: &str) -> Option<&str> {
        find(&self.tags, key).map(String::as_str)
    }
}

impl Searchable for RegisteredModel {
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>> {
        match key {
            "name" => Some(AttrValue::Str(self.name.as_str())),
            _ => None,
        }
    }
    fn tag(&self, key: &str) -> Option<&str> {
        find(&self.tags, key).map(String::as_str)
    }
}

impl Searchable for ModelVersion {
    fn attribute(&self, key: &str) -> Option<AttrValue<'_>> {
        Some(match key {
            "name" => AttrValue::Str(self.name.as_str()),
            "run_id" => AttrValue::Str(self.run_id.as_ref()?.as_str()),
            "source_path" => AttrValue::Str(&self.source),
            "version_number" => AttrValue::Int(i64::try_from(self.version.get()).ok()?),
            _ => return None,
        })
    }
    fn tag(&self, key: &str) -> Option<&str> {
        find(&self.tags, key).map(String::as_str)
    }
}

/// Filters `items`, sorts them by `order_by` then by `tiebreak`, and returns one page.
///
/// Every implementation of a search method can call this on its candidates so that filtering,
/// ordering and paging are identical everywhere.
pub fn select<T: Searchable + Clone>(
    target: SearchTarget,
    items: impl IntoIterator<Item = T>,
    filter: Option<&str>,
    order_by: &[String],
    tiebreak: impl Fn(&T, &T) -> Ordering,
    max_results: usize,
    page_token: Option<&str>,
) -> Result<Page<T>> {
    let items: Vec<T> = items.into_iter().collect();
    select_ref(
        target,
        &items,
        filter,
        order_by,
        tiebreak,
        max_results,
        page_token,
    )
}

/// [`select`] over borrowed candidates: only the items on the returned page are cloned, so a
/// backend can search its whole in-memory state without copying it.
pub fn select_ref<'a, T: Searchable + Clone + 'a>(
    target: SearchTarget,
    items: impl IntoIterator<Item = &'a T>,
    filter: Option<&str>,
    order_by: &[String],
    tiebreak: impl Fn(&T, &T) -> Ordering,
    max_results: usize,
    page_token: Option<&str>,
) -> Result<Page<T>> {
    let filter = match filter {
        Some(f) => Filter::parse_for(target, f)?,
        None => Filter::default(),
    };
    let order = OrderBy::parse_all(target, order_by)?;
    // Validate the token before doing any work.
    crate::page::decode_offset(page_token)?;
    // Each hit's sort values are looked up once, not in every comparison (a metric lookup is a
    // map search; 10k runs sort in about 130k comparisons).
    let mut hits: Vec<(super::SortKeys<'a>, &T)> = items
        .into_iter()
        .filter(|i| filter.matches(*i))
        .map(|i| (super::sort_keys(i, &order), i))
        .collect();
    hits.sort_by(|(ka, a), (kb, b)| {
        super::compare_sort_keys(ka, kb, &order).then_with(|| tiebreak(a, b))
    });
    let hits: Vec<&T> = hits.into_iter().map(|(_, item)| item).collect();
    Ok(Page::slice(hits, page_token, max_results)?.map(Clone::clone))
}

/// MLflow's natural run order: `start_time` descending, then `run_id`.
pub fn run_tiebreak(a: &Run, b: &Run) -> Ordering {
    b.info
        .start_time
        .cmp(&a.info.start_time)
        .then_with(|| a.info.run_id.cmp(&b.info.run_id))
}
