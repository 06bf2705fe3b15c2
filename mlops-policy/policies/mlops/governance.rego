# The aggregate decision Governed asks by default (data.mlops.governance): every rule of the
# library. Disable one with data.mlops.disabled = ["drift"].
package mlops.governance

import data.mlops

disabled := object.get(data, ["mlops", "disabled"], [])

deny contains msg if {
	not "approval" in disabled
	some msg in mlops.approval.deny
}

deny contains msg if {
	not "metrics" in disabled
	some msg in mlops.metrics.deny
}

deny contains msg if {
	not "drift" in disabled
	some msg in mlops.drift.deny
}

deny contains msg if {
	not "lineage" in disabled
	some msg in mlops.lineage.deny
}

deny contains msg if {
	not "datasets" in disabled
	some msg in mlops.datasets.deny
}
