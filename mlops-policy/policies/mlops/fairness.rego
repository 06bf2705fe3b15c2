# Group-fairness thresholds on the version's fairness.* tags (written by mlops-fairness's
# FairnessReport::tags: fairness.<fairlearn metric>, fairness.aif360.<AIF360 metric>, with
# <key>.low / <key>.high bootstrap bounds). Thresholds share data.mlops.thresholds with the
# metrics rule, keyed by the tag:
#   {"fairness.aif360.disparate_impact": {"min": 0.8, "max": 1.25},
#    "fairness.equalized_odds_difference": {"max": 0.1}}
# Checked when a version is promoted; a thresholded measure that the version does not carry denies.
package mlops.fairness

import data.mlops.describe
import data.mlops.lib

default thresholds := {}

thresholds := {name: bound |
	some name, bound in data.mlops.thresholds
	startswith(name, "fairness.")
}

measured(name) := to_number(input.model.tags[name])

# " (interval 0.71 to 0.83)" when the version carries the bootstrap bounds, else "". (Written
# without else, default functions or partial objects, which regorus's bytecode VM evaluates as
# undefined here.)
interval(name) := texts[low != ""] if {
	low := object.get(input.model.tags, concat("", [name, ".low"]), "")
	high := object.get(input.model.tags, concat("", [name, ".high"]), "")
	texts := {true: sprintf(" (interval %v to %v)", [low, high]), false: ""}
}

deny contains msg if {
	lib.promotion
	some name, _ in thresholds
	not input.model.tags[name]
	msg := sprintf("%s carries no %s measurement, which a fairness threshold requires (assess it with the sensitive columns declared)", [describe.subject, name])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	value := measured(name)
	value < bound.min
	msg := sprintf("%s has %s = %v%s, below the minimum %v", [describe.subject, name, value, interval(name), bound.min])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	value := measured(name)
	value > bound.max
	msg := sprintf("%s has %s = %v%s, above the maximum %v", [describe.subject, name, value, interval(name), bound.max])
}
