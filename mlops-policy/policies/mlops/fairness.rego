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

# A decimal number as FairnessReport::tags writes it ("0.93", "-0.04", "1e-3").
numeric := `^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`

measured(name) := to_number(input.model.tags[name]) if regex.match(numeric, input.model.tags[name])

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
	is_number(bound.min)
	value < bound.min
	msg := sprintf("%s has %s = %v%s, below the minimum %v", [describe.subject, name, value, interval(name), bound.min])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	value := measured(name)
	is_number(bound.max)
	value > bound.max
	msg := sprintf("%s has %s = %v%s, above the maximum %v", [describe.subject, name, value, interval(name), bound.max])
}

# Fail closed on what cannot be compared: a measure tag that is not a number, a bound that is not.
deny contains msg if {
	lib.promotion
	some name, _ in thresholds
	value := input.model.tags[name]
	not regex.match(numeric, value)
	msg := sprintf("%s has %s = %q, which is not a number", [describe.subject, name, value])
}

deny contains msg if {
	lib.promotion
	some name, bound in thresholds
	some side in ["min", "max"]
	limit := object.get(bound, side, 0)
	not is_number(limit)
	msg := sprintf("the fairness threshold %s %s is %s, not a number", [name, side, json.marshal(limit)])
}
