# Shared helpers of the mlops policy library. Input: mlops_core::policy::GovernanceInput.
package mlops.lib

# Aliases that mean "serves production traffic"; override with data.mlops.protected_aliases.
default protected_aliases := ["champion", "production"]

protected_aliases := data.mlops.protected_aliases

# The action puts a version in front of production traffic.
promotion if {
	input.action == "set_alias"
	lower(input.alias) in {lower(a) | some a in protected_aliases}
}

promotion if {
	input.action == "transition_stage"
	input.stage == "Production"
}

promotion if input.action == "deploy"

# The action registers a version or promotes one.
registering_or_promotion if input.action == "create_version"

registering_or_promotion if promotion

# A readable name for the version, "churn v3" (or "churn (new version)").
subject := sprintf("%s v%v", [input.model.name, input.model.version]) if input.model.version != null

subject := sprintf("%s (new version)", [input.model.name]) if input.model.version == null

# A readable name for the action.
target := sprintf("alias %q", [input.alias]) if input.action == "set_alias"

target := sprintf("stage %s", [input.stage]) if input.action == "transition_stage"

target := "deploy" if input.action == "deploy"

target := "registration" if input.action == "create_version"

approved if input.model.approved == true
