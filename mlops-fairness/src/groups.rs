//! Sensitive groups: which group each row belongs to, from one or several sensitive columns
//! (several columns give intersectional groups, as fairlearn's `MetricFrame` forms them).

use std::collections::BTreeMap;
use std::fmt;

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use mlops_core::{Error, Result};
use serde::Serialize;

/// One group: the value of each sensitive column, in the order the columns were given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey(pub Vec<String>);

impl GroupKey {
    /// The value of each sensitive column.
    pub fn values(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// The group of every row.
///
/// Groups are every combination of the sensitive columns' values that occurs, sorted; the
/// combinations that do not occur (empty cells of an intersection) are listed by
/// [`empty_cells`](Groups::empty_cells), as fairlearn's `by_group` shows them as `NaN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    columns: Vec<String>,
    keys: Vec<GroupKey>,
    row_group: Vec<u32>,
    empty_cells: Vec<GroupKey>,
}

impl Groups {
    /// Groups from sensitive columns of `batch`.
    ///
    /// Any column Arrow can cast to text works (strings, dictionaries, integers, booleans).
    /// [`Error::InvalidArgument`] names the column when it is missing, all null, has a null
    /// (naming the row), or holds one value only (no groups to compare).
    pub fn from_batch(batch: &RecordBatch, columns: &[&str]) -> Result<Self> {
        let mut values = Vec::with_capacity(columns.len());
        for name in columns {
            let column = batch.column_by_name(name).ok_or_else(|| {
                let have: Vec<&str> = batch
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                Error::invalid(
                    "sensitive column",
                    format!(
                        "{name:?} is not in the data (its columns: {})",
                        have.join(", ")
                    ),
                )
            })?;
            values.push(column_strings(name, column.as_ref())?);
        }
        let named: Vec<(&str, Vec<String>)> = columns.iter().copied().zip(values).collect();
        Self::from_values(&named)
    }

    /// Groups from the values of sensitive columns given as text, one `(name, values)` pair per
    /// column, all of the same length.
    pub fn from_values<S: AsRef<str>>(columns: &[(&str, Vec<S>)]) -> Result<Self> {
        let Some((_, first)) = columns.first() else {
            return Err(Error::invalid(
                "sensitive columns",
                "at least one sensitive column is needed",
            ));
        };
        let rows = first.len();
        let mut seen = std::collections::HashSet::new();
        for (name, values) in columns {
            if !seen.insert(*name) {
                return Err(Error::invalid(
                    "sensitive columns",
                    format!("{name:?} is named twice"),
                ));
            }
            if values.len() != rows {
                return Err(Error::invalid(
                    "sensitive column",
                    format!(
                        "{name:?} has {} values, the first sensitive column {rows}",
                        values.len()
                    ),
                ));
            }
            if rows == 0 {
                return Err(Error::invalid(
                    "sensitive column",
                    format!("{name:?} has no rows"),
                ));
            }
            let v0 = values[0].as_ref();
            if values.iter().all(|v| v.as_ref() == v0) {
                return Err(Error::invalid(
                    "sensitive column",
                    format!("{name:?} holds one value ({v0:?}) on every row: no groups to compare"),
                ));
            }
        }
        // Distinct values per column, for the cells of the intersection.
        let mut index: BTreeMap<GroupKey, u32> = BTreeMap::new();
        let mut row_keys = Vec::with_capacity(rows);
        for row in 0..rows {
            let key = GroupKey(
                columns
                    .iter()
                    .map(|(_, v)| v[row].as_ref().to_owned())
                    .collect(),
            );
            index.entry(key.clone()).or_insert(0);
            row_keys.push(key);
        }
        for (i, slot) in index.values_mut().enumerate() {
            *slot = u32::try_from(i)
                .map_err(|_| Error::invalid("sensitive columns", "more than 2^32 groups"))?;
        }
        let row_group = row_keys.iter().map(|k| index[k]).collect();
        let keys: Vec<GroupKey> = index.into_keys().collect();
        let empty_cells = if columns.len() > 1 {
            let distinct: Vec<Vec<String>> = columns
                .iter()
                .map(|(_, v)| {
                    let mut d: Vec<String> = v.iter().map(|s| s.as_ref().to_owned()).collect();
                    d.sort();
                    d.dedup();
                    d
                })
                .collect();
            let cells: usize = distinct.iter().map(Vec::len).product();
            if cells > 100_000 {
                Vec::new()
            } else {
                cartesian(&distinct)
                    .into_iter()
                    .map(GroupKey)
                    .filter(|k| keys.binary_search(k).is_err())
                    .collect()
            }
        } else {
            Vec::new()
        };
        Ok(Self {
            columns: columns.iter().map(|(n, _)| (*n).to_owned()).collect(),
            keys,
            row_group,
            empty_cells,
        })
    }

    /// The sensitive columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The groups that occur, sorted.
    pub fn keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// The index into [`keys`](Groups::keys) of each row's group.
    pub fn row_groups(&self) -> &[u32] {
        &self.row_group
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.row_group.len()
    }

    /// Combinations of the sensitive columns' values that no row has (only with several
    /// columns; not listed past 100,000 combinations).
    pub fn empty_cells(&self) -> &[GroupKey] {
        &self.empty_cells
    }

    /// The position of `column` among the sensitive columns.
    pub(crate) fn column_index(&self, column: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                Error::invalid(
                    "privileged group",
                    format!(
                        "{column:?} is not a sensitive column (they are: {})",
                        self.columns.join(", ")
                    ),
                )
            })
    }
}

fn cartesian(sets: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for set in sets {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                set.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    out
}

/// A column's values as text; nulls are errors naming the row.
fn column_strings(name: &str, column: &dyn Array) -> Result<Vec<String>> {
    if column.is_empty() {
        return Err(Error::invalid(
            "sensitive column",
            format!("{name:?} has no rows"),
        ));
    }
    if column.null_count() == column.len() {
        return Err(Error::invalid(
            "sensitive column",
            format!("{name:?} is null on every row"),
        ));
    }
    if let Some(row) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(Error::invalid(
            "sensitive column",
            format!(
                "{name:?} is null at row {row} ({} nulls in all); give those rows a group of their own or drop them",
                column.null_count()
            ),
        ));
    }
    let text = arrow::compute::cast(column, &DataType::Utf8).map_err(|e| {
        Error::invalid(
            "sensitive column",
            format!(
                "{name:?} of type {} cannot be read as group labels",
                column.data_type()
            ),
        )
        .with_source(e)
    })?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::invalid("sensitive column", format!("{name:?}: not text")))?;
    Ok(text.iter().map(|v| v.unwrap_or("").to_owned()).collect())
}
