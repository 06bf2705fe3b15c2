# Datasets tagged PII (pii=true) or under a restricted licence
# (data.mlops.restricted_licenses) may not feed a model without an exception:
# data.mlops.exceptions = [{"model": "churn", "dataset": "customers", "reason": "DPIA-42"}].
package mlops.datasets

import data.mlops.describe
import data.mlops.lib

default restricted_licenses := ["cc-by-nc-4.0", "cc-by-nc-sa-4.0", "proprietary"]

restricted_licenses := data.mlops.restricted_licenses

default exceptions := []

exceptions := data.mlops.exceptions

excepted(ds) if {
	some e in exceptions
	e.model == input.model.name
	e.dataset == ds.name
}

deny contains msg if {
	lib.registering_or_promotion
	some ds in object.get(input.model, ["lineage", "datasets"], [])
	lower(object.get(ds, ["tags", "pii"], "false")) == "true"
	not excepted(ds)
	msg := sprintf("%s is trained on dataset %s v%v, tagged PII, without an exception", [describe.subject, ds.name, ds.version])
}

deny contains msg if {
	lib.registering_or_promotion
	some ds in object.get(input.model, ["lineage", "datasets"], [])
	license := lower(object.get(ds, ["tags", "license"], ""))
	license in {lower(l) | some l in restricted_licenses}
	not excepted(ds)
	msg := sprintf("%s is trained on dataset %s v%v under restricted licence %s, without an exception", [describe.subject, ds.name, ds.version, license])
}
