//! [`StatDetector`]: Evidently's per-column drift tests on reference profiles.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use mlops_core::drift::{
    ColumnDrift, ColumnKind, ColumnProfile, ColumnSummary, DetectOptions, DriftDetector,
    DriftReport, ProfileOptions, ReferenceProfile, UntestedColumn,
};
use mlops_core::{Error, Result};
use rayon::prelude::*;

use crate::column::{self, Physical};
use crate::stats::{self, ks};

/// A drift test Evidently offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatTest {
    /// Two-sample Kolmogorov–Smirnov; score: p-value (drift when ≤ threshold).
    Ks,
    /// Pearson's chi-square on category counts; score: p-value (drift when < threshold).
    ChiSquare,
    /// Two-proportion z-test; score: p-value (drift when < threshold).
    Z,
    /// Wasserstein-1 divided by the reference's population std (at least 0.001); drift when ≥.
    Wasserstein,
    /// Jensen–Shannon distance on Sturges bins or categories; drift when ≥.
    JensenShannon,
    /// Population stability index with Evidently's zero fill; drift when ≥.
    Psi,
}

impl StatTest {
    /// Every test.
    pub const ALL: [StatTest; 6] = [
        Self::Ks,
        Self::ChiSquare,
        Self::Z,
        Self::Wasserstein,
        Self::JensenShannon,
        Self::Psi,
    ];

    /// Evidently's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ks => "ks",
            Self::ChiSquare => "chisquare",
            Self::Z => "z",
            Self::Wasserstein => "wasserstein",
            Self::JensenShannon => "jensenshannon",
            Self::Psi => "psi",
        }
    }

    /// Parses Evidently's name.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "drift test",
                    format!(
                        "{name:?} is not one of {}",
                        Self::ALL.map(Self::name).join(", ")
                    ),
                )
            })
    }

    /// Evidently's default threshold.
    pub fn default_threshold(self) -> f64 {
        match self {
            Self::Ks | Self::ChiSquare | Self::Z => 0.05,
            Self::Wasserstein | Self::JensenShannon | Self::Psi => 0.1,
        }
    }

    /// Evidently's comparison: p-value tests drift below the threshold (`ks` at or below it),
    /// distances at or above it.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            Self::Ks => score <= threshold,
            Self::ChiSquare | Self::Z => score < threshold,
            Self::Wasserstein | Self::JensenShannon | Self::Psi => score >= threshold,
        }
    }

    /// Whether the test applies to a column kind.
    pub fn supports(self, kind: ColumnKind) -> bool {
        !matches!(
            (self, kind),
            (Self::Ks | Self::Wasserstein, ColumnKind::Categorical)
        )
    }
}

/// Evidently's default choice (`_get_default_stattest`): `n_ref` values in the reference,
/// `n_unique` distinct values in both samples together.
pub fn default_test(kind: ColumnKind, n_ref: u64, n_unique: usize) -> StatTest {
    match (n_ref <= 1000, kind) {
        (true, ColumnKind::Numerical) if n_unique <= 5 => {
            if n_unique > 2 {
                StatTest::ChiSquare
            } else {
                StatTest::Z
            }
        }
        (true, ColumnKind::Numerical) => StatTest::Ks,
        (true, ColumnKind::Categorical) => {
            if n_unique > 2 {
                StatTest::ChiSquare
            } else {
                StatTest::Z
            }
        }
        (false, ColumnKind::Numerical) if n_unique <= 5 => StatTest::JensenShannon,
        (false, ColumnKind::Numerical) => StatTest::Wasserstein,
        (false, ColumnKind::Categorical) => StatTest::JensenShannon,
    }
}

/// Integer columns with at most this many distinct reference values are categorical when not
/// typed explicitly (Evidently's `NUMBER_UNIQUE_AS_CATEGORICAL`).
pub const NUMBER_UNIQUE_AS_CATEGORICAL: usize = 5;

/// Evidently's data-drift tests, computed natively: per-column tests chosen and compared as
/// Evidently does, columns in parallel, against a [`ReferenceProfile`] that keeps what each test
/// needs (the sorted reference values, or label counts).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Float64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
/// use mlops_drift::StatDetector;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
/// let batch = |f: fn(f64) -> f64| {
///     let values: Float64Array = (0..200).map(|i| f(f64::from(i))).collect();
///     RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap()
/// };
/// let detector = StatDetector::default();
/// let profile = detector.profile(&[batch(|i| i)], &ProfileOptions::default())?;
/// let same = detector.detect(&profile, &[batch(|i| 199.0 - i)], &DetectOptions::default())?;
/// assert!(!same.dataset_drift);
/// let shifted = detector.detect(&profile, &[batch(|i| i + 80.0)], &DetectOptions::default())?;
/// assert!(shifted.dataset_drift);
/// assert_eq!(shifted.columns[0].test, "ks");
/// # Ok::<(), mlops_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StatDetector {
    _private: (),
}

impl StatDetector {
    /// A detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tests `current` against raw `reference` batches (an exact profile is built first).
    pub fn detect_batches(
        &self,
        reference: &[RecordBatch],
        current: &[RecordBatch],
        options: &DetectOptions,
    ) -> Result<DriftReport> {
        let profile = self.profile(reference, &ProfileOptions::default())?;
        self.detect(&profile, current, options)
    }
}

/// The columns to profile: the wanted ones (each must exist), or every column, with a reason for
/// each of a type no test handles (a wanted column of such a type is an error: it was asked for).
fn column_names(
    batches: &[RecordBatch],
    wanted: &[String],
) -> Result<(Vec<String>, Vec<UntestedColumn>)> {
    let Some(first) = batches.first() else {
        return Err(Error::invalid("reference", "no batches given"));
    };
    let schema = first.schema();
    if wanted.is_empty() {
        let (testable, other): (Vec<_>, Vec<_>) = schema
            .fields()
            .iter()
            .partition(|f| column::physical(f.data_type()).is_some());
        return Ok((
            testable.into_iter().map(|f| f.name().clone()).collect(),
            other
                .into_iter()
                .map(|f| UntestedColumn {
                    column: f.name().clone(),
                    reason: untestable_type(f.data_type()),
                    emptied: false,
                })
                .collect(),
        ));
    }
    for w in wanted {
        if schema.field_with_name(w).is_err() {
            return Err(Error::invalid(
                "column",
                format!("reference has no column {w:?}"),
            ));
        }
    }
    Ok((wanted.to_vec(), Vec::new()))
}

fn untestable_type(dt: &arrow_schema::DataType) -> String {
    if dt == &arrow_schema::DataType::Null {
        "no values in the reference (every value is null)".to_owned()
    } else {
        format!("type {dt} is not tested (numbers, booleans and strings are)")
    }
}

/// One column's profile, or why it has none.
type Profiled = std::result::Result<ColumnProfile, UntestedColumn>;

fn profile_column(
    batches: &[RecordBatch],
    name: &str,
    options: &ProfileOptions,
) -> Result<Profiled> {
    let untested = |reason: &str| {
        Ok(Err(UntestedColumn {
            column: name.to_owned(),
            reason: reason.to_owned(),
            emptied: false,
        }))
    };
    let arrays = column::arrays(batches, name, "reference")?;
    let count: u64 = arrays.iter().map(|a| a.len() as u64).sum();
    let dt = arrays
        .first()
        .map(|a| a.data_type().clone())
        .ok_or_else(|| Error::invalid("reference", "no batches given"))?;
    if dt == arrow_schema::DataType::Null {
        return untested("no values in the reference (every value is null)");
    }
    let physical = column::physical(&dt).ok_or_else(|| {
        Error::invalid(
            "column",
            format!("{name:?} has type {dt}, which drift tests do not handle"),
        )
    })?;
    let forced_categorical = options.categorical.iter().any(|c| c == name);
    let numeric = matches!(physical, Physical::Float | Physical::Integer) && !forced_categorical;
    if numeric {
        let (mut values, missing) = column::numbers(&arrays, name)?;
        if values.is_empty() {
            return untested(
                "no values in the reference after dropping missing ones (null, NaN, infinite)",
            );
        }
        voracious_radix_sort::RadixSort::voracious_sort(&mut values);
        let integer = physical == Physical::Integer;
        if integer && stats::unique_sorted(&values) <= NUMBER_UNIQUE_AS_CATEGORICAL {
            let counts = count_labels(values.iter().map(|v| column::number_label(*v, true)));
            return Ok(Ok(ColumnProfile {
                name: name.to_string(),
                count,
                missing,
                summary: ColumnSummary::Categorical { counts },
            }));
        }
        let population = values.len() as u64;
        let sampled = match options.max_values {
            Some(max) if values.len() > max && max > 0 => {
                values = sample_sorted(&values, max);
                true
            }
            _ => false,
        };
        Ok(Ok(ColumnProfile {
            name: name.to_string(),
            count,
            missing,
            summary: ColumnSummary::Numerical {
                values,
                population,
                sampled,
            },
        }))
    } else {
        let (labels, missing) = column::labels(&arrays, name)?;
        if labels.is_empty() {
            return untested("no values in the reference after dropping missing ones (null)");
        }
        Ok(Ok(ColumnProfile {
            name: name.to_string(),
            count,
            missing,
            summary: ColumnSummary::Categorical {
                counts: count_labels(labels.into_iter()),
            },
        }))
    }
}

fn count_labels(labels: impl Iterator<Item = String>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for l in labels {
        *counts.entry(l).or_insert(0) += 1;
    }
    counts
}

/// `max` evenly spaced order statistics of a sorted sample (a deterministic quantile sketch:
/// the sample's ECDF is within 1/max of the population's everywhere).
fn sample_sorted(sorted: &[f64], max: usize) -> Vec<f64> {
    let n = sorted.len();
    (0..max)
        .map(|i| {
            let idx = ((i as f64 + 0.5) * n as f64 / max as f64) as usize;
            sorted[idx.min(n - 1)]
        })
        .collect()
}

impl DriftDetector for StatDetector {
    fn profile(
        &self,
        reference: &[RecordBatch],
        options: &ProfileOptions,
    ) -> Result<ReferenceProfile> {
        let (names, mut untested) = column_names(reference, &options.columns)?;
        let profiled = names
            .par_iter()
            .map(|name| profile_column(reference, name, options))
            .collect::<Result<Vec<_>>>()?;
        let mut columns = Vec::with_capacity(profiled.len());
        for p in profiled {
            match p {
                Ok(c) => columns.push(c),
                Err(u) => untested.push(u),
            }
        }
        if columns.is_empty() {
            return Err(nothing_testable("the reference", &untested));
        }
        Ok(ReferenceProfile {
            rows: reference.iter().map(|b| b.num_rows() as u64).sum(),
            columns,
            created_ms: mlops_core::time::now_ms(),
            untested,
        })
    }

    fn detect(
        &self,
        reference: &ReferenceProfile,
        current: &[RecordBatch],
        options: &DetectOptions,
    ) -> Result<DriftReport> {
        if !(0.0..=1.0).contains(&options.drift_share) {
            return Err(Error::invalid(
                "drift_share",
                format!("{} is not between 0 and 1", options.drift_share),
            ));
        }
        for name in options.overrides.keys() {
            if !reference.columns.iter().any(|c| &c.name == name) {
                return Err(Error::invalid(
                    "override",
                    format!("the reference profile has no column {name:?}"),
                ));
            }
        }
        if current.is_empty() {
            return Err(Error::invalid("current", "no batches given"));
        }
        let tested = reference
            .columns
            .par_iter()
            .map(|col| test_column(col, current, options))
            .collect::<Result<Vec<_>>>()?;
        let mut untested = reference.untested.clone();
        let mut columns = Vec::with_capacity(tested.len());
        for t in tested {
            match t {
                Ok(c) => columns.push(c),
                Err(u) => untested.push(u),
            }
        }
        // A column whose values stopped arriving is the strongest drift there is: no test
        // applies, but it counts as drifted (so data whose every column stopped arriving is
        // drift, not an error).
        let emptied = untested.iter().filter(|u| u.emptied).count();
        if columns.is_empty() && emptied == 0 {
            return Err(nothing_testable("the current data", &untested));
        }
        let drifted_columns = columns.iter().filter(|c| c.drifted).count() + emptied;
        let share_drifted = drifted_columns as f64 / (columns.len() + emptied) as f64;
        Ok(DriftReport {
            drifted_columns,
            share_drifted,
            drift_share: options.drift_share,
            dataset_drift: share_drifted >= options.drift_share,
            columns,
            untested,
        })
    }
}

/// No column could be tested: say which, and why, rather than "no drift".
fn nothing_testable(side: &str, untested: &[UntestedColumn]) -> Error {
    let why = if untested.is_empty() {
        "it has no columns".to_owned()
    } else {
        untested
            .iter()
            .map(|u| format!("{:?}: {}", u.column, u.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Error::invalid(
        "drift",
        format!("no column of {side} can be tested for drift ({why})"),
    )
}

/// The current side of one column, in the profile's terms.
enum Current {
    Numbers(Vec<f64>),
    Labels(Vec<String>),
}

fn test_column(
    col: &ColumnProfile,
    current: &[RecordBatch],
    options: &DetectOptions,
) -> Result<std::result::Result<ColumnDrift, UntestedColumn>> {
    let arrays = column::arrays(current, &col.name, "current")?;
    let kind = col.kind();
    let cur = match &col.summary {
        ColumnSummary::Numerical { .. } => {
            let (mut v, _) = column::numbers(&arrays, &col.name)?;
            voracious_radix_sort::RadixSort::voracious_sort(&mut v);
            Current::Numbers(v)
        }
        ColumnSummary::Categorical { .. } => Current::Labels(column::labels(&arrays, &col.name)?.0),
    };
    let n_cur = match &cur {
        Current::Numbers(v) => v.len(),
        Current::Labels(v) => v.len(),
    };
    if n_cur == 0 {
        return Ok(Err(UntestedColumn {
            column: col.name.clone(),
            reason: "no values in the current data after dropping missing ones, while the reference has values: counted as drifted".to_owned(),
            emptied: true,
        }));
    }
    let over = options.overrides.get(&col.name);
    let (n_ref, n_unique, approximate) = match (&col.summary, &cur) {
        (
            ColumnSummary::Numerical {
                values,
                population,
                sampled,
            },
            Current::Numbers(c),
        ) => (*population, stats::unique_union_sorted(values, c), *sampled),
        (ColumnSummary::Categorical { counts }, Current::Labels(c)) => {
            let n: u64 = counts.values().sum();
            let mut keys: BTreeSet<&str> = counts.keys().map(String::as_str).collect();
            keys.extend(c.iter().map(String::as_str));
            (n, keys.len(), false)
        }
        _ => {
            return Err(Error::invalid(
                "column",
                format!("{:?}: kind mismatch", col.name),
            ));
        }
    };
    let test = match over.and_then(|o| o.test.as_deref()) {
        Some(name) => {
            let t = StatTest::parse(name)?;
            if !t.supports(kind) {
                return Err(Error::invalid(
                    "drift test",
                    format!(
                        "{} does not apply to categorical column {:?}",
                        t.name(),
                        col.name
                    ),
                ));
            }
            t
        }
        None => default_test(kind, n_ref, n_unique),
    };
    let threshold = over
        .and_then(|o| o.threshold)
        .unwrap_or_else(|| test.default_threshold());
    let score = match (&col.summary, &cur) {
        (ColumnSummary::Numerical { values, .. }, Current::Numbers(c)) => {
            numeric_score(test, values, c)
        }
        (ColumnSummary::Categorical { counts }, Current::Labels(c)) => {
            categorical_score(test, counts, c)
        }
        _ => f64::NAN,
    };
    if score.is_nan() {
        return Err(Error::invalid(
            "column",
            format!("{} on {:?} gave no score", test.name(), col.name),
        ));
    }
    Ok(Ok(ColumnDrift {
        column: col.name.clone(),
        kind,
        test: test.name().to_string(),
        score,
        threshold,
        drifted: test.drifted(score, threshold),
        counts: [n_ref, n_cur as u64],
        approximate,
    }))
}

fn numeric_score(test: StatTest, reference: &[f64], current: &[f64]) -> f64 {
    match test {
        StatTest::Ks => ks::ks_2samp_sorted(reference, current).pvalue,
        StatTest::Wasserstein => {
            let norm = stats::std_pop(reference).max(0.001);
            stats::wasserstein_sorted(reference, current) / norm
        }
        StatTest::JensenShannon | StatTest::Psi => {
            let ref_unique = stats::unique_sorted(reference);
            let (r, c) = stats::binned_numeric(reference, current, ref_unique);
            share_score(test, r, c)
        }
        StatTest::ChiSquare | StatTest::Z => {
            let label = |v: &f64| column::number_label(*v, false);
            let counts = count_labels(reference.iter().map(label));
            let cur: Vec<String> = current.iter().map(label).collect();
            categorical_score_typed(test, &counts, &cur, true)
        }
    }
}

/// Jensen–Shannon distance or PSI (after Evidently's zero fill) of two share vectors.
fn share_score(test: StatTest, mut reference: Vec<f64>, mut current: Vec<f64>) -> f64 {
    if test == StatTest::Psi {
        stats::fill_zeroes(&mut reference);
        stats::fill_zeroes(&mut current);
        stats::psi(&reference, &current)
    } else {
        stats::jensenshannon(&reference, &current)
    }
}

fn categorical_score(test: StatTest, counts: &BTreeMap<String, u64>, current: &[String]) -> f64 {
    let numeric = counts
        .keys()
        .chain(current.iter())
        .all(|k| k.parse::<f64>().is_ok());
    categorical_score_typed(test, counts, current, numeric)
}

fn categorical_score_typed(
    test: StatTest,
    counts: &BTreeMap<String, u64>,
    current: &[String],
    numeric_keys: bool,
) -> f64 {
    let cur_counts = count_labels(current.iter().cloned());
    let keys: BTreeSet<&String> = counts.keys().chain(cur_counts.keys()).collect();
    let n_ref: u64 = counts.values().sum();
    let n_cur = current.len() as u64;
    let get = |m: &BTreeMap<String, u64>, k: &String| *m.get(k).unwrap_or(&0) as f64;
    match test {
        StatTest::ChiSquare => {
            let k_norm = n_cur as f64 / n_ref as f64;
            let expected: Vec<f64> = keys.iter().map(|k| get(counts, k) * k_norm).collect();
            let observed: Vec<f64> = keys.iter().map(|k| get(&cur_counts, k)).collect();
            stats::chisquare(&observed, &expected).1
        }
        StatTest::Z => {
            if counts.len() == 1 && cur_counts.len() == 1 && keys.len() == 1 {
                return 1.0;
            }
            // The first category in sorted order is 0, every other one 1.
            let first = if numeric_keys {
                keys.iter()
                    .min_by(|a, b| {
                        let (x, y) = (
                            a.parse::<f64>().unwrap_or(0.0),
                            b.parse::<f64>().unwrap_or(0.0),
                        );
                        x.total_cmp(&y)
                    })
                    .copied()
            } else {
                keys.iter().next().copied()
            };
            let Some(first) = first else { return f64::NAN };
            let ones_ref = n_ref as f64 - get(counts, first);
            let ones_cur = n_cur as f64 - get(&cur_counts, first);
            stats::proportions_z_pvalue(ones_ref, n_ref as f64, ones_cur, n_cur as f64)
        }
        StatTest::JensenShannon | StatTest::Psi => {
            let r = keys.iter().map(|k| get(counts, k) / n_ref as f64).collect();
            let c = keys
                .iter()
                .map(|k| get(&cur_counts, k) / n_cur as f64)
                .collect();
            share_score(test, r, c)
        }
        StatTest::Ks | StatTest::Wasserstein => f64::NAN,
    }
}
