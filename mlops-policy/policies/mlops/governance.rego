# The aggregate decision Governed asks by default (data.mlops.governance): every rule of the
# library. Disable one with data.mlops.disabled = ["drift"].
package mlops.governance

import data.mlops.approval
import data.mlops.metrics
import data.mlops.drift
import data.mlops.lineage
import data.mlops.datasets
import data.mlops.fairness

default disabled := []

disabled := data.mlops.disabled

deny contains msg if {
	not "approval" in disabled
	some msg in approval.deny
}

deny contains msg if {
	not "metrics" in disabled
	some msg in metrics.deny
}

deny contains msg if {
	not "drift" in disabled
	some msg in drift.deny
}

deny contains msg if {
	not "lineage" in disabled
	some msg in lineage.deny
}

deny contains msg if {
	not "datasets" in disabled
	some msg in datasets.deny
}

deny contains msg if {
	not "fairness" in disabled
	some msg in fairness.deny
}
