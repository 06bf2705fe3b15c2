# No version reaches production (a protected alias, the Production stage, a deploy) without a
# recorded approval: the version tag approved=true.
package mlops.approval

import data.mlops.describe
import data.mlops.lib

deny contains msg if {
	lib.promotion
	not lib.approved
	msg := sprintf("%s needs approval (tag approved=true) before %s", [describe.subject, describe.target])
}
