"""Pipelines from Python: the built-in steps over the store in use, tracked, cached on re-run,
parameters overridden per step, promotions gated by a governed registry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlops

PIPELINE = """
pipeline: churn-py
steps:
  - {name: data, uses: dataset, with: {name: churn}}
  - name: train
    uses: train
    needs: {data: data.dataset}
    with: {target: churned, model: logistic, epochs: 5, learning_rate: 0.1, register: churn}
  - {name: promote, uses: promote, needs: {model: train.model}, with: {alias: champion}}
"""


def test_a_pipeline_runs_then_comes_from_cache(
    store: str, churn: pd.DataFrame, tmp_path: Path
) -> None:
    mlops.write_dataset("churn", churn)
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    first = mlops.run_pipeline(path)
    assert first.succeeded, first.failure
    assert first.statuses == [("data", "succeeded"), ("train", "succeeded"), ("promote", "succeeded")]
    assert first.cache_hits == []
    assert first.cost >= 0 and first.currency == "USD"
    assert first.output("train", "model")["name"] == "churn"
    assert mlops.get_registry().get_model_version_by_alias("churn", "champion").version == 1
    assert first.run_id is not None
    assert mlops.get_run(first.run_id).info.status == "FINISHED"

    again = mlops.run_pipeline(path)
    assert again.cache_hits == ["data", "train", "promote"]

    changed = mlops.run_pipeline(path, params={"train": {"epochs": 7}})
    assert changed.statuses[1] == ("train", "succeeded")
    assert changed.step("train")["outputs"]["model"]["value"]["version"] == 2
    assert changed.to_dict()["pipeline"] == "churn-py"
    with pytest.raises(mlops.InvalidArgument, match="no step"):
        mlops.run_pipeline(path, params={"nope": {"x": 1}})
    with pytest.raises(mlops.NotFound):
        changed.step("nope")


def test_a_governed_registry_stops_the_promotion(
    store: str, churn: pd.DataFrame, tmp_path: Path
) -> None:
    mlops.write_dataset("churn", churn)
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    registry = mlops.Registry(
        store,
        policy=mlops.PolicyEngine(library=True, data={"mlops": {"disabled": ["lineage"]}}),
    )
    report = mlops.run_pipeline(path, registry=registry)
    assert not report.succeeded
    failure = report.failure
    assert failure is not None and failure[0] == "promote" and "approved" in failure[1]
    with pytest.raises(mlops.NotFound):
        mlops.get_registry().get_model_version_by_alias("churn", "champion")


def test_bad_pipeline_files_are_named(store: str, tmp_path: Path) -> None:
    with pytest.raises(mlops.MlopsError, match="missing.yaml"):
        mlops.run_pipeline(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: x\nsteps: [{name: a, uses: no-such-step}]\n")
    with pytest.raises(mlops.InvalidArgument, match="no-such-step"):
        mlops.run_pipeline(bad)
