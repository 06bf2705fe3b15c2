# Readable names for deny messages, kept apart from mlops.lib so that deciding never pays for
# formatting unless a message is produced.
package mlops.describe

# A readable name for the version, "churn v3" (or "churn (new version)").
subject := sprintf("%s v%v", [input.model.name, input.model.version]) if input.model.version != null

subject := sprintf("%s (new version)", [input.model.name]) if input.model.version == null

# A readable name for the action.
target := sprintf("alias %q", [input.alias]) if input.action == "set_alias"

target := sprintf("stage %s", [input.stage]) if input.action == "transition_stage"

target := "deploy" if input.action == "deploy"

target := "registration" if input.action == "create_version"
