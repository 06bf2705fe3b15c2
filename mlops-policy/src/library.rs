//! The shipped policy library: Rego modules under `data.mlops`, decided on a
//! [`GovernanceInput`](mlops_core::policy::GovernanceInput).
//!
//! | package | denies when |
//! |---|---|
//! | `data.mlops.approval` | a version is promoted (a protected alias — `champion`, `production` by default —, the `Production` stage, or a deploy) without the tag `approved=true` |
//! | `data.mlops.metrics` | a promoted version misses a threshold of `data.mlops.thresholds` (`{"f1": {"min": 0.8}}`), or does not report a thresholded metric |
//! | `data.mlops.fairness` | a promoted version misses a `fairness.*` threshold of `data.mlops.thresholds` (`{"fairness.aif360.disparate_impact": {"min": 0.8, "max": 1.25}}`) on its `fairness.*` tags (mlops-fairness's `FairnessReport::tags`), or does not carry a thresholded measure |
//! | `data.mlops.drift` | a version is promoted while `input.drift.flagged` is true |
//! | `data.mlops.lineage` | a version is registered or promoted without a training dataset version or a git commit in its lineage |
//! | `data.mlops.datasets` | a version is registered or promoted from a dataset tagged `pii=true` or under a restricted licence (`data.mlops.restricted_licenses`), with no matching entry in `data.mlops.exceptions` |
//! | `data.mlops.governance` | any of the above, except packages named in `data.mlops.disabled` |
//!
//! Load it with [`RegoPolicyBuilder::library`](crate::RegoPolicyBuilder::library); the files
//! are also in the crate's `policies/mlops/` folder, to copy and adapt.

/// `(label, Rego text)` of every module of the library.
pub const MODULES: &[(&str, &str)] = &[
    ("mlops/lib.rego", include_str!("../policies/mlops/lib.rego")),
    (
        "mlops/describe.rego",
        include_str!("../policies/mlops/describe.rego"),
    ),
    (
        "mlops/approval.rego",
        include_str!("../policies/mlops/approval.rego"),
    ),
    (
        "mlops/metrics.rego",
        include_str!("../policies/mlops/metrics.rego"),
    ),
    (
        "mlops/fairness.rego",
        include_str!("../policies/mlops/fairness.rego"),
    ),
    (
        "mlops/drift.rego",
        include_str!("../policies/mlops/drift.rego"),
    ),
    (
        "mlops/lineage.rego",
        include_str!("../policies/mlops/lineage.rego"),
    ),
    (
        "mlops/datasets.rego",
        include_str!("../policies/mlops/datasets.rego"),
    ),
    (
        "mlops/governance.rego",
        include_str!("../policies/mlops/governance.rego"),
    ),
];
