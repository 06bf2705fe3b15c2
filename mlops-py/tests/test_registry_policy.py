"""The registry with MLflow's client names (versions, aliases, stages, tags, URIs, search), and
governed by Rego policies: denials raise PolicyDenied and every decision is hash-chained."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlops


def test_versions_aliases_stages_tags_and_uris(store: str) -> None:
    registry = mlops.get_registry()
    model = registry.create_registered_model("churn", tags={"team": "growth"}, description="d")
    assert model.name == "churn" and model.tags == {"team": "growth"}
    with pytest.raises(mlops.AlreadyExists):
        registry.create_registered_model("churn")
    # A source is recorded as given (MLflow's create_model_version), its run id read from it.
    v1 = registry.create_model_version("churn", "runs:/0123456789abcdef0123456789abcdef/model")
    assert v1.run_id == "0123456789abcdef0123456789abcdef"
    v2 = mlops.register_model("s3://bucket/models/churn", "churn")
    assert (v1.version, v2.version) == (1, 2)
    with pytest.raises(mlops.NotFound):
        mlops.register_model("runs:/0123456789abcdef0123456789abcdef/model", "churn")
    registry.set_registered_model_alias("churn", "champion", 1)
    assert registry.get_model_version_by_alias("churn", "champion").version == 1
    assert registry.resolve("models:/churn@champion").version == 1
    assert registry.resolve("models:/churn/2").version == 2
    assert registry.resolve("models:/churn/latest").version == 2
    registry.set_registered_model_alias("churn", "champion", 2)
    assert registry.get_registered_model("churn").aliases == {"champion": 2}
    staged = registry.transition_model_version_stage("churn", 2, "Production")
    assert staged.current_stage == "Production"
    assert registry.latest_version("churn", "Production").version == 2
    registry.set_model_version_tag("churn", 1, "note", "old")
    assert registry.get_model_version("churn", 1).tags == {"note": "old"}
    registry.delete_model_version_tag("churn", 1, "note")
    registry.set_registered_model_tag("churn", "k", 1)
    registry.delete_registered_model_tag("churn", "team")
    assert registry.get_registered_model("churn").tags == {"k": "1"}
    assert registry.update_model_version("churn", 1, "first").description == "first"
    found = registry.search_model_versions("name = 'churn'", order_by=["version_number ASC"])
    assert [v.version for v in found] == [1, 2]
    assert [m.name for m in registry.search_registered_models("name LIKE 'ch%'")] == ["churn"]
    registry.delete_model_version("churn", 1)
    with pytest.raises(mlops.NotFound):
        registry.get_model_version("churn", 1)
    assert registry.create_model_version("churn", "s3://b/m").version == 3
    assert v2.to_dict()["name"] == "churn"
    registry.delete_registered_model("churn")
    with pytest.raises(mlops.NotFound):
        registry.resolve("models:/churn@champion")
    with pytest.raises(mlops.InvalidArgument):
        registry.resolve("not-a-uri")


def governed(store: str) -> mlops.Registry:
    engine = mlops.PolicyEngine(
        library=True,
        data={
            "mlops": {
                "thresholds": {"val_accuracy": {"min": 0.7}},
                # Versions made by hand here carry no dataset lineage.
                "disabled": ["lineage"],
            }
        },
    )
    return mlops.Registry(store, policy=engine)


def test_a_governed_registry_denies_and_logs_every_decision(store: str) -> None:
    registry = governed(store)
    assert registry.governed
    registry.create_registered_model("churn")
    good = registry.create_model_version("churn", "s3://m/1", tags={"metrics.val_accuracy": 0.9})
    weak = registry.create_model_version("churn", "s3://m/2", tags={"metrics.val_accuracy": 0.5})
    with pytest.raises(mlops.PolicyDenied, match="approved") as denied:
        registry.set_registered_model_alias("churn", "champion", good.version)
    assert isinstance(denied.value, PermissionError)
    registry.set_model_version_tag("churn", good.version, "approved", "true")
    registry.set_registered_model_alias("churn", "champion", good.version)
    registry.set_model_version_tag("churn", weak.version, "approved", "true")
    with pytest.raises(mlops.PolicyDenied, match="val_accuracy"):
        registry.set_registered_model_alias("churn", "champion", weak.version)
    assert registry.get_model_version_by_alias("churn", "champion").version == good.version
    report = mlops.verify_decision_log(store)
    assert report["ok"] is True
    assert report["first_bad"] is None
    assert report["head"]["entries"] >= 4


def test_policies_from_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "deploy.rego").write_text(
        "package ml.deploy\n\n"
        "deny contains msg if {\n"
        "  input.latency_ms > data.limits.latency_ms\n"
        '  msg := sprintf("latency %v ms is over the limit", [input.latency_ms])\n'
        "}\n\n"
        "test_fast_is_allowed if { count(deny) == 0 with input as {\"latency_ms\": 1} }\n"
    )
    (folder / "data.json").write_text('{"limits": {"latency_ms": 50}}')
    engine = mlops.PolicyEngine([folder])
    assert "data.ml.deploy" in engine.packages
    allowed = engine.evaluate("ml/deploy", {"latency_ms": 20})
    assert allowed.allowed and bool(allowed) and allowed.reasons == []
    denied = engine.evaluate("data.ml.deploy", {"latency_ms": 80})
    assert not denied.allowed
    assert denied.reasons == ["latency 80 ms is over the limit"]
    assert denied.to_dict()["allowed"] is False
    with pytest.raises(mlops.PolicyDenied, match="over the limit"):
        engine.check("ml.deploy", {"latency_ms": 80})
    assert [t["passed"] for t in engine.run_tests()] == [True]
    with pytest.raises(mlops.InvalidArgument):
        engine.evaluate("data.nowhere", {})
    with pytest.raises(mlops.InvalidArgument):
        mlops.PolicyEngine(modules={"bad.rego": "package x\nallow if {"})
    with pytest.raises(TypeError, match="input"):
        engine.evaluate("ml.deploy", {"x": object()})
