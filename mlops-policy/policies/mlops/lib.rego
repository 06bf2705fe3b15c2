# Shared helpers of the mlops policy library. Input: mlops_core::policy::GovernanceInput.
package mlops.lib

# Aliases that mean "serves production traffic", lowercase; override with
# data.mlops.protected_aliases (also lowercase: aliases are compared case-insensitively).
default protected_aliases := ["champion", "production"]

protected_aliases := data.mlops.protected_aliases

# The action puts a version in front of production traffic.
promotion if {
	input.action == "set_alias"
	lower(input.alias) in protected_aliases
}

promotion if {
	input.action == "transition_stage"
	input.stage == "Production"
}

promotion if input.action == "deploy"

# The action registers a version or promotes one.
registering_or_promotion if input.action == "create_version"

registering_or_promotion if promotion

approved if input.model.approved == true
