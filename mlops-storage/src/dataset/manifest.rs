//! The dataset manifest: what a dataset version is, stored as a JSON blob.

use std::collections::BTreeMap;

use arrow::datatypes::Schema;
use mlops_core::{DatasetName, Digest};
use serde::{Deserialize, Serialize};

use super::stats::ColumnStats;

/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: &str = "mlops.dataset/1";

/// One field of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// Column name.
    pub name: String,
    /// Arrow type as Arrow displays it (`Int64`, `Utf8`, `Timestamp(Microsecond, None)`, …).
    pub data_type: String,
    /// Whether nulls are allowed.
    pub nullable: bool,
}

impl FieldInfo {
    /// The fields of an Arrow schema.
    pub fn of(schema: &Schema) -> Vec<FieldInfo> {
        schema
            .fields()
            .iter()
            .map(|f| FieldInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }
}

/// One Parquet part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// Its blob.
    pub digest: Digest,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A dataset version: schema, part files, statistics and user metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The dataset.
    pub name: DatasetName,
    /// Its schema.
    pub schema: Vec<FieldInfo>,
    /// Total rows.
    pub rows: u64,
    /// Total bytes of the part files.
    pub bytes: u64,
    /// Part files, in row order.
    pub parts: Vec<PartInfo>,
    /// Per-column statistics, in schema order.
    pub columns: Vec<ColumnStats>,
    /// User metadata: source, license, PII tags, ….
    pub metadata: BTreeMap<String, String>,
    /// When the data was written, ms since the epoch.
    pub created_ms: i64,
}

/// How a schema changed between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// Columns only in the newer version.
    pub added: Vec<FieldInfo>,
    /// Columns only in the older version.
    pub removed: Vec<FieldInfo>,
    /// Columns whose type or nullability changed.
    pub changed: Vec<FieldChange>,
}

/// A column present in both versions with a different type or nullability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Column name.
    pub name: String,
    /// Before.
    pub from: FieldInfo,
    /// After.
    pub to: FieldInfo,
}

impl SchemaDiff {
    /// The change from `old` to `new`, by column name.
    pub fn between(old: &[FieldInfo], new: &[FieldInfo]) -> Self {
        let find =
            |fields: &[FieldInfo], name: &str| fields.iter().find(|f| f.name == name).cloned();
        let mut diff = SchemaDiff::default();
        for f in new {
            match find(old, &f.name) {
                None => diff.added.push(f.clone()),
                Some(o) if o != *f => diff.changed.push(FieldChange {
                    name: f.name.clone(),
                    from: o,
                    to: f.clone(),
                }),
                Some(_) => {}
            }
        }
        diff.removed = old
            .iter()
            .filter(|f| find(new, &f.name).is_none())
            .cloned()
            .collect();
        diff
    }

    /// True when the schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line per change: `+ col: Int64`, `- col: Utf8`, `~ col: Int32 -> Int64`.
    pub fn lines(&self) -> Vec<String> {
        let null = |f: &FieldInfo| if f.nullable { "" } else { " not null" };
        let mut out = Vec::new();
        for f in &self.added {
            out.push(format!("+ {}: {}{}", f.name, f.data_type, null(f)));
        }
        for f in &self.removed {
            out.push(format!("- {}: {}{}", f.name, f.data_type, null(f)));
        }
        for c in &self.changed {
            out.push(format!(
                "~ {}: {}{} -> {}{}",
                c.name,
                c.from.data_type,
                null(&c.from),
                c.to.data_type,
                null(&c.to)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, ty: &str, nullable: bool) -> FieldInfo {
        FieldInfo {
            name: name.into(),
            data_type: ty.into(),
            nullable,
        }
    }

    #[test]
    fn diff_reports_added_removed_and_changed_columns() {
        let old = vec![
            f("id", "Int64", false),
            f("age", "Int32", true),
            f("plan", "Utf8", true),
        ];
        let new = vec![
            f("id", "Int64", false),
            f("age", "Int64", true),
            f("score", "Float64", true),
        ];
        let d = SchemaDiff::between(&old, &new);
        assert_eq!(d.added, vec![f("score", "Float64", true)]);
        assert_eq!(d.removed, vec![f("plan", "Utf8", true)]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            d.lines(),
            vec!["+ score: Float64", "- plan: Utf8", "~ age: Int32 -> Int64"]
        );
        assert!(SchemaDiff::between(&old, &old).is_empty());
    }
}
