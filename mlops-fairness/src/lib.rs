//! # mlops-fairness
//!
//! Group fairness of a binary classifier's predictions, under both conventions teams already
//! use, with their exact definitions and zero-division rules:
//!
//! - [`MetricFrame`]: rates by group and overall, and fairlearn's disparities over them
//!   (`demographic_parity_difference`/`ratio` with `between_groups` or `to_overall`,
//!   `equalized_odds_difference`/`ratio` with `worst_case` or `mean`,
//!   `equal_opportunity_difference`/`ratio`), unsigned, over any number of groups.
//! - [`TwoGroupMetrics`]: AIF360's signed metrics (`statistical_parity_difference`,
//!   `disparate_impact`, `equal_opportunity_difference`, `average_odds_difference`,
//!   `average_abs_odds_difference`) of a [`Privileged`] group against everyone else, as
//!   `aif360.sklearn.metrics` computes them.
//! - [`Groups`] from one or several sensitive columns of Arrow data; several columns give
//!   intersectional groups, and empty cells are reported, not guessed.
//! - Instance weights everywhere ([`BinaryOutcomes::with_weights`]).
//! - [`assess`]: every disparity with a seeded, parallel percentile-bootstrap interval, and
//!   [`FairnessReport::tags`] for a model version's `fairness.*` tags.
//!
//! The numbers equal fairlearn 0.15 and AIF360 0.6 to 1e-12 (`tests/references.rs` runs both).
//!
//! ## Example
//!
//! ```
//! use mlops_fairness::{assess, AssessOptions, BinaryOutcomes, Convention, Groups, Privileged};
//!
//! # fn main() -> mlops_core::Result<()> {
//! let y_true = [1, 0, 1, 1, 0, 1, 0, 0];
//! let y_pred = [1, 0, 1, 0, 1, 1, 0, 0];
//! let sex = vec!["f", "f", "f", "f", "m", "m", "m", "m"];
//! let outcomes = BinaryOutcomes::from_labels(&y_true, &y_pred, 1)?;
//! let groups = Groups::from_values(&[("sex", sex)])?;
//! let options = AssessOptions {
//!     privileged: Some(Privileged::new("sex", "m")),
//!     ..AssessOptions::default()
//! };
//! let report = assess(&outcomes, &groups, &options)?;
//! // Both groups select half of their rows.
//! let dpd = report.disparity(Convention::Fairlearn, "demographic_parity_difference").unwrap();
//! assert_eq!(dpd.value, 0.0);
//! let di = report.disparity(Convention::Aif360, "disparate_impact").unwrap();
//! assert_eq!(di.value, 1.0);
//! assert_eq!(report.tags()["fairness.aif360.disparate_impact"], "1");
//! # Ok(())
//! # }
//! ```

mod aif360;
mod frame;
mod groups;
mod outcomes;
mod report;

pub use aif360::{Privileged, SideRates, TwoGroupMetrics};
pub use frame::{Aggregate, GroupMetric, GroupRates, Method, MetricFrame, Rates};
pub use groups::{GroupKey, Groups};
pub use outcomes::{BinaryOutcomes, weight_column};
pub use report::{
    AssessOptions, Bootstrap, Convention, Disparity, FairnessReport, Interval, assess,
};
