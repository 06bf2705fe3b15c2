# No promotion while drift is flagged: input.drift = {"flagged": true, "score": 0.41} (added by
# the drift monitor's facts).
package mlops.drift

import data.mlops.describe
import data.mlops.lib

deny contains msg if {
	lib.promotion
	input.drift.flagged == true
	msg := sprintf("drift is flagged (score %v): %s cannot take %s", [object.get(input.drift, "score", "unknown"), describe.subject, describe.target])
}
