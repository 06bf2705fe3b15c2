# Every registered or promoted version names its training dataset versions and code commit.
package mlops.lineage

import data.mlops.describe
import data.mlops.lib

deny contains msg if {
	lib.registering_or_promotion
	count(object.get(input.model, ["lineage", "datasets"], [])) == 0
	msg := sprintf("%s names no training dataset version in its lineage", [describe.subject])
}

deny contains msg if {
	lib.registering_or_promotion
	object.get(input.model, ["lineage", "git_commit"], null) in {null, ""}
	msg := sprintf("%s names no git commit in its lineage", [describe.subject])
}
