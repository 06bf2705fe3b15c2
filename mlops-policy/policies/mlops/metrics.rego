# Metric thresholds from the model card: data.mlops.thresholds = {"f1": {"min": 0.8}, "rmse": {"max": 2.5}}.
# Checked when a version is promoted; a thresholded metric that the model does not report denies.
# Thresholds named fairness.* are the fairness rule's (mlops.fairness).
package mlops.metrics

import data.mlops.describe
import data.mlops.lib

default thresholds := {}

thresholds := {name: bound |
	some name, bound in data.mlops.thresholds
	not startswith(name, "fairness.")
}

deny contains msg if {
	lib.promotion
	some name, _ in thresholds
	not name in object.keys(input.model.metrics)
	msg := sprintf("%s reports no %s metric, which a threshold requires", [describe.subject, name])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	value := input.model.metrics[name]
	value < bound.min
	msg := sprintf("%s has %s = %v, below the minimum %v", [describe.subject, name, value, bound.min])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	value := input.model.metrics[name]
	value > bound.max
	msg := sprintf("%s has %s = %v, above the maximum %v", [describe.subject, name, value, bound.max])
}
